/**
 * One HTTP POST of a JSON body to a webhook, through node:http(s) so the connection uses
 * the SSRF guard's checked addresses (`lookup`), while TLS still checks the certificate
 * against the URL's host name. No redirects are followed (a redirect could point
 * anywhere); one deadline covers connecting, sending and reading the answer; only the
 * first few KiB of the answer are read.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import {
  bareHost,
  checkedAddresses,
  guardedLookup,
  type Resolver,
  TargetRefused,
} from "./targets.ts";

/** The answer of a webhook. */
export interface PostAnswer {
  status: number;
  /** The first {@link ANSWER_LIMIT} bytes of the body, as text. */
  body: string;
  /** Retry-After in milliseconds, when given. */
  retryAfterMs: number | null;
}

/** Bytes of an answer kept for the delivery log and "send test". */
export const ANSWER_LIMIT = 2048;

/** Options of {@link postJson}. */
export interface PostOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** Extra trusted CA certificates (PEM), for receivers behind a private CA. */
  ca?: string[];
  resolve?: Resolver;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function retryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** POSTs `body` to `url`; rejects on a refused target, a network error or the deadline. */
export async function postJson(
  url: URL,
  body: string,
  headers: Record<string, string>,
  o: PostOptions,
): Promise<PostAnswer> {
  const host = bareHost(url.hostname);
  // node:net skips `lookup` for an address literal: check it here.
  if (isIP(host)) await checkedAddresses(host, o.allowPrivate, o.resolve);
  const secure = url.protocol === "https:";
  const mod = secure ? https : http;
  return await new Promise<PostAnswer>((resolve, reject) => {
    let settled = false;
    const done = (err: Error | null, answer?: PostAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(answer!);
    };
    const req = mod.request({
      protocol: url.protocol,
      hostname: host,
      port: url.port || (secure ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      method: "POST",
      agent: o.ca ? undefined : secure ? agents.https : agents.http,
      ...(o.ca ? { ca: o.ca } : {}),
      lookup: guardedLookup(o.allowPrivate, o.resolve) as never,
      headers: {
        "Content-Type": "application/json",
        "Content-Length": String(Buffer.byteLength(body)),
        "User-Agent": "Borealis-Alerts/1",
        ...headers,
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = () =>
        done(null, {
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8").slice(0, ANSWER_LIMIT),
          retryAfterMs: retryAfter(res.headers["retry-after"] as string | undefined, Date.now()),
        });
      res.on("data", (chunk: Buffer) => {
        if (size < ANSWER_LIMIT) chunks.push(chunk);
        size += chunk.length;
        // Enough to show; do not let a receiver stream at us.
        if (size > 64 * 1024) {
          finish();
          res.destroy();
        }
      });
      res.on("end", finish);
      res.on("error", (e) => done(e));
    });
    const timer = setTimeout(() => {
      const err = new Error(`no complete answer within ${o.timeoutMs} ms`);
      done(err);
      req.destroy(err);
    }, o.timeoutMs);
    req.on("error", (e) => done(e instanceof TargetRefused ? e : new Error(describe(e))));
    req.end(body);
  });
}

/** A network error in one line, without the URL (which may hold a token). */
function describe(e: Error & { code?: string }): string {
  return e.code ? `${e.code}: ${e.message.replace(/https?:\/\/\S+/g, "<url>")}` : e.message;
}

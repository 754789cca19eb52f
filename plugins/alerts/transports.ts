/**
 * Sends one message over one channel and reports what the remote side answered, in the
 * one shape the worker, the delivery log and "send test" share ({@link SendResult}).
 * Decides which failures are worth a retry: timeouts, network errors, 408, 425, 429 and
 * 5xx are; other 4xx answers, redirects, refused addresses and SMTP 5xx replies are not.
 *
 * @module
 */
import type { AlertMessage, ChannelKind, SendResult } from "./api.ts";
import {
  discordBody,
  emailContent,
  eventName,
  genericBody,
  slackBody,
  teamsBody,
} from "./formats.ts";
import { postJson } from "./http_post.ts";
import { sign, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "./signature.ts";
import { sendMail, type SmtpConfig, SmtpError } from "./smtp.ts";
import { type Resolver, TargetRefused } from "./targets.ts";

/** A channel's opened secrets. */
export interface ChannelSecrets {
  url?: string;
  signing_secret?: string;
  password?: string;
}

/** What a send needs to know about the channel. */
export interface SendChannel {
  kind: ChannelKind;
  config: Record<string, unknown>;
  secrets: ChannelSecrets;
}

/** Options of {@link send}. */
export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** Mail recipients instead of the channel's own (operators' own mail, tests). */
  to?: string[];
  resolve?: Resolver;
}

const RETRYABLE = new Set([408, 425, 429]);

/** Sends `m` over the channel. Never throws: failures come back as a result. */
export async function send(ch: SendChannel, m: AlertMessage, o: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const result = (r: Omit<SendResult, "durationMs">): SendResult => ({
    ...r,
    durationMs: Math.round(performance.now() - started),
  });
  try {
    if (ch.kind === "email") return result(await mail(ch, m, o));
    if (!ch.secrets.url) {
      return result(fail("the channel has no URL (re-enter it after a vault reset)", true));
    }
    const url = new URL(ch.secrets.url);
    const headers: Record<string, string> = {};
    let body: string;
    switch (ch.kind) {
      case "webhook": {
        body = JSON.stringify(genericBody(m));
        const ts = Math.floor(Date.parse(m.sentAt) / 1000);
        headers["X-Borealis-Event"] = eventName(m);
        headers["X-Borealis-Delivery"] = m.deliveryId;
        headers[TIMESTAMP_HEADER] = String(ts);
        if (ch.secrets.signing_secret) {
          headers[SIGNATURE_HEADER] = sign(ch.secrets.signing_secret, ts, body);
        }
        break;
      }
      case "slack":
        body = JSON.stringify(slackBody(m));
        break;
      case "discord":
        body = JSON.stringify(discordBody(m));
        break;
      case "teams":
        body = JSON.stringify(teamsBody(m));
        break;
    }
    const ca = typeof ch.config.ca_pem === "string" ? [ch.config.ca_pem] : undefined;
    const answer = await postJson(url, body, headers, {
      timeoutMs: o.timeoutMs,
      allowPrivate: o.allowPrivate,
      ca,
      resolve: o.resolve,
    });
    const s = answer.status;
    if (s >= 200 && s < 300) {
      return result({
        ok: true,
        status: s,
        response: answer.body,
        error: null,
        permanent: false,
        retryAfterMs: null,
      });
    }
    const retry = RETRYABLE.has(s) || s >= 500;
    return result({
      ok: false,
      status: s,
      response: answer.body,
      error: s >= 300 && s < 400 ? `HTTP ${s}: redirects are not followed` : `HTTP ${s}`,
      permanent: !retry,
      retryAfterMs: answer.retryAfterMs,
    });
  } catch (err) {
    if (err instanceof TargetRefused) return result(fail(err.message, true));
    return result(fail((err as Error).message, false));
  }
}

function fail(error: string, permanent: boolean): Omit<SendResult, "durationMs"> {
  return { ok: false, status: null, response: "", error, permanent, retryAfterMs: null };
}

async function mail(
  ch: SendChannel,
  m: AlertMessage,
  o: SendOptions,
): Promise<Omit<SendResult, "durationMs">> {
  const cfg = ch.config as unknown as SmtpConfig & { to: string[] };
  const to = o.to ?? cfg.to ?? [];
  if (!to.length) return fail("no recipients", true);
  const content = emailContent(m);
  try {
    const answer = await sendMail(cfg, ch.secrets.password ?? null, {
      to,
      ...content,
      headers: { "X-Borealis-Delivery": m.deliveryId, "X-Borealis-Event": eventName(m) },
    }, o);
    if (!answer.accepted.length) {
      return {
        ok: false,
        status: answer.code,
        response: answer.response,
        error: `every recipient was refused (${answer.rejected.length})`,
        permanent: true,
        retryAfterMs: null,
      };
    }
    return {
      ok: true,
      status: answer.code,
      response: answer.response,
      error: null,
      permanent: false,
      retryAfterMs: null,
    };
  } catch (err) {
    if (err instanceof TargetRefused) return fail(err.message, true);
    if (err instanceof SmtpError) {
      return {
        ok: false,
        status: err.code,
        response: "",
        error: err.message,
        permanent: err.permanent,
        retryAfterMs: null,
      };
    }
    return fail((err as Error).message, false);
  }
}

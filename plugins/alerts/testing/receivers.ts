/**
 * Real receivers for the alerts tests and benchmark: an HTTP webhook receiver (a real
 * listener on a loopback port) that checks each generic message's signature and can
 * answer slowly, fail, ask to retry later or hang; and a real SMTP server in its own
 * process (testing/smtp_server.ts) with a throwaway certificate, receiving mail over
 * STARTTLS or implicit TLS.
 *
 * @module
 */
import { makeCertificates } from "../../../tests/helpers/slapd.ts";
import { verify } from "../signature.ts";

/** How the webhook receiver answers. */
export type ReceiverMode =
  | { kind: "ok"; status?: number; body?: string }
  | { kind: "fail"; status: number; body?: string; retryAfter?: string }
  | { kind: "slow"; ms: number }
  | { kind: "hang" };

/** A request the receiver got. */
export interface Received {
  path: string;
  headers: Headers;
  body: string;
  json: Record<string, unknown>;
  /** The generic webhook signature checked out (null: no secret set). */
  verified: boolean | null;
  /** When it arrived (receiver's clock, epoch ms). */
  at: number;
}

/** A running webhook receiver. */
export interface WebhookReceiver {
  url: string;
  port: number;
  received: Received[];
  /** Requests currently held open by the `hang` mode. */
  readonly hanging: number;
  mode: ReceiverMode;
  /** Signing secret to check generic messages with. */
  secret: string | null;
  /** Unix seconds the signature's timestamp is checked against. */
  nowSeconds: () => number;
  /** Answers every hung request (with 503) and makes new ones not hang. */
  release(): void;
  /** Waits until `n` requests arrived (real time, generous bound). */
  waitFor(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a webhook receiver on a free loopback port. */
export function startWebhookReceiver(): WebhookReceiver {
  const hung = new Set<(r: Response) => void>();
  const received: Received[] = [];
  const receiver: WebhookReceiver = {
    url: "",
    port: 0,
    received,
    get hanging() {
      return hung.size;
    },
    mode: { kind: "ok" },
    secret: null,
    nowSeconds: () => Math.floor(Date.now() / 1000),
    release() {
      receiver.mode = { kind: "ok" };
      for (const answer of hung) answer(new Response("released", { status: 503 }));
      hung.clear();
    },
    async waitFor(n, ms = 20_000) {
      const end = Date.now() + ms;
      while (received.length < n) {
        if (Date.now() > end) {
          throw new Error(`receiver got ${received.length} of ${n} requests in ${ms} ms`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      receiver.release();
      await server.shutdown();
    },
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(body);
    } catch { /* recorded as is */ }
    received.push({
      path: new URL(req.url).pathname,
      headers: req.headers,
      body,
      json,
      verified: receiver.secret === null ? null : verify(
        receiver.secret,
        req.headers.get("x-borealis-signature"),
        req.headers.get("x-borealis-timestamp"),
        body,
        receiver.nowSeconds(),
      ),
      at: Date.now(),
    });
    const mode = receiver.mode;
    switch (mode.kind) {
      case "ok":
        return new Response(mode.body ?? "ok", { status: mode.status ?? 200 });
      case "fail":
        return new Response(mode.body ?? "failed", {
          status: mode.status,
          headers: mode.retryAfter ? { "Retry-After": mode.retryAfter } : {},
        });
      case "slow":
        await new Promise((r) => setTimeout(r, mode.ms));
        return new Response("ok (slowly)");
      case "hang":
        return await new Promise<Response>((resolve) => hung.add(resolve));
    }
  });
  receiver.port = server.addr.port;
  receiver.url = `http://127.0.0.1:${server.addr.port}`;
  return receiver;
}

/** A mail the SMTP server received. */
export interface ReceivedMail {
  from: string | null;
  to: string[];
  user: string | null;
  secure: boolean;
  /** The raw message (headers and body). */
  data: string;
}

/** A running SMTP server process. */
export interface SmtpReceiver {
  port: number;
  /** The throwaway CA the server's certificate is signed by (PEM). */
  ca: string;
  user: string;
  pass: string;
  mails: ReceivedMail[];
  waitFor(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts the SMTP server process with a fresh certificate for localhost / 127.0.0.1. */
export async function startSmtpReceiver(options: { tls?: boolean } = {}): Promise<SmtpReceiver> {
  const dir = await Deno.makeTempDir({ prefix: "alerts-smtp-" });
  const ca = await makeCertificates(dir, ["mail.test"]);
  const user = "alerts";
  const pass = `pw-${crypto.randomUUID()}`;
  const script = new URL("./smtp_server.ts", import.meta.url).pathname;
  const config = new URL("../../../deno.json", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      config,
      script,
      "--port",
      "0",
      "--cert",
      `${dir}/server.pem`,
      "--key",
      `${dir}/server.key`,
      "--user",
      user,
      "--pass",
      pass,
      ...(options.tls ? ["--tls"] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const mails: ReceivedMail[] = [];
  let listening: (port: number) => void;
  const port = new Promise<number>((r) => (listening = r));
  const lines = child.stdout.pipeThrough(new TextDecoderStream());
  const reading = (async () => {
    let buf = "";
    for await (const chunk of lines) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line);
        if (typeof msg.listening === "number") listening!(msg.listening);
        else if (msg.data !== undefined) mails.push(msg);
      }
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = await Promise.race([
    port,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("SMTP server did not start in 60 s")), 60_000);
    }),
  ]).finally(() => clearTimeout(timer));
  return {
    port: p,
    ca,
    user,
    pass,
    mails,
    async waitFor(n, ms = 30_000) {
      const end = Date.now() + ms;
      while (mails.length < n) {
        if (Date.now() > end) throw new Error(`SMTP server got ${mails.length} of ${n} mails`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await reading.catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

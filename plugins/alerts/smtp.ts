/**
 * Mail over SMTP with nodemailer: STARTTLS (required, never optional) or implicit TLS,
 * optional authentication with the sealed password. The server's name is resolved and
 * checked by the SSRF guard first; nodemailer then connects to that checked address and
 * verifies the certificate against the configured host name (`servername`).
 *
 * @module
 */
// @ts-types="@types/nodemailer"
import nodemailer from "nodemailer";
import { isIP } from "node:net";
import { bareHost, checkedAddresses, type Resolver } from "./targets.ts";

/** A mail server and sender. */
export interface SmtpConfig {
  host: string;
  port: number;
  security: "starttls" | "tls";
  username: string | null;
  from: string;
  /** Extra trusted CA certificates (PEM). */
  ca_pem?: string | null;
}

/** One mail. */
export interface Mail {
  to: string[];
  subject: string;
  text: string;
  html: string;
  /** Message headers (no line breaks: nodemailer folds and checks them). */
  headers?: Record<string, string>;
}

/** The server's final answer. */
export interface SmtpAnswer {
  code: number | null;
  response: string;
  accepted: string[];
  rejected: string[];
}

/** An SMTP failure with the server's reply code when there was one. */
export class SmtpError extends Error {
  constructor(message: string, readonly code: number | null, readonly permanent: boolean) {
    super(message);
    this.name = "SmtpError";
  }
}

/** Sends one mail; throws {@link SmtpError} or the SSRF guard's refusal. */
export async function sendMail(
  cfg: SmtpConfig,
  password: string | null,
  mail: Mail,
  o: { timeoutMs: number; allowPrivate: boolean; resolve?: Resolver },
): Promise<SmtpAnswer> {
  const host = bareHost(cfg.host);
  const [address] = await checkedAddresses(host, o.allowPrivate, o.resolve);
  const transport = nodemailer.createTransport({
    host: address!.address,
    port: cfg.port,
    secure: cfg.security === "tls",
    requireTLS: cfg.security === "starttls",
    ignoreTLS: false,
    auth: cfg.username ? { user: cfg.username, pass: password ?? "" } : undefined,
    connectionTimeout: o.timeoutMs,
    greetingTimeout: o.timeoutMs,
    socketTimeout: o.timeoutMs,
    dnsTimeout: o.timeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
    tls: {
      // The certificate must name the configured host, not the address we connect to.
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      ...(cfg.ca_pem ? { ca: [cfg.ca_pem] } : {}),
    },
    logger: false,
    debug: false,
  });
  let deadline: ReturnType<typeof setTimeout> | undefined;
  try {
    const info = await Promise.race([
      transport.sendMail({
        from: cfg.from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        headers: mail.headers,
      }),
      new Promise<never>((_, reject) => {
        deadline = setTimeout(
          () => reject(new SmtpError(`no answer within ${o.timeoutMs * 3} ms`, null, false)),
          o.timeoutMs * 3,
        );
      }),
    ]);
    const response = String(info.response ?? "");
    const code = /^(\d{3})/.exec(response)?.[1];
    return {
      code: code ? Number(code) : null,
      response,
      accepted: (info.accepted ?? []).map(String),
      rejected: (info.rejected ?? []).map(String),
    };
  } catch (err) {
    if (err instanceof SmtpError) throw err;
    const e = err as Error & { responseCode?: number; code?: string };
    const code = e.responseCode ?? null;
    // 5xx replies and authentication failures will not fix themselves; 4xx may.
    const permanent = (code !== null && code >= 500) || e.code === "EAUTH";
    throw new SmtpError(
      `${e.code ? `${e.code}: ` : ""}${e.message}`.replace(/\s+/g, " ").slice(0, 500),
      code,
      permanent,
    );
  } finally {
    clearTimeout(deadline);
    transport.close();
  }
}

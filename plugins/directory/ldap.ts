/**
 * Talking to a provider's servers: one ldapts client per attempt, StartTLS or LDAPS with
 * an optional pinned CA, connect and operation timeouts, and failover across the
 * provider's URLs. A server that refuses, times out, fails TLS or answers busy /
 * unavailable is skipped (and tried last for a while); an LDAP answer such as "invalid
 * credentials" is the directory's verdict and is not retried elsewhere.
 *
 * @module
 */
import { Client, FilterParser, ResultCodeError } from "ldapts";
import type { Clock } from "../../core/clock.ts";

/** What a connection needs from a provider. */
export interface ConnectionSettings {
  server_urls: string[];
  start_tls: boolean;
  tls_ca_pem: string | null;
  connect_timeout_ms: number;
  operation_timeout_ms: number;
}

/** One failed attempt on one URL. */
export interface Attempt {
  url: string;
  message: string;
}

/** No URL of the provider could be used. */
export class DirectoryUnavailable extends Error {
  constructor(readonly attempts: Attempt[]) {
    super(
      `no directory server answered: ${attempts.map((a) => `${a.url}: ${a.message}`).join("; ")}`,
    );
    this.name = "DirectoryUnavailable";
  }
}

/** LDAP result codes worth trying another server for (busy, unavailable, unwilling on overload). */
const RETRY_CODES = new Set([51, 52]);

/** True when `e` is about reaching a server rather than the directory's answer. */
export function isTransportError(e: unknown): boolean {
  if (e instanceof ResultCodeError) return RETRY_CODES.has(e.code);
  return true;
}

/** LDAP result code of `e`, if it is a directory answer. */
export function resultCode(e: unknown): number | undefined {
  return e instanceof ResultCodeError ? e.code : undefined;
}

const RESULT_NAMES: Record<number, string> = {
  1: "operations error",
  2: "protocol error",
  3: "time limit exceeded",
  4: "size limit exceeded",
  7: "authentication method not supported",
  8: "stronger authentication required",
  13: "confidentiality required (use StartTLS or ldaps://)",
  32: "no such object (check the base DN)",
  34: "invalid DN syntax",
  48: "inappropriate authentication",
  49: "invalid credentials",
  50: "insufficient access rights",
  51: "server busy",
  52: "server unavailable",
  53: "unwilling to perform",
  80: "other server error",
};

/** A message for people: never contains a password (ldapts never puts one in errors). */
export function describeError(e: unknown, s?: ConnectionSettings): string {
  if (e instanceof ResultCodeError) {
    return `${RESULT_NAMES[e.code] ?? "LDAP error"} (result code ${e.code})`;
  }
  const err = e as { code?: string; message?: string };
  const msg = String(err?.message ?? e);
  if (err?.code === "ECONNREFUSED") {
    return "connection refused (is the server running on that port?)";
  }
  if (err?.code === "ENOTFOUND" || err?.code === "EAI_AGAIN") return "host name not found";
  if (err?.code === "ECONNRESET") return "connection reset by the server";
  if (msg === "Connection timeout") {
    return `no connection within ${s?.connect_timeout_ms ?? "?"} ms (connect timeout)`;
  }
  if (/Operation timed out/.test(msg)) {
    return `no answer within ${s?.operation_timeout_ms ?? "?"} ms (operation timeout)`;
  }
  if (/certificate|CERT|self.signed|TLS|SSL|handshake/i.test(msg + (err?.code ?? ""))) {
    return `TLS failed: ${msg} (check the pinned CA certificate and the host name in the URL)`;
  }
  return msg.split("\n")[0]!.slice(0, 300);
}

/** Checks that a filter parses (what ldapts will send). */
export function filterProblem(filter: string): string | null {
  try {
    FilterParser.parseString(filter);
    return null;
  } catch (e) {
    return (e as Error).message.slice(0, 200);
  }
}

interface Connectable {
  _connect?: () => Promise<void> | void;
}

/** Opens a client to one URL (connected, and upgraded by StartTLS when configured). */
export async function openClient(url: string, s: ConnectionSettings): Promise<Client> {
  const ldaps = url.toLowerCase().startsWith("ldaps:");
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  const tls = {
    ...(s.tls_ca_pem ? { ca: [s.tls_ca_pem] } : {}),
    // SNI and certificate host check against the URL's host (not for IP literals).
    ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
  };
  const client = new Client({
    url,
    connectTimeout: s.connect_timeout_ms,
    timeout: s.operation_timeout_ms,
    // ldapts switches to TLS whenever tlsOptions is set, so only pass it for ldaps://.
    tlsOptions: ldaps ? tls : undefined,
    strictDN: false,
  });
  try {
    // ldapts connects lazily; connecting here attributes failures to this URL.
    await (client as unknown as Connectable)._connect?.();
    if (s.start_tls && !ldaps) await client.startTLS(tls);
    return client;
  } catch (e) {
    await closeClient(client);
    throw e;
  }
}

/** Unbinds and closes without waiting on a dead server. */
export async function closeClient(client: Client): Promise<void> {
  await client.unbind().catch(() => {});
}

/**
 * Runs `fn` on the first server that works. Servers that failed recently are tried
 * last. Transport failures move on to the next URL (re-running `fn`, whose reads and
 * binds are idempotent); a directory answer is rethrown at once.
 */
export class ServerPool {
  #downUntil = new Map<string, number>();

  constructor(private readonly clock: Clock, private readonly holdDownMs = 30_000) {}

  /** URLs in the order to try them. */
  order(urls: readonly string[]): string[] {
    const now = this.clock.now();
    const up = urls.filter((u) => (this.#downUntil.get(u) ?? 0) <= now);
    const down = urls.filter((u) => (this.#downUntil.get(u) ?? 0) > now);
    return [...up, ...down];
  }

  async run<T>(
    s: ConnectionSettings,
    fn: (client: Client, url: string) => Promise<T>,
  ): Promise<T> {
    const attempts: Attempt[] = [];
    for (const url of this.order(s.server_urls)) {
      let client: Client | undefined;
      try {
        client = await openClient(url, s);
        const out = await fn(client, url);
        this.#downUntil.delete(url);
        return out;
      } catch (e) {
        if (!isTransportError(e)) throw e;
        attempts.push({ url, message: describeError(e, s) });
        this.#downUntil.set(url, this.clock.now() + this.holdDownMs);
      } finally {
        if (client) await closeClient(client);
      }
    }
    throw new DirectoryUnavailable(attempts);
  }
}

/** First value of an attribute in an ldapts entry, as a string. */
export function firstValue(entry: Record<string, unknown>, attr: string): string | undefined {
  const v = allValues(entry, attr);
  return v[0];
}

/** All values of an attribute (case-insensitive name) as strings. */
export function allValues(entry: Record<string, unknown>, attr: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attr.toLowerCase());
  if (!key || key === "dn") return [];
  const v = entry[key];
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list.map((x) =>
    typeof x === "string"
      ? x
      : x instanceof Uint8Array
      ? Array.from(x, (b) => b.toString(16).padStart(2, "0")).join("")
      : String(x)
  );
}

/** The first value of a binary attribute (one named in `explicitBufferAttributes`). */
export function rawValue(entry: Record<string, unknown>, attr: string): Uint8Array | undefined {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attr.toLowerCase());
  if (!key || key === "dn") return undefined;
  const v = entry[key];
  const first = Array.isArray(v) ? v[0] : v;
  if (first instanceof Uint8Array) return first;
  // ldapts matches explicitBufferAttributes case-sensitively and otherwise decodes values
  // that happen to be valid UTF-8: encoding them again gives back the very same bytes.
  return typeof first === "string" ? new TextEncoder().encode(first) : undefined;
}

/**
 * Talking to a provider's servers: one ldapts client per attempt, StartTLS or LDAPS with
 * an optional pinned CA, connect and operation timeouts, and failover across the
 * provider's URLs. A server that refuses, times out, fails TLS or answers busy /
 * unavailable is skipped (and tried last for a while); an LDAP answer such as "invalid
 * credentials" is the directory's verdict and is not retried elsewhere.
 *
 * Host overrides: a URL whose host name has an entry in `host_overrides` is reached at that
 * address instead of the name's DNS answer; the TLS layer (ldaps:// and StartTLS) still
 * gets the host name as `servername`, which Node's tls uses both for SNI and for
 * `checkServerIdentity`, so the certificate must still carry the name.
 *
 * @module
 */
import { Client, FilterParser, ResultCodeError } from "ldapts";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Clock } from "../../core/clock.ts";

/** What a connection needs from a provider. */
export interface ConnectionSettings {
  server_urls: string[];
  /** Lower-case host name → IP address to connect to (TLS still verifies the name). */
  host_overrides?: Readonly<Record<string, string>>;
  start_tls: boolean;
  tls_ca_pem: string | null;
  connect_timeout_ms: number;
  operation_timeout_ms: number;
}

/** One failed attempt on one URL. */
export interface Attempt {
  url: string;
  /** The override address the URL's host was reached at, if any. */
  via?: string;
  message: string;
}

/** No URL of the provider could be used. */
export class DirectoryUnavailable extends Error {
  constructor(readonly attempts: Attempt[]) {
    super(
      `no directory server answered: ${
        attempts.map((a) => `${a.url}${a.via ? ` via ${a.via}` : ""}: ${a.message}`).join("; ")
      }`,
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
  if (err?.code === "ENOTFOUND" || err?.code === "EAI_AGAIN") {
    return "host name not found (no DNS answer; fix DNS, or map the name to the server's " +
      "address with host_overrides)";
  }
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

/** The host of an LDAP URL as written (brackets of an IPv6 literal removed). */
export function urlHost(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, "");
}

/**
 * The address a URL's host is overridden to, or undefined. Host names match
 * case-insensitively (`new URL` keeps the case of an ldap:// host; override keys are
 * stored in lower case).
 */
export function overrideFor(url: string, s: ConnectionSettings): string | undefined {
  const overrides = s.host_overrides;
  if (!overrides) return undefined;
  const host = urlHost(url).toLowerCase();
  return Object.hasOwn(overrides, host) ? overrides[host] : undefined;
}

/**
 * ldapts socket factories that open the TCP connection to `address` instead of resolving
 * the URL's host. ldapts calls `createConnection(port, host)` for ldap://,
 * `createSecureConnection(port, host, tlsOptions)` for ldaps:// and
 * `createSecureConnection(options)` (with `options.socket`) for StartTLS; only the host
 * is replaced, the TLS options (and so `servername`) pass through untouched.
 */
function connectVia(address: string): {
  createConnection: typeof net.connect;
  createSecureConnection: typeof tls.connect;
} {
  const plain = (port: number) => net.connect({ port, host: address });
  const secure = (
    portOrOptions: number | tls.ConnectionOptions,
    _host?: string,
    options?: tls.ConnectionOptions,
  ) =>
    typeof portOrOptions === "number"
      ? tls.connect(portOrOptions, address, options)
      : tls.connect(portOrOptions);
  return {
    createConnection: plain as unknown as typeof net.connect,
    createSecureConnection: secure as unknown as typeof tls.connect,
  };
}

/**
 * The TLS options for a URL: the pinned CA, and `servername` = the URL's host name. Node
 * sends `servername` as SNI and checks the certificate against it (checkServerIdentity);
 * without it Node would check against the address connected to, which for an override is
 * the IP. IP-literal URLs get no servername (SNI carries no IP; Node checks the IP).
 */
export function tlsOptionsFor(url: string, s: ConnectionSettings): tls.ConnectionOptions {
  const host = urlHost(url);
  const ipLiteral = /^[\d.]+$|:/.test(host);
  if (ipLiteral && overrideFor(url, s)) {
    // Cannot happen (override keys are host names); never let an override skip the check.
    throw new Error("a host override needs a host name in the URL");
  }
  return {
    ...(s.tls_ca_pem ? { ca: [s.tls_ca_pem] } : {}),
    ...(ipLiteral ? {} : { servername: host }),
  };
}

/** Opens a client to one URL (connected, and upgraded by StartTLS when configured). */
export async function openClient(url: string, s: ConnectionSettings): Promise<Client> {
  const ldaps = url.toLowerCase().startsWith("ldaps:");
  const tlsOptions = tlsOptionsFor(url, s);
  const via = overrideFor(url, s);
  const client = new Client({
    url,
    connectTimeout: s.connect_timeout_ms,
    timeout: s.operation_timeout_ms,
    // ldapts switches to TLS whenever tlsOptions is set, so only pass it for ldaps://.
    tlsOptions: ldaps ? tlsOptions : undefined,
    strictDN: false,
    ...(via ? connectVia(via) : {}),
  });
  try {
    // ldapts connects lazily; connecting here attributes failures to this URL.
    await (client as unknown as Connectable)._connect?.();
    // A fresh object: ldapts adds `socket` to the options it is given.
    if (s.start_tls && !ldaps) await client.startTLS({ ...tlsOptions });
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
        const via = overrideFor(url, s);
        attempts.push({ url, ...(via ? { via } : {}), message: describeError(e, s) });
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

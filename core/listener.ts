/**
 * The engine's HTTP listener: its own accept loop in front of Deno's HTTP server, so
 * that every connection is known and bounded. `Deno.serve` accepts inside the runtime:
 * it never closes a connection that sends nothing, cannot cap connections, and ends its
 * accept loop for good (an uncaught rejection) when the process runs out of file
 * descriptors. Here:
 *
 * - a connection must send a complete request head within the header timeout, and a
 *   kept-alive connection is closed after the idle timeout without a request;
 * - connections that have not become an authenticated socket ("pending") are capped
 *   overall and per client address; at a cap the oldest pending connection with no
 *   request in flight makes room, else the newcomer gets a canned 503;
 * - all connections together stay within a descriptor budget below the process's
 *   open-file limit, leaving room for the database, logs and files;
 * - an accept error (`EMFILE`, `ENFILE`, …) is logged, idle pending connections are shed
 *   and accepting resumes after a short back-off.
 *
 * A WebSocket opened through {@link upgradeWebSocket} stops being pending once upgraded
 * (only authenticated routes upgrade) and is counted against the budget until it closes.
 *
 * Each connection is served by `Deno.serveHttp`, the per-connection server Deno keeps
 * for compatibility (it is hidden from Deno 2's type declarations). `Deno.serve`'s own
 * per-connection entry point closes upgraded WebSockets when the connection's server
 * ends, so it cannot carry agent sockets. Where `Deno.serveHttp` is missing the engine
 * falls back to `Deno.serve` without these limits and says so in the log.
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** The limits of {@link serveConnections}. */
export interface ConnectionLimits {
  /** A new connection must deliver a complete request head within this time. */
  headerTimeoutMs: number;
  /** A kept-alive connection without a request in flight is closed after this time. */
  idleTimeoutMs: number;
  /** All open connections, WebSockets included. */
  maxConnections: number;
  /** Connections that are not (yet) an authenticated WebSocket. */
  maxPending: number;
  /** Pending connections from one client address. */
  maxPendingPerAddress: number;
}

/** What the handler learns about the connection a request came on. */
export interface ConnectionControl {
  /** Tells the listener that this connection now carries `socket` (closed: slot freed). */
  upgraded(socket: WebSocket): void;
}

/** The second argument of the request handler. */
export interface ConnectionInfo {
  remoteAddr: { hostname: string; port: number; transport?: string };
  connection?: ConnectionControl;
}

/** Counters of a running listener (logs, tests, the operations guide). */
export interface ConnectionStats {
  open: number;
  pending: number;
  websockets: number;
  accepted: number;
  /** Closed for sending no complete request head within the header timeout. */
  headerTimeouts: number;
  /** Kept-alive connections closed after the idle timeout. */
  idleTimeouts: number;
  /** Pending connections closed to make room for newer ones. */
  evicted: number;
  /** Connections answered 503 at once because a cap was reached. */
  refused: number;
  /** Accept calls that failed (descriptor exhaustion and other errors). */
  acceptErrors: number;
}

/** A running listener. */
export interface GuardedServer {
  readonly addr: { hostname: string; port: number };
  /** True when connections are bounded (false on the `Deno.serve` fallback). */
  readonly guarded: boolean;
  stats(): ConnectionStats;
  /** Stops accepting, closes idle connections, resolves once no request is in flight. */
  shutdown(): Promise<void>;
  /** Closes every connection that is not a WebSocket, in flight or not. */
  closeAll(): void;
}

/** Options of {@link serveConnections}. */
export interface ServeConnectionsOptions {
  hostname: string;
  port: number;
  limits: ConnectionLimits;
  /** Addresses the per-address cap does not apply to (trusted reverse proxies). */
  unlimited?: (address: string) => boolean;
  handler: (request: Request, info: ConnectionInfo) => Response | Promise<Response>;
  log: Logger;
  /** How often counters are summarised in the log when something was shed (ms). */
  reportEveryMs?: number;
  /** Serve with plain `Deno.serve` instead (a proxy in front bounds connections). */
  unguarded?: boolean;
  /**
   * Listen with `SO_REUSEPORT`: other engine processes (workers) share the port and the
   * kernel spreads new connections over them.
   */
  reusePort?: boolean;
}

interface RequestEvent {
  readonly request: Request;
  respondWith(r: Response | Promise<Response>): Promise<void>;
}
interface HttpConn {
  nextRequest(): Promise<RequestEvent | null>;
  close(): void;
}
type ServeHttp = (conn: Deno.Conn) => HttpConn;

const serveHttp = (Deno as unknown as { serveHttp?: ServeHttp }).serveHttp;

interface Conn {
  readonly tcp: Deno.TcpConn;
  readonly address: string;
  http?: HttpConn;
  /** performance.now() of the last state change (accept, request start, response sent). */
  since: number;
  inFlight: boolean;
  served: number;
  state: "pending" | "websocket" | "closed";
  /** Close as soon as the request in flight is answered. */
  draining: boolean;
}

const BUSY_BODY = JSON.stringify({
  error: "busy",
  message: "the engine has too many connections open right now; retry later",
});
const BUSY = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\n" +
    `connection: close\r\ncontent-length: ${BUSY_BODY.length}\r\n\r\n${BUSY_BODY}`,
);

/** Serves `handler` on `hostname:port` with bounded connections. */
export function serveConnections(options: ServeConnectionsOptions): GuardedServer {
  if (options.unguarded) return serveUnguarded(options, "BOREALIS_HTTP_GUARD=false");
  if (!serveHttp) {
    return serveUnguarded(options, "this Deno has no per-connection HTTP server (Deno.serveHttp)");
  }
  const { limits, log } = options;
  const listener = Deno.listen({
    hostname: options.hostname,
    port: options.port,
    reusePort: options.reusePort,
  } as Deno.TcpListenOptions);
  const addr = listener.addr as Deno.NetAddr;
  const unlimited = options.unlimited ?? (() => false);
  /** Pending connections in accept order (the oldest first). */
  const pending = new Set<Conn>();
  const byAddress = new Map<string, Set<Conn>>();
  let open = 0;
  let websockets = 0;
  let closing = false;
  let drained: (() => void) | undefined;
  const counters = {
    accepted: 0,
    headerTimeouts: 0,
    idleTimeouts: 0,
    evicted: 0,
    refused: 0,
    acceptErrors: 0,
  };
  const reported = { ...counters };
  let lastAcceptError = "";

  const forget = (c: Conn) => {
    if (c.state !== "pending") return;
    pending.delete(c);
    const set = byAddress.get(c.address);
    set?.delete(c);
    if (set?.size === 0) byAddress.delete(c.address);
  };
  const release = (c: Conn) => {
    if (c.state === "closed") return;
    forget(c);
    if (c.state === "pending") open--;
    c.state = "closed";
    try {
      c.http ? c.http.close() : c.tcp.close();
    } catch { /* already closed */ }
    if (closing && pending.size === 0) drained?.();
  };
  /** Closes the oldest pending connection of `among` that has no request in flight. */
  const evictOne = (among: Iterable<Conn>): boolean => {
    for (const c of among) {
      if (!c.inFlight) {
        counters.evicted++;
        release(c);
        return true;
      }
    }
    return false;
  };
  const refuse = (tcp: Deno.Conn) => {
    counters.refused++;
    // One small write into an empty socket buffer: it completes at once or not at all.
    tcp.write(BUSY).catch(() => {}).finally(() => {
      try {
        tcp.close();
      } catch { /* gone */ }
    });
  };

  const admit = (tcp: Deno.TcpConn) => {
    const address = (tcp.remoteAddr as Deno.NetAddr).hostname;
    if (!unlimited(address)) {
      const mine = byAddress.get(address);
      if (mine && mine.size >= limits.maxPendingPerAddress && !evictOne(mine)) {
        return refuse(tcp);
      }
    }
    if (
      (pending.size >= limits.maxPending || open >= limits.maxConnections) && !evictOne(pending)
    ) {
      return refuse(tcp);
    }
    const c: Conn = {
      tcp,
      address,
      since: performance.now(),
      inFlight: false,
      served: 0,
      state: "pending",
      draining: false,
    };
    open++;
    pending.add(c);
    let mine = byAddress.get(address);
    if (!mine) byAddress.set(address, mine = new Set());
    mine.add(c);
    try {
      tcp.setNoDelay(true);
      c.http = serveHttp(tcp);
    } catch {
      return release(c);
    }
    void serve(c);
  };

  const serve = async (c: Conn) => {
    const http = c.http!;
    const remoteAddr = tcpAddr(c.tcp.remoteAddr as Deno.NetAddr);
    const control: ConnectionControl = {
      upgraded(socket) {
        if (c.state !== "pending") return;
        forget(c);
        c.state = "websocket";
        websockets++;
        socket.addEventListener("close", () => {
          websockets--;
          open--;
        }, { once: true });
      },
    };
    const info: ConnectionInfo = { remoteAddr, connection: control };
    try {
      for (;;) {
        const event = await http.nextRequest();
        if (!event) break;
        c.inFlight = true;
        c.since = performance.now();
        let response: Response;
        try {
          const out = options.handler(event.request, info);
          // A synchronous answer is not awaited: one microtask less per request.
          response = out instanceof Promise ? await out : out;
        } catch (err) {
          log.error(`request handler failed: ${err instanceof Error ? err.message : err}`);
          response = Response.json(
            { error: "internal_error", message: "unexpected server error" },
            {
              status: 500,
            },
          );
        }
        if (c.draining && response.status !== 101) {
          // Closing the connection here would cut the response off (respondWith settles
          // before the bytes are written); "connection: close" makes the server end it.
          try {
            response.headers.set("connection", "close");
          } catch { /* immutable headers: the next request is refused by the drain instead */ }
        }
        await event.respondWith(response).catch(() => {});
        if (c.state === "websocket") return; // the socket owns the descriptor now
        c.inFlight = false;
        c.served++;
        c.since = performance.now();
        if (response.status === 101) {
          // Upgraded without upgradeWebSocket: the listener cannot see it close, so it
          // stops counting it rather than leak a slot.
          forget(c);
          open--;
          c.state = "closed";
          return;
        }
        if (c.state === "closed") break;
      }
    } catch {
      // The peer went away or the connection was closed under the request.
    }
    release(c);
  };

  const sweep = () => {
    const now = performance.now();
    for (const c of pending) {
      if (c.inFlight) continue;
      const limit = c.served === 0 ? limits.headerTimeoutMs : limits.idleTimeoutMs;
      if (now - c.since < limit) continue;
      if (c.served === 0) counters.headerTimeouts++;
      else counters.idleTimeouts++;
      release(c);
    }
  };
  const sweeper = setInterval(
    sweep,
    Math.max(25, Math.min(1000, limits.headerTimeoutMs / 4, limits.idleTimeoutMs / 4)),
  );
  Deno.unrefTimer(sweeper);

  const reportEvery = options.reportEveryMs ?? 10_000;
  const report = () => {
    const d = (k: keyof typeof counters) => counters[k] - reported[k];
    const shed = d("evicted") + d("refused") + d("acceptErrors");
    const timeouts = d("headerTimeouts") + d("idleTimeouts");
    if (shed > 0) {
      log.warn(
        `connections under pressure: ${d("refused")} refused with 503 (cap reached), ` +
          `${d("evicted")} idle pending closed to make room, ${d("acceptErrors")} accept ` +
          `errors${lastAcceptError ? ` (last: ${lastAcceptError})` : ""}, ` +
          `${
            d("headerTimeouts")
          } closed without a request in ${limits.headerTimeoutMs} ms; now ${open} open, ${pending.size} pending (caps ${limits.maxConnections} / ` +
          `${limits.maxPending} / ${limits.maxPendingPerAddress} per address)`,
      );
    } else if (timeouts > 0) {
      log.debug(
        `closed ${d("headerTimeouts")} connections without a request and ${
          d("idleTimeouts")
        } idle kept-alive ones`,
      );
    }
    Object.assign(reported, counters);
  };
  const reporter = setInterval(report, reportEvery);
  Deno.unrefTimer(reporter);

  const acceptLoop = async () => {
    let backoff = 5;
    for (;;) {
      let tcp: Deno.TcpConn;
      try {
        tcp = await listener.accept();
      } catch (err) {
        if (closing || err instanceof Deno.errors.BadResource) return;
        counters.acceptErrors++;
        const first = counters.acceptErrors - reported.acceptErrors === 1;
        lastAcceptError = err instanceof Error ? err.message : String(err);
        // Out of descriptors: what frees them fastest is closing connections that are
        // doing nothing; then wait a little so the loop does not spin.
        for (let i = 0; i < 16 && evictOne(pending); i++) { /* shed */ }
        if (first) {
          log.warn(
            `accepting a connection failed (${lastAcceptError}); shedding idle connections ` +
              `and retrying in ${backoff} ms (${open} open, ${pending.size} pending)`,
          );
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 1000);
        continue;
      }
      backoff = 5;
      counters.accepted++;
      if (closing) {
        try {
          tcp.close();
        } catch { /* gone */ }
        continue;
      }
      admit(tcp);
    }
  };
  void acceptLoop();

  return {
    addr: { hostname: addr.hostname, port: addr.port },
    guarded: true,
    stats: () => ({
      open,
      pending: pending.size,
      websockets,
      ...counters,
    }),
    async shutdown() {
      if (!closing) {
        closing = true;
        clearInterval(sweeper);
        clearInterval(reporter);
        report();
        try {
          listener.close();
        } catch { /* closed */ }
      }
      for (const c of [...pending]) {
        if (c.inFlight) c.draining = true; // answered with "connection: close"
        else release(c);
      }
      if (pending.size === 0) return;
      await new Promise<void>((r) => (drained = r));
    },
    closeAll() {
      for (const c of [...pending]) release(c);
    },
  };
}

function tcpAddr(a: Deno.NetAddr): ConnectionInfo["remoteAddr"] {
  return { hostname: a.hostname, port: a.port, transport: a.transport };
}

/** `Deno.serve` as before: no connection limits (asked for, or a Deno without `serveHttp`). */
function serveUnguarded(options: ServeConnectionsOptions, why: string): GuardedServer {
  options.log.warn(
    `${why}: connection caps, header and idle timeouts are OFF and running out of file ` +
      `descriptors stops the listener`,
  );
  let bound: { hostname: string; port: number } = { hostname: options.hostname, port: 0 };
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    reusePort: options.reusePort,
    onListen: (a) => void (bound = { hostname: a.hostname, port: a.port }),
  }, (req, info) => options.handler(req, { remoteAddr: info.remoteAddr as Deno.NetAddr }));
  return {
    get addr() {
      return bound;
    },
    guarded: false,
    stats: () => ({
      open: 0,
      pending: 0,
      websockets: 0,
      accepted: 0,
      headerTimeouts: 0,
      idleTimeouts: 0,
      evicted: 0,
      refused: 0,
      acceptErrors: 0,
    }),
    shutdown: () => server.shutdown(),
    closeAll() {},
  };
}

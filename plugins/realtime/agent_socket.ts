/**
 * The agent WebSocket `/api/agent/ws`. Authenticated before the upgrade — with the
 * same DPoP-bound access token and proof as any agent route (`htm` GET, `htu` the
 * https/http URL of this path), or with a single-use 30-second ticket from
 * `POST /api/agent/ws-ticket` for clients that cannot send headers. Frames are JSON
 * `{type, id?, data}`; a bad frame gets an `error` frame, not a disconnect.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { clientIp } from "../../core/audit.ts";
import { isDatabaseUnavailable } from "../../core/db_errors.ts";
import { isStorageError } from "../../core/storage_health.ts";
import { HttpError } from "../../core/errors.ts";
import { databaseRefusal } from "../../core/input_guard.ts";
import { cleanText, MAX_INPUT_DEPTH, nestsDeeperThan } from "../../core/text.ts";
import type { AppEnv } from "../../core/http.ts";
import { upgradeWebSocket } from "../../core/websocket.ts";
import type { Logger } from "../../core/log.ts";
import type { PluginContext } from "../../core/plugin.ts";
import type { DeviceStore } from "../inventory/mod.ts";
import {
  AccessTokenError,
  type DeviceIdentity,
  dpopChallenge,
  type TokenService,
} from "../tokens/mod.ts";
import type { AcceptLimiter } from "./accept_limiter.ts";
import type { AddressLimiter } from "./address_limiter.ts";
import type { AgentChannel } from "./channel.ts";
import type { Liveness } from "./liveness.ts";
import type { SocketMetrics } from "./metrics.ts";
import type { AgentRegistry, LocalAgent } from "./registry.ts";
import { AgentError, ConnectAgent, Frame, Heartbeat } from "./schemas.ts";
import type { TelemetryIngest } from "./telemetry.ts";
import { ErrorBody } from "../../core/openapi.ts";

/** Close codes the agent protocol defines (docs/agent-protocol.md). */
export const CLOSE = {
  tokenExpired: 4001,
  contained: 4003,
  replaced: 4409,
  shutdown: 4503,
  frameTooLarge: 1009,
} as const;

/**
 * The window a shutdown's reconnect delays are drawn from (ms), for `agents` sockets.
 * It opens after the drain — about 1 s plus 0.2 ms per socket, the time closing them all
 * takes, so no agent knocks while the engine is still saying goodbye — and is wide
 * enough for the accept limiter to admit everyone at its rate (with a quarter to spare),
 * at least 2 s; the window's end is at most `maxMs`.
 */
export function reconnectWindow(
  agents: number,
  acceptPerSecond: number,
  maxMs: number,
): { from: number; to: number } {
  const rate = acceptPerSecond > 0 ? acceptPerSecond : 2000;
  const from = Math.min(maxMs, 1000 + Math.ceil(agents * 0.2));
  const to = Math.min(maxMs, from + Math.max(2000, Math.ceil((agents / rate) * 1250)));
  return { from, to: Math.max(from, to) };
}

/**
 * The close reason of a shutdown (code 4503): the delay this agent should wait before
 * reconnecting, drawn uniformly from the window per agent, so a fleet returns spread out
 * instead of all at once. Documented in docs/agent-protocol.md.
 */
export function shutdownReason(
  window: { from: number; to: number },
  random = Math.random,
): string {
  const delay = window.from + Math.floor(random() * (window.to - window.from));
  return `engine shutting down; reconnect_after_ms=${delay}`;
}

/** Settings the socket needs. */
export interface SocketSettings {
  maxFrameBytes: number;
  idleTimeoutSeconds: number;
  heartbeatIntervalSeconds: number;
}

interface Deps {
  tokens: TokenService;
  /** The inventory's device service (the ticket path's identity lookup). */
  devices: Pick<DeviceStore, "identities">;
  registry: AgentRegistry;
  liveness: Liveness;
  channel: AgentChannel;
  telemetry: TelemetryIngest;
  limiter: AcceptLimiter;
  perAddress: AddressLimiter;
  settings: SocketSettings;
  log: Logger;
  metrics: SocketMetrics;
}

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Registers the socket and ticket routes. */
export function registerAgentSocket(
  ctx: PluginContext,
  d: Deps,
): { open(): Iterable<LocalAgent> } {
  const { sql, clock } = ctx;
  // Every socket from the upgrade on, registered yet or not: a shutdown closes them all.
  const live = new Set<LocalAgent>();
  const guard = d.tokens.auth.guard({ allowQuarantined: true });

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/agent/ws-ticket",
      summary: "A single-use, 30-second ticket to open the agent socket without headers",
      middleware: [guard] as const,
      responses: {
        200: {
          description: "Ticket",
          content: {
            "application/json": {
              schema: z.object({ ticket: z.string(), expires_in: z.number(), url: z.string() }),
            },
          },
        },
        401: {
          description: "Device authentication failed",
          content: { "application/json": { schema: ErrorBody } },
        },
      },
    }),
    async (c) => {
      const id = d.tokens.auth.identity(c);
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      const ticket = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
        .replace(/=+$/, "");
      await sql`
        insert into agent_ws_tickets (ticket_hash, guid, token_version, expires_at)
        values (${await sha256Hex(ticket)}, ${id.guid}, ${id.token_version}, ${new Date(
        clock.now() + 30_000,
      )})`;
      return c.json({ ticket, expires_in: 30, url: `/api/agent/ws?ticket=${ticket}` }, 200);
    },
  );

  /** Authenticates the upgrade request by ticket or DPoP. */
  async function authenticate(
    c: Context<AppEnv>,
  ): Promise<
    {
      guid: string;
      hostname: string;
      siteId: number | null;
      status: string;
      exp: number;
      requestedAt: number;
    }
  > {
    const ticket = c.req.query("ticket");
    if (ticket !== undefined) {
      if (!/^[A-Za-z0-9_-]{20,100}$/.test(ticket)) {
        throw new HttpError(401, "invalid_ticket", "invalid ticket");
      }
      const now = new Date(clock.now());
      const [row] = await sql<{ guid: string; token_version: number }[]>`
        delete from agent_ws_tickets where ticket_hash = ${await sha256Hex(
        ticket,
      )} and expires_at > ${now}
        returning guid, token_version`;
      if (!row) {
        throw new HttpError(401, "invalid_ticket", "the ticket is unknown, used or expired");
      }
      const [dev] = await d.devices.identities([row.guid]);
      if (!dev || dev.token_version !== row.token_version) {
        throw new HttpError(401, "invalid_ticket", "the device's tokens were revoked");
      }
      if (dev.status === "revoked" || dev.status === "decommissioned") {
        throw new HttpError(403, "device_revoked", "this device has been revoked");
      }
      // A ticket connection lives as long as an access token would.
      return {
        guid: row.guid.toUpperCase(),
        hostname: dev.hostname,
        siteId: dev.site_id,
        status: dev.status,
        exp: clock.now() + 900_000,
        requestedAt: clock.now(),
      };
    }
    let id: DeviceIdentity | undefined;
    await guard(c, () => {
      id = d.tokens.auth.identity(c);
      return Promise.resolve();
    });
    const identity = id!;
    return {
      guid: identity.guid,
      hostname: identity.hostname,
      siteId: identity.site_id,
      status: identity.status,
      exp: identity.claims.exp * 1000,
      requestedAt: identity.proof.iat * 1000,
    };
  }

  /**
   * Checks that cost no database work: a ticket of the right shape, or a DPoP access
   * token whose signature and expiry verify. Throws 401 at once when credentials are
   * missing; otherwise returns the token check to run after the per-address limit.
   */
  function screen(c: Context<AppEnv>): () => Promise<void> {
    const ticket = c.req.query("ticket");
    if (ticket !== undefined) {
      if (!/^[A-Za-z0-9_-]{20,100}$/.test(ticket)) {
        throw new HttpError(401, "invalid_ticket", "invalid ticket");
      }
      return () => Promise.resolve();
    }
    const auth = c.req.header("authorization");
    if (!auth) throw dpopChallenge(null, "device authentication required");
    return async () => {
      const m = /^DPoP\s+(\S{1,4096})$/i.exec(auth);
      if (!m) {
        throw dpopChallenge("invalid_token", "Authorization must be: DPoP <access token>");
      }
      try {
        await d.tokens.access.verifyCached(m[1]!);
      } catch (err) {
        if (err instanceof AccessTokenError) throw dpopChallenge("invalid_token", err.message);
        throw err;
      }
    };
  }

  ctx.http.use("/api/agent/ws", d.metrics.upgrades);
  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/agent/ws",
      summary: "Agent WebSocket (DPoP-authenticated upgrade, or ?ticket=)",
      request: { query: z.object({ ticket: z.string().max(100).optional() }) },
      responses: {
        101: { description: "Switching protocols" },
        401: {
          description: "Device authentication failed",
          content: { "application/json": { schema: ErrorBody } },
        },
        426: {
          description: "Not a WebSocket upgrade",
          content: { "application/json": { schema: ErrorBody } },
        },
        429: {
          description: "Too many upgrade attempts from this address; retry after Retry-After",
          content: { "application/json": { schema: ErrorBody } },
        },
        503: {
          description: "Too many connections right now; retry after Retry-After (jittered)",
          content: { "application/json": { schema: ErrorBody } },
        },
      },
    }),
    async (c) => {
      // The accept budget is spent only on upgrades that can succeed: no credentials is a
      // 401 for free, one address cannot take more than its share, and the shared rate is
      // reserved for requests carrying a token that verifies.
      const screened = screen(c);
      const slow = d.perAddress.take(clientIp(c) ?? "unknown");
      if (slow !== null) {
        throw new HttpError(429, "rate_limited", "too many upgrade attempts from this address", {
          retry_after: slow,
        }, { "Retry-After": String(slow) });
      }
      await screened();
      const retry = d.limiter.take();
      if (retry !== null) {
        throw new HttpError(503, "busy", "too many agent connections right now; retry later", {
          retry_after: retry,
        }, {
          "Retry-After": String(retry),
        });
      }
      const who = await authenticate(c);
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new HttpError(426, "upgrade_required", "this endpoint needs a WebSocket upgrade");
      }
      // Before the upgrade: afterwards Deno no longer hands out the request's headers.
      const ip = clientIp(c) ?? undefined;
      const { socket, response } = upgradeWebSocket(c, {
        idleTimeout: d.settings.idleTimeoutSeconds,
      });
      openAgent(socket, who, ip);
      return response as never;
    },
  );

  function openAgent(
    socket: WebSocket,
    who: {
      guid: string;
      hostname: string;
      siteId: number | null;
      status: string;
      exp: number;
      requestedAt: number;
    },
    remoteAddr?: string,
  ): void {
    const ref = { guid: who.guid, hostname: who.hostname, siteId: who.siteId };
    const quarantined = who.status === "quarantined";
    let markClosed!: () => void;
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    const agent: LocalAgent = {
      guid: who.guid,
      hostname: who.hostname,
      siteId: who.siteId,
      connectedAt: clock.now(),
      requestedAt: who.requestedAt,
      remoteAddr,
      send(message) {
        if (socket.readyState !== WebSocket.OPEN) return false;
        socket.send(JSON.stringify(message));
        return true;
      },
      close(code, reason) {
        if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
          socket.close(code, reason);
        }
      },
      closed,
    };
    live.add(agent);
    const expiry = clock.setTimeout(
      () =>
        agent.close(CLOSE.tokenExpired, "token_expired: refresh the access token and reconnect"),
      Math.max(0, who.exp - clock.now()),
    );
    // When the frame being handled arrived (frames of one socket are handled in order
    // up to their first await, which is all a heartbeat needs).
    let arrived = 0;
    const reply = (type: string, id: string | undefined, data: unknown) => {
      d.metrics.replied(type, performance.now() - arrived);
      return agent.send(id ? { type, id, data } : { type, data });
    };
    const fail = (id: string | undefined, code: string, message: string) =>
      reply("error", id, { code, message });

    socket.onopen = () => {
      d.liveness.touch(who.guid, ref);
      // welcome once the connection is registered (every instance can route to the agent
      // from then on, and connect_agent finds its row), then whatever was held for it.
      const welcome = () =>
        agent.send({
          type: "welcome",
          data: {
            guid: who.guid,
            heartbeat_interval_ms: d.settings.heartbeatIntervalSeconds * 1000,
            max_frame_bytes: d.settings.maxFrameBytes,
            token_expires_at: new Date(who.exp).toISOString(),
            quarantined,
          },
        });
      d.registry.add(agent, welcome).catch((err) => {
        d.log.error(
          `registering agent ${who.guid} failed: ${err instanceof Error ? err.message : err}`,
        );
        agent.close(1011, "could not register the connection; reconnect later");
      });
    };

    socket.onmessage = async (event) => {
      arrived = performance.now();
      d.metrics.frame();
      if (typeof event.data !== "string") {
        return fail(undefined, "binary_not_supported", "send JSON text frames");
      }
      if (event.data.length > d.settings.maxFrameBytes) {
        fail(
          undefined,
          "frame_too_large",
          `frames are limited to ${d.settings.maxFrameBytes} bytes`,
        );
        return agent.close(CLOSE.frameTooLarge, "frame too large");
      }
      let raw: unknown;
      try {
        raw = JSON.parse(event.data);
      } catch {
        return fail(undefined, "invalid_json", "frames must be JSON objects {type, id?, data}");
      }
      if (nestsDeeperThan(raw)) {
        return fail(undefined, "invalid_frame", `frames nest at most ${MAX_INPUT_DEPTH} levels`);
      }
      // What an agent sends is its machine's text (script output, registry values): NUL
      // characters and unpaired surrogates are cleaned, as in telemetry (core/text.ts).
      raw = cleanText(raw);
      const frame = Frame.safeParse(raw);
      if (!frame.success) {
        return fail(undefined, "invalid_frame", "frames must be JSON objects {type, id?, data}");
      }
      const { type, id, data } = frame.data;
      try {
        if (type === "heartbeat") {
          const hb = Heartbeat.safeParse(data ?? {});
          if (!hb.success) {
            return fail(
              id,
              "invalid_data",
              hb.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
            );
          }
          d.telemetry.heartbeat(ref, hb.data);
          return reply("heartbeat_ack", id, { server_time: new Date(clock.now()).toISOString() });
        }
        d.liveness.touch(who.guid, ref);
        if (type === "connect_agent") {
          const ca = ConnectAgent.safeParse(data ?? {});
          if (!ca.success) return fail(id, "agent_id_required", "connect_agent needs agent_id");
          await d.registry.describe(who.guid, ca.data.agent_id, ca.data.service_mode);
          return reply("connect_agent_ack", id, { status: "ok" });
        }
        if (type === "ping") return reply("pong", id, {});
        if (type === "error") {
          // Never answered (no error ping-pong); a malformed report is only logged.
          const report = AgentError.safeParse(data ?? {});
          if (!report.success) {
            d.log.debug(`agent ${who.guid} sent a malformed error frame`);
            return;
          }
          d.log.debug(`agent ${who.guid} reported ${report.data.code} (frame ${id ?? "-"})`);
          for (const listen of d.channel.errorListeners) {
            await listen(ref, report.data, frame.data);
          }
          return;
        }
        const h = d.channel.handler(type);
        if (!h) return fail(id, "unknown_type", `unknown message type ${type}`);
        if (quarantined && !h.allowQuarantined) {
          return fail(id, "device_quarantined", "this device is quarantined");
        }
        const parsed = h.schema.safeParse(data);
        if (!parsed.success) {
          return fail(
            id,
            "invalid_data",
            parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
          );
        }
        const result = await h.handler(ref, parsed.data, frame.data);
        if (result !== undefined) reply(`${type}_ack`, id, result);
      } catch (err) {
        if (err instanceof HttpError) return fail(id, err.code, err.message);
        if (isDatabaseUnavailable(err) || isStorageError(err)) {
          // The socket stays; the agent may send the message again later.
          return fail(
            id,
            "database_unavailable",
            "the engine's database is unreachable; retry later",
          );
        }
        const refusal = databaseRefusal(err);
        if (refusal) return fail(id, refusal.error, refusal.message);
        d.log.error(
          `agent ${who.guid} message ${type} failed: ${err instanceof Error ? err.message : err}`,
        );
        fail(id, "internal_error", "the engine could not handle this message");
      }
    };

    socket.onclose = () => {
      live.delete(agent);
      markClosed();
      clock.clearTimeout(expiry);
      d.liveness.touch(who.guid, ref);
      d.registry.remove(agent).catch((err) =>
        d.log.warn(
          `unregistering agent ${who.guid} failed: ${err instanceof Error ? err.message : err}`,
        )
      );
    };
    socket.onerror = () => {/* onclose follows */};
  }
  return { open: () => live };
}

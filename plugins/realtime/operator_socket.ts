/**
 * The operator WebSocket `/api/ws` (session cookie or bearer token). Operators
 * subscribe to topics; every event carries the site of its object and is delivered
 * only to operators who may see that site. Presence (`operator_presence_sync`,
 * `operator_presence_clear`) is shared across instances over the event bus.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { type Principal, principalOf, requireRole } from "../../core/auth.ts";
import { type EventBus, eventKey } from "../../core/events.ts";
import { HttpError } from "../../core/errors.ts";
import { upgradeWebSocket } from "../../core/websocket.ts";
import type { PluginContext } from "../../core/plugin.ts";
import { type AgentChannel, operatorEvent, type OperatorLink } from "./channel.ts";
import { Frame, Notify, OperatorFrame, type Topic } from "./schemas.ts";

interface OperatorConn {
  id: string;
  principal: Principal;
  topics: Set<Topic>;
  send(data: unknown): void;
  close(code: number, reason: string): void;
}

/** Close codes of the operator socket. */
export const OPERATOR_CLOSE = {
  /** The session or API token that opened the socket ended (sign-out, revocation, …). */
  sessionEnded: 4401,
  /** The operator's role or sites changed: reconnect to see what they allow now. */
  permissionsChanged: 4403,
} as const;

/** Which credentials are still live, with the role and sites they carry now. */
export type CredentialCheck = (
  ids: readonly string[],
) => Promise<Map<string, { role: string; sites: "all" | number[] }>>;

interface PresenceEntry {
  conn: string;
  instance: string;
  username: string;
  role?: string;
  current_page: string;
  at: string;
}

const presenceEvent = eventKey<{ conn: string; entry: PresenceEntry | null }>("realtime.presence");

function visible(p: Principal, siteId: number | null | "all"): boolean {
  if (siteId === "all" || p.sites === "all") return true;
  return siteId !== null && p.sites.includes(siteId);
}

/** Operator sockets of one instance. */
export class OperatorHub {
  readonly #conns = new Map<string, OperatorConn>();
  readonly #presence = new Map<string, PresenceEntry>();

  constructor(private readonly events: EventBus, private readonly instanceId: string) {
    events.subscribe(operatorEvent, (e) => {
      const frame = JSON.stringify({ type: e.type, topic: e.topic, data: e.data });
      for (const c of this.#conns.values()) {
        if (c.topics.has(e.topic) && visible(c.principal, e.site_id)) c.send(frame);
      }
    });
    events.subscribe(presenceEvent, (e) => {
      if (e.entry) this.#presence.set(e.conn, e.entry);
      else this.#presence.delete(e.conn);
    });
  }

  /** Open operator sockets here. */
  get size(): number {
    return this.#conns.size;
  }

  /** Presence across the cluster. */
  presence(): PresenceEntry[] {
    return [...this.#presence.values()];
  }

  add(conn: OperatorConn): void {
    this.#conns.set(conn.id, conn);
  }

  async remove(id: string): Promise<void> {
    this.#conns.delete(id);
    if (this.#presence.has(id)) await this.setPresence(id, null);
  }

  async setPresence(
    conn: string,
    entry: Omit<PresenceEntry, "conn" | "instance" | "at"> | null,
    at?: string,
  ) {
    const full = entry
      ? { ...entry, conn, instance: this.instanceId, at: at ?? new Date().toISOString() }
      : null;
    await this.events.publish(presenceEvent, { conn, entry: full });
  }

  closeAll(): void {
    this.#conns.clear();
  }

  #check?: CredentialCheck;
  #verifying?: Promise<void>;
  #again = false;

  /** Installs how sockets are checked against their credentials (the operators plugin). */
  setCredentialCheck(check: CredentialCheck): void {
    this.#check = check;
  }

  /**
   * Closes every socket whose session or API token has ended (4401) or whose role or
   * sites changed (4403). Calls that arrive while a check runs are folded into one more.
   */
  verify(): Promise<void> {
    if (this.#verifying) {
      this.#again = true;
      return this.#verifying;
    }
    this.#verifying = (async () => {
      do {
        this.#again = false;
        await this.#verifyOnce();
      } while (this.#again);
    })().finally(() => (this.#verifying = undefined));
    return this.#verifying;
  }

  /**
   * Whether one credential is still live: false, or its current role and sites (true
   * when nothing checks credentials, e.g. without the operators plugin).
   */
  async credentialLive(
    id: string,
  ): Promise<false | true | { role: string; sites: "all" | number[] }> {
    if (!this.#check) return true;
    return (await this.#check([id])).get(id) ?? false;
  }

  async #verifyOnce(): Promise<void> {
    const check = this.#check;
    if (!check) return;
    const conns = [...this.#conns.values()].filter((c) =>
      c.principal.kind === "operator" && c.principal.credentialId
    );
    if (!conns.length) return;
    const live = await check([...new Set(conns.map((c) => c.principal.credentialId!))]);
    for (const c of conns) {
      const now = live.get(c.principal.credentialId!);
      if (!now) {
        c.close(OPERATOR_CLOSE.sessionEnded, "session ended; sign in again");
        void this.remove(c.id);
      } else if (now.role !== c.principal.role || !sameSites(now.sites, c.principal.sites)) {
        c.close(OPERATOR_CLOSE.permissionsChanged, "role or sites changed; reconnect");
        void this.remove(c.id);
      }
    }
  }
}

/** 32 random bytes, base64url. */
function randomTicket(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

function sameSites(a: "all" | readonly number[], b: "all" | readonly number[]): boolean {
  if (a === "all" || b === "all") return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const ErrorBody = z.object({ error: z.string(), message: z.string() });

/** Registers `/api/ws`, `/api/presence` and `/api/notifications/notify`. */
export function registerOperatorSocket(
  ctx: PluginContext,
  hub: OperatorHub,
  channel: AgentChannel,
): void {
  const { clock } = ctx;

  const { sql } = ctx;
  const userGuard = requireRole("User");

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/ws-ticket",
      summary: "A single-use, 30-second ticket to open /api/ws without a cookie",
      description:
        "For a console signed in with a bearer token (e.g. served from another origin): " +
        "browsers cannot send an Authorization header on a WebSocket. Open " +
        "`/api/ws?ticket=<ticket>` within 30 seconds; the socket belongs to the session " +
        "or API token that asked and closes when it ends.",
      middleware: [userGuard] as const,
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
          description: "Not signed in",
          content: { "application/json": { schema: ErrorBody } },
        },
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      if (!p.credentialId) {
        throw new HttpError(403, "ticket_not_available", "this credential cannot open sockets");
      }
      const ticket = randomTicket();
      await sql`
        insert into operator_ws_tickets (ticket_hash, credential_id, principal, expires_at)
        values (${await sha256Hex(ticket)}, ${p.credentialId}, ${sql.json(p as never)},
                ${new Date(clock.now() + 30_000)})`;
      c.header("Cache-Control", "no-store");
      return c.json({ ticket, expires_in: 30, url: `/api/ws?ticket=${ticket}` }, 200);
    },
  );

  /** Redeems a ticket once; the principal comes back with its current role and sites. */
  async function redeem(ticket: string): Promise<Principal> {
    const invalid = () =>
      new HttpError(401, "invalid_ticket", "the ticket is unknown, used or expired");
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(ticket)) throw invalid();
    const [row] = await sql<{ principal: Principal; credential_id: string }[]>`
      delete from operator_ws_tickets
      where ticket_hash = ${await sha256Hex(ticket)} and expires_at > ${new Date(clock.now())}
      returning principal, credential_id`;
    if (!row) throw invalid();
    const live = await hub.credentialLive(row.credential_id);
    if (live === false) throw invalid();
    return live === true ? row.principal : { ...row.principal, ...live } as Principal;
  }

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/ws",
      summary: "Operator WebSocket: topic subscriptions, presence",
      description: "Signed in by the session cookie (from the engine's own origin or an " +
        "allowed one), a bearer token (non-browser clients), or `?ticket=` from " +
        "`POST /api/ws-ticket`.",
      request: { query: z.object({ ticket: z.string().max(100).optional() }) },
      responses: {
        101: { description: "Switching protocols" },
        401: {
          description: "Not signed in, or the ticket is unknown, used or expired",
          content: { "application/json": { schema: ErrorBody } },
        },
        403: {
          description: "A cookie sent from an origin that is not allowed",
          content: { "application/json": { schema: ErrorBody } },
        },
        426: {
          description: "Not a WebSocket upgrade",
          content: { "application/json": { schema: ErrorBody } },
        },
      },
    }),
    async (c) => {
      const ticket = c.req.query("ticket");
      let principal: Principal;
      if (ticket !== undefined) principal = await redeem(ticket);
      else {
        await userGuard(c, () => Promise.resolve());
        principal = await principalOf(c);
      }
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new HttpError(426, "upgrade_required", "this endpoint needs a WebSocket upgrade");
      }
      const { socket, response } = upgradeWebSocket(c, { idleTimeout: 60 });
      const conn: OperatorConn = {
        id: crypto.randomUUID(),
        principal,
        topics: new Set(),
        send: (data) => {
          if (socket.readyState === WebSocket.OPEN) {
            socket.send(typeof data === "string" ? data : JSON.stringify(data));
          }
        },
        close: (code, reason) => {
          if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
            socket.close(code, reason);
          }
        },
      };
      const closeHooks: Array<(code: number) => void> = [];
      const link: OperatorLink = {
        id: conn.id,
        principal,
        get open() {
          return socket.readyState === WebSocket.OPEN;
        },
        get bufferedAmount() {
          return socket.bufferedAmount;
        },
        send(frame) {
          if (socket.readyState !== WebSocket.OPEN) return false;
          socket.send(JSON.stringify(frame));
          return true;
        },
        onClose(fn) {
          closeHooks.push(fn);
        },
      };
      /** A frame type a plugin registered (terminal sessions, …). */
      const pluginFrame = async (raw: unknown): Promise<boolean> => {
        const type = (raw as { type?: unknown })?.type;
        const h = typeof type === "string" ? channel.operatorHandler(type) : undefined;
        if (!h) return false;
        const f = Frame.safeParse(raw);
        const data = f.success ? h.schema.safeParse(f.data.data ?? {}) : undefined;
        const id = f.success ? f.data.id : undefined;
        const fail = (code: string, message: string) =>
          conn.send({ type: "error", ...(id ? { id } : {}), data: { code, message } });
        if (!f.success || !data?.success) {
          const issues = (f.success ? data!.error! : f.error).issues;
          fail("invalid_frame", issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
          return true;
        }
        try {
          const result = await h.handler(link, data.data, { type: f.data.type, id });
          if (result !== undefined) {
            conn.send({ type: `${f.data.type}_ack`, ...(id ? { id } : {}), data: result });
          }
        } catch (err) {
          if (err instanceof HttpError) fail(err.code, err.message);
          else {
            ctx.log.error(
              `operator frame ${f.data.type} failed: ${err instanceof Error ? err.message : err}`,
            );
            fail("internal_error", "the engine could not handle this frame");
          }
        }
        return true;
      };
      socket.onopen = () => {
        hub.add(conn);
        conn.send({
          type: "welcome",
          data: { username: principal.name, role: principal.role ?? null },
        });
      };
      socket.onmessage = async (event) => {
        if (typeof event.data !== "string" || event.data.length > 65_536) {
          return conn.send({
            type: "error",
            data: { code: "invalid_frame", message: "send JSON text frames up to 64 KB" },
          });
        }
        let raw: unknown;
        try {
          raw = JSON.parse(event.data);
        } catch {
          return conn.send({
            type: "error",
            data: { code: "invalid_json", message: "frames must be JSON" },
          });
        }
        if (await pluginFrame(raw)) return;
        const parsed = OperatorFrame.safeParse(raw);
        if (!parsed.success) {
          const id = (raw as { id?: unknown })?.id;
          return conn.send({
            type: "error",
            ...(typeof id === "string" ? { id } : {}),
            data: {
              code: "invalid_frame",
              message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join(
                "; ",
              ),
            },
          });
        }
        const f = parsed.data;
        const ack = (data: unknown) =>
          conn.send({ type: `${f.type}_ack`, ...(f.id ? { id: f.id } : {}), data });
        switch (f.type) {
          case "subscribe":
            for (const t of f.data.topics) conn.topics.add(t);
            return ack({ topics: [...conn.topics] });
          case "unsubscribe":
            for (const t of f.data.topics) conn.topics.delete(t);
            return ack({ topics: [...conn.topics] });
          case "operator_presence_sync":
            await hub.setPresence(conn.id, {
              username: principal.name,
              role: principal.role,
              current_page: f.data.current_page,
            }, new Date(clock.now()).toISOString());
            await channel.emitToOperators("presence", "server_operator_presence_changed", {
              changed_at: new Date(clock.now()).toISOString(),
            }, "all");
            return ack({ status: "ok" });
          case "operator_presence_clear":
            await hub.setPresence(conn.id, null);
            await channel.emitToOperators("presence", "server_operator_presence_changed", {
              changed_at: new Date(clock.now()).toISOString(),
            }, "all");
            return ack({ status: "ok" });
          case "ping":
            return conn.send({ type: "pong", ...(f.id ? { id: f.id } : {}), data: {} });
        }
      };
      socket.onclose = (e) => {
        void hub.remove(conn.id);
        for (const fn of closeHooks.splice(0)) {
          try {
            fn(e.code);
          } catch (err) {
            ctx.log.error(`operator socket close hook failed: ${err}`);
          }
        }
      };
      return response as never;
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/presence",
      summary: "Operators currently connected and the page each is on",
      middleware: [requireRole("User")] as const,
      responses: {
        200: {
          description: "Presence",
          content: {
            "application/json": {
              schema: z.object({
                operators: z.array(
                  z.object({
                    username: z.string(),
                    role: z.string().optional(),
                    current_page: z.string(),
                    at: z.string(),
                  }),
                ),
              }),
            },
          },
        },
      },
    }),
    (c) => {
      const operators = hub.presence().map(({ username, role, current_page, at }) => ({
        username,
        role,
        current_page,
        at,
      }));
      return c.json({ operators }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/notifications/notify",
      summary: "Send a borealis_notification to operators (of one site, or everyone)",
      middleware: [requireRole("User")] as const,
      request: { body: { required: true, content: { "application/json": { schema: Notify } } } },
      responses: {
        202: {
          description: "Sent",
          content: { "application/json": { schema: z.object({ id: z.string() }) } },
        },
        400: {
          description: "Invalid body",
          content: { "application/json": { schema: ErrorBody } },
        },
        404: {
          description: "Site not visible",
          content: { "application/json": { schema: ErrorBody } },
        },
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const body = c.req.valid("json");
      if (body.site_id !== undefined && !visible(p, body.site_id)) {
        throw new HttpError(404, "not_found", "no such site");
      }
      const id = crypto.randomUUID();
      await channel.emitToOperators("notifications", "borealis_notification", {
        id,
        title: body.title,
        message: body.message,
        icon: body.icon ?? null,
        variant: body.variant,
        username: p.name,
        role: p.role ?? null,
        created_at: new Date(clock.now()).toISOString(),
      }, body.site_id ?? "all");
      await ctx.audit(c, {
        action: "notification.send",
        target: body.site_id ? `site:${body.site_id}` : "all",
        details: { title: body.title },
      });
      return c.json({ id }, 202);
    },
  );
}

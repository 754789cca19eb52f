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
import { type AgentChannel, operatorEvent } from "./channel.ts";
import { Notify, OperatorFrame, type Topic } from "./schemas.ts";

interface OperatorConn {
  id: string;
  principal: Principal;
  topics: Set<Topic>;
  send(data: unknown): void;
}

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
}

const ErrorBody = z.object({ error: z.string(), message: z.string() });

/** Registers `/api/ws`, `/api/presence` and `/api/notifications/notify`. */
export function registerOperatorSocket(
  ctx: PluginContext,
  hub: OperatorHub,
  channel: AgentChannel,
): void {
  const { clock } = ctx;

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/ws",
      summary: "Operator WebSocket: topic subscriptions, presence",
      middleware: [requireRole("User")] as const,
      responses: {
        101: { description: "Switching protocols" },
        401: {
          description: "Not signed in",
          content: { "application/json": { schema: ErrorBody } },
        },
        426: {
          description: "Not a WebSocket upgrade",
          content: { "application/json": { schema: ErrorBody } },
        },
      },
    }),
    async (c) => {
      const principal = await principalOf(c);
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
      socket.onclose = () => void hub.remove(conn.id);
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

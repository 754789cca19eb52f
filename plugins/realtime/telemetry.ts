/**
 * Telemetry ingest (upstream §3.4): heartbeats (HTTP and socket) only touch memory and
 * reach the database with the next liveness flush; status posts are liveness with
 * coalescing of identical payloads; details are deep-merged over the stored document,
 * with the software list normalized into `device_software_inventory`, and byte-identical
 * bodies within the coalescing window are acknowledged without work.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { HttpError } from "../../core/errors.ts";
import type { EventBus } from "../../core/events.ts";
import type { PluginContext } from "../../core/plugin.ts";
import type { TokenService } from "../tokens/mod.ts";
import { type AgentChannel, type AgentRef, telemetryReceived } from "./channel.ts";
import type { HeartbeatFields, Liveness } from "./liveness.ts";
import { mergeDetails, normalizeSoftwareName } from "./merge.ts";
import { Details, Heartbeat, Status } from "./schemas.ts";

/** Largest details body (upstream: 24 MB). */
export const DETAILS_LIMIT = 24 * 1024 * 1024;

interface Seen {
  hash: string;
  at: number;
}

/** Applies telemetry; shared by the HTTP routes and the socket. */
export class TelemetryIngest {
  readonly #statusSeen = new Map<string, Seen>();
  readonly #detailsSeen = new Map<string, Seen>();

  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly liveness: Liveness,
    private readonly events: EventBus,
    private readonly coalesceMs: number,
  ) {}

  /** A heartbeat: memory only until the next flush. */
  heartbeat(agent: AgentRef, hb: z.infer<typeof Heartbeat>): void {
    const m = hb.metrics ?? {};
    const fields: HeartbeatFields = {
      operating_system: m.operating_system,
      last_user: m.last_user,
      uptime: m.uptime,
      domain: m.domain,
      last_reboot: m.last_reboot,
      cpu_percent: m.cpu_percent,
      memory_percent: m.memory_percent,
      external_ip: hb.external_ip,
      internal_ip: hb.internal_ip,
      device_type: hb.device_type,
      agent_hash: hb.agent_hash ?? hb.agent_build_id ?? hb.installed_build_id,
    };
    const details: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(hb.inventory ?? {})) if (v !== undefined) details[k] = v;
    if (hb.agent_role_health) details.agent_role_health = hb.agent_role_health;
    if (Object.keys(details).length) fields.details = details;
    for (const k of Object.keys(fields) as Array<keyof HeartbeatFields>) {
      if (fields[k] === undefined) delete fields[k];
    }
    this.liveness.touch(agent.guid, agent, fields);
    const kinds = [
      "heartbeat",
      ...(fields.cpu_percent !== undefined || fields.memory_percent !== undefined
        ? ["metrics"]
        : []),
      ...Object.keys(details),
    ];
    void this.events.publish(
      telemetryReceived,
      { guid: agent.guid, site_id: agent.siteId, kinds },
      { localOnly: true },
    );
  }

  /** A status post; returns whether it was coalesced. */
  status(agent: AgentRef, body: z.infer<typeof Status>): boolean {
    const now = this.clock.now();
    const hash = JSON.stringify(body);
    const seen = this.#statusSeen.get(agent.guid);
    this.liveness.touch(
      agent.guid,
      agent,
      body.agent_hash ? { agent_hash: body.agent_hash } : undefined,
    );
    if (seen && seen.hash === hash && now - seen.at < this.coalesceMs) return true;
    this.#statusSeen.set(agent.guid, { hash, at: now });
    return false;
  }

  /** Whether a details body is byte-identical to one received within the window. */
  async detailsCoalesced(guid: string, raw: string): Promise<boolean> {
    const now = this.clock.now();
    const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(raw));
    const hash = Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
    const seen = this.#detailsSeen.get(guid);
    if (seen && seen.hash === hash && now - seen.at < this.coalesceMs) return true;
    this.#detailsSeen.set(guid, { hash, at: now });
    return false;
  }

  /** Merges a details document and rebuilds the software inventory. */
  async details(agent: AgentRef, body: z.infer<typeof Details>): Promise<void> {
    const [row] = await this.sql<{ details: Record<string, unknown> }[]>`
      select details from devices where guid = ${agent.guid}`;
    if (!row) throw new HttpError(404, "device_not_registered", "this device is not registered");
    const { software, ...rest } = body.details;
    const merged = mergeDetails(row.details, rest) as Record<string, unknown>;
    const s = (body.details.summary ?? {}) as Record<string, unknown>;
    const text = (v: unknown) => (typeof v === "string" && v.trim() ? v.slice(0, 512) : null);
    const now = new Date(this.clock.now());
    // When each part was last reported (the console shows a snapshot's age), and the size
    // of the software list, which lives in its own table (the device list counts it).
    const previous = merged.collected_at;
    const collected: Record<string, unknown> = previous && typeof previous === "object"
      ? { ...previous as Record<string, unknown> }
      : {};
    for (const kind of Object.keys(body.details)) collected[kind] = now.toISOString();
    merged.collected_at = collected;
    if (software) merged.software_count = software.length;
    const softwareRows = (software ?? []).map((sw) => ({
      name: sw.name,
      name_normalized: normalizeSoftwareName(sw.name),
      version: sw.version ?? "",
      source: sw.source ?? "",
    }));
    // Everything is shaped above; the transaction only writes.
    await this.sql.begin(async (tx) => {
      await tx`
        update devices set details = ${tx.json(merged as never)},
          operating_system = coalesce(${text(s.operating_system)}, operating_system),
          device_type = coalesce(${text(s.device_type)}, device_type),
          domain = coalesce(${text(s.domain)}, domain),
          last_user = coalesce(${text(s.last_user)}, last_user),
          external_ip = coalesce(${text(s.external_ip)}, external_ip),
          internal_ip = coalesce(${text(s.internal_ip)}, internal_ip),
          connection_type = coalesce(${text(s.connection_type)}, connection_type),
          connection_endpoint = coalesce(${text(s.connection_endpoint)}, connection_endpoint),
          agent_hash = coalesce(${body.agent_hash ?? null}, agent_hash)
        where guid = ${agent.guid}`;
      if (software) {
        await tx`delete from device_software_inventory where device_guid = ${agent.guid}`;
        if (softwareRows.length) {
          await tx`
            insert into device_software_inventory (device_guid, name, name_normalized, version, source, captured_at)
            select ${agent.guid}::uuid, v.name, v.name_normalized, v.version, v.source, ${now}::timestamptz
            from jsonb_to_recordset(${tx.json(softwareRows as never)}::jsonb)
              as v(name text, name_normalized text, version text, source text)`;
        }
      }
    });
    this.liveness.touch(agent.guid, agent);
    const kinds = Object.keys(rest).concat(software ? ["software"] : []);
    await this.events.publish(
      telemetryReceived,
      { guid: agent.guid, site_id: agent.siteId, kinds },
      { localOnly: true },
    );
  }

  /** Forgets coalescing state older than the window (memory bound). */
  prune(): void {
    const cutoff = this.clock.now() - this.coalesceMs;
    for (const m of [this.#statusSeen, this.#detailsSeen]) {
      for (const [k, v] of m) if (v.at < cutoff) m.delete(k);
    }
  }
}

const Ok = z.object({
  status: z.literal("ok"),
  poll_after_ms: z.number().optional(),
  coalesced: z.boolean().optional(),
});
const ErrorBody = z.object({ error: z.string(), message: z.string() });

/** Registers the telemetry routes. */
export function registerTelemetryRoutes(
  ctx: PluginContext,
  tokens: TokenService,
  ingest: TelemetryIngest,
  channel: AgentChannel,
): void {
  const guard = tokens.auth.guard({ allowQuarantined: true });
  const refOf = (c: Parameters<typeof tokens.auth.identity>[0]): AgentRef => {
    const id = tokens.auth.identity(c);
    return { guid: id.guid, hostname: id.hostname, siteId: id.site_id };
  };
  const errors = {
    400: { description: "Invalid body", content: { "application/json": { schema: ErrorBody } } },
    401: {
      description: "Device authentication failed",
      content: { "application/json": { schema: ErrorBody } },
    },
  };

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/agent/heartbeat",
      summary: "Agent heartbeat with metrics and inventory",
      middleware: [guard] as const,
      request: { body: { required: true, content: { "application/json": { schema: Heartbeat } } } },
      responses: {
        200: { description: "Recorded", content: { "application/json": { schema: Ok } } },
        ...errors,
      },
    }),
    (c) => {
      ingest.heartbeat(refOf(c), c.req.valid("json"));
      return c.json({ status: "ok" as const, poll_after_ms: 15_000 }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/agent/status",
      summary: "Agent liveness; identical payloads within 30 s are coalesced",
      middleware: [guard] as const,
      request: { body: { required: true, content: { "application/json": { schema: Status } } } },
      responses: {
        200: {
          description: "Recorded",
          content: {
            "application/json": {
              schema: Ok.extend({
                site_id: z.number().nullable(),
                site_name: z.string().nullable(),
              }),
            },
          },
        },
        ...errors,
      },
    }),
    async (c) => {
      const ref = refOf(c);
      const coalesced = ingest.status(ref, c.req.valid("json"));
      const [site] = ref.siteId === null
        ? []
        : await ctx.sql<{ name: string }[]>`select name from sites where id = ${ref.siteId}`;
      return c.json({
        status: "ok" as const,
        poll_after_ms: 30_000,
        site_id: ref.siteId,
        site_name: site?.name ?? null,
        ...(coalesced ? { coalesced: true } : {}),
      }, 200);
    },
  );

  ctx.bodyLimit("/api/agent/details", DETAILS_LIMIT);
  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/agent/details",
      summary: "Full device details (≤ 24 MB), deep-merged over stored data",
      middleware: [guard] as const,
      request: { body: { required: true, content: { "application/json": { schema: Details } } } },
      responses: {
        200: { description: "Stored", content: { "application/json": { schema: Ok } } },
        ...errors,
      },
    }),
    async (c) => {
      const ref = refOf(c);
      // Hono caches the body text, so this re-read costs nothing after validation.
      const raw = await c.req.text();
      if (await ingest.detailsCoalesced(ref.guid, raw)) {
        return c.json({ status: "ok" as const, coalesced: true }, 200);
      }
      await ingest.details(ref, c.req.valid("json"));
      await channel.emitToOperators("inventory", "device_inventory_changed", {
        guid: ref.guid,
        hostname: ref.hostname,
      }, ref.siteId);
      await channel.emitToOperators("inventory", "device_services_changed", {
        guid: ref.guid,
        hostname: ref.hostname,
      }, ref.siteId);
      return c.json({ status: "ok" as const }, 200);
    },
  );
}

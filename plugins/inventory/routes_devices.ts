/**
 * Device routes (upstream §1.10): list, search, detail by GUID and by hostname,
 * description edit, and Admin containment. Scope is enforced by the service: a device
 * outside the caller's sites answers 404.
 *
 * @module
 */
import { idParam, intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import { isLoopbackRequest } from "../../core/client_ip.ts";
import { forbidden } from "../../core/errors.ts";
import type { Router } from "../../core/http.ts";
import { Device, errorResponse, jsonBody, jsonResponse } from "./schemas.ts";
import {
  DEVICE_SORT_FIELDS,
  DEVICE_TEXT_FIELDS,
  type DeviceSortField,
  type DeviceTextField,
  type InventoryService,
} from "./service.ts";
import type { FilterService } from "./filters.ts";
import { PRESENCE_STATES } from "./presence.ts";
import type { ContainmentAction, DeviceRecord } from "./types.ts";

const tags = ["devices"];
const Guid = z.string().uuid();
const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const listLength = (v: unknown) => (Array.isArray(v) ? v.length : null);
const record = (v: unknown): Record<string, unknown> =>
  v && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : {};
const shortText = (v: unknown) => (typeof v === "string" && v.trim() ? v.slice(0, 200) : null);

/** The API shape of a device. */
export function deviceView(d: DeviceRecord) {
  const details = record(d.details);
  const cpu = record(details.cpu);
  return {
    guid: d.guid,
    hostname: d.hostname,
    description: d.description,
    site_id: d.site_id,
    site_name: d.site_name,
    status: d.online ? "Online" as const : "Offline" as const,
    presence: d.presence,
    containment_status: d.status,
    token_version: d.token_version,
    ssl_key_fingerprint: d.ssl_key_fingerprint,
    last_seen: iso(d.last_seen),
    created_at: iso(d.created_at)!,
    last_enrollment_at: iso(d.last_enrollment_at),
    agent_hash: d.agent_hash,
    agent_version: d.agent_version !== undefined
      ? shortText(d.agent_version)
      : shortText(record(details.summary).agent_version),
    cpu: d.cpu_name !== undefined
      ? shortText(d.cpu_name)
      : shortText(cpu.name) ?? shortText(cpu.model) ?? shortText(cpu.brand),
    // List rows come with these computed by SQL; a single device computes them here.
    inventory_counts: d.memory_modules !== undefined
      ? {
        memory_modules: d.memory_modules ?? null,
        volumes: d.volumes ?? null,
        network_adapters: d.network_adapters ?? null,
        software_items: d.software_items ?? null,
      }
      : {
        memory_modules: listLength(details.memory),
        volumes: listLength(details.storage),
        network_adapters: listLength(details.network),
        // The software list lives in its own table; telemetry keeps its size in details.
        software_items: typeof details.software_count === "number"
          ? details.software_count
          : listLength(details.software),
      },
    summary: {
      hostname: d.hostname,
      description: d.description,
      agent_id: d.agent_id,
      device_type: d.device_type,
      domain: d.domain,
      external_ip: d.external_ip,
      internal_ip: d.internal_ip,
      last_reboot: iso(d.last_reboot),
      last_seen: iso(d.last_seen),
      last_user: d.last_user,
      operating_system: d.operating_system,
      uptime: d.uptime === null ? null : Number(d.uptime),
      cpu_percent: d.cpu_percent,
      memory_percent: d.memory_percent,
      connection_type: d.connection_type,
      connection_endpoint: d.connection_endpoint,
      site_id: d.site_id,
      site_name: d.site_name,
    },
  };
}

const textFilters = Object.fromEntries(
  (Object.keys(DEVICE_TEXT_FIELDS) as DeviceTextField[]).map((f) => [
    f,
    z.string().max(255).optional().describe(`substring of ${f}`),
  ]),
) as Record<DeviceTextField, z.ZodOptional<z.ZodString>>;

const list = createRoute({
  method: "get",
  path: "/api/devices",
  tags,
  summary: "Devices the caller may see: filtered, sorted and paged on the server",
  description: "Text filters match a case-insensitive substring of their column; `q` matches " +
    "hostname, description, last user or an address. `total` counts every match.",
  middleware: [requireRole("User")] as const,
  request: {
    query: z.object({
      site_id: idParam().optional(),
      presence: z.enum(PRESENCE_STATES).optional().describe(
        "online, offline or overdue: the rows' presence, judged in SQL",
      ),
      containment: z.enum(["active", "quarantined", "revoked", "decommissioned"]).optional(),
      filter_id: idParam().optional().describe("only the devices a saved filter matches now"),
      q: z.string().max(255).trim().optional(),
      ...textFilters,
      sort: z.enum(Object.keys(DEVICE_SORT_FIELDS) as [DeviceSortField, ...DeviceSortField[]])
        .default("hostname"),
      order: z.enum(["asc", "desc"]).default("asc"),
      limit: intParam({ min: 1, max: 10_000 }).default(10_000),
      offset: intParam({ min: 0 }).default(0),
    }),
  },
  responses: {
    200: jsonResponse(
      "Devices",
      z.object({ devices: z.array(Device), total: z.number().int().describe("All matches") }),
    ),
  },
});

const search = createRoute({
  method: "get",
  path: "/api/devices/search",
  tags,
  summary: "Search devices by hostname (substring, case-insensitive)",
  middleware: [requireRole("User")] as const,
  request: { query: z.object({ hostname: z.string().trim().max(255).default("") }) },
  responses: {
    200: jsonResponse(
      "Matches",
      z.object({
        count: z.number().int(),
        devices: z.array(z.object({
          agent_guid: z.string(),
          agent_id: z.string().nullable(),
          hostname: z.string(),
          connection_type: z.string().nullable(),
          site_id: z.number().int().nullable(),
          site_name: z.string().nullable(),
          site_description: z.string().nullable(),
        })),
      }),
    ),
  },
});

const byGuid = createRoute({
  method: "get",
  path: "/api/devices/{guid}",
  tags,
  summary: "One device by GUID",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ guid: Guid }) },
  responses: {
    200: jsonResponse("Device", Device.extend({ details: z.record(z.string(), z.unknown()) })),
    404: errorResponse("No such device in scope"),
  },
});

const byHostname = createRoute({
  method: "get",
  path: "/api/device/details/{hostname}",
  tags,
  summary: "One device by hostname",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ hostname: z.string().min(1).max(255) }) },
  responses: {
    200: jsonResponse("Device", Device.extend({ details: z.record(z.string(), z.unknown()) })),
    404: errorResponse("No such device in scope"),
  },
});

const describe = createRoute({
  method: "post",
  path: "/api/device/description/{hostname}",
  tags,
  summary: "Set a device's description",
  middleware: [requireRole("User")] as const,
  request: {
    params: z.object({ hostname: z.string().min(1).max(255) }),
    ...jsonBody(z.object({ description: z.string().max(4000) }).strict()),
  },
  responses: {
    200: jsonResponse("Updated", z.object({ status: z.literal("ok"), description: z.string() })),
    404: errorResponse("No such device in scope"),
  },
});

const containment = (action: ContainmentAction) =>
  createRoute({
    method: "post",
    path: `/api/devices/{guid}/${action}`,
    tags,
    summary: `${action[0]!.toUpperCase()}${action.slice(1)} a device (bumps token_version${
      action === "revoke" || action === "purge" ? ", ends refresh tokens" : ""
    }${action === "purge" ? ", leaves a purge barrier" : ""})`,
    middleware: [requireRole("Admin")] as const,
    request: { params: z.object({ guid: Guid }) },
    responses: {
      200: jsonResponse(
        "Done",
        z.object({
          status: z.literal("ok"),
          guid: z.string(),
          action: z.string(),
          token_version: z.number().int().nullable(),
          containment_status: z.string().nullable(),
        }),
      ),
      404: errorResponse("No such device"),
      409: errorResponse("Not allowed from the device's current state"),
    },
  });

const hashList = createRoute({
  method: "get",
  path: "/api/agent/hash_list",
  tags,
  summary: "Every device's agent build hash (Admin, and only from this machine)",
  description:
    "As upstream: Admin and loopback only. A loopback request carrying X-Forwarded-For, " +
    "Forwarded or X-Real-IP (a local reverse proxy) does not count as local.",
  middleware: [requireRole("Admin")] as const,
  responses: {
    200: jsonResponse(
      "Hashes",
      z.object({
        agents: z.array(z.object({
          agent_guid: z.string(),
          hostname: z.string(),
          site_id: z.number().int().nullable(),
          agent_hash: z.string().nullable(),
        })),
        count: z.number().int(),
      }),
    ),
    403: errorResponse("Not Admin, or not from this machine"),
  },
});

/** Registers the device routes. */
export function registerDeviceRoutes(
  http: Router,
  inv: InventoryService,
  audit: Auditor,
  filters: FilterService,
): void {
  http.openapi(list, async (c) => {
    const p = await principalOf(c);
    const q = c.req.valid("query");
    // A saved filter resolves like it does for jobs and watchdogs (its own statement
    // timeout and regex errors), then narrows the page query.
    const guids = q.filter_id === undefined
      ? undefined
      : (await filters.resolveById(q.filter_id, p)).map((d) => d.guid);
    const contains: Partial<Record<DeviceTextField, string>> = {};
    for (const f of Object.keys(DEVICE_TEXT_FIELDS) as DeviceTextField[]) {
      const v = (q as Record<string, unknown>)[f];
      if (typeof v === "string" && v) contains[f] = v;
    }
    const { devices, total } = await inv.queryDevices(p, {
      siteId: q.site_id,
      presence: q.presence,
      containment: q.containment,
      q: q.q || undefined,
      contains,
      guids,
      sort: q.sort,
      order: q.order,
      limit: q.limit,
      offset: q.offset,
    });
    const extra = await inv.extraFields<string>(
      "device",
      devices.map((d) => ({ id: d.guid, site_id: d.site_id })),
      p,
    );
    return c.json(
      { devices: devices.map((d) => ({ ...deviceView(d), ...extra.get(d.guid) })), total },
      200,
    );
  });

  http.openapi(hashList, async (c) => {
    if (!isLoopbackRequest(c)) {
      throw forbidden("loopback_only", "the agent hash list is only served to this machine");
    }
    const agents = (await inv.agentHashes()).map((d) => ({
      agent_guid: d.guid,
      hostname: d.hostname,
      site_id: d.site_id,
      agent_hash: d.agent_hash,
    }));
    return c.json({ agents, count: agents.length }, 200);
  });

  http.openapi(search, async (c) => {
    const p = await principalOf(c);
    const { hostname } = c.req.valid("query");
    const found = await inv.searchDevices(p, hostname);
    return c.json({
      count: found.length,
      devices: found.map((d) => ({
        agent_guid: d.guid,
        agent_id: d.agent_id,
        hostname: d.hostname,
        connection_type: d.connection_type,
        site_id: d.site_id,
        site_name: d.site_name,
        site_description: d.site_description,
      })),
    }, 200);
  });

  http.openapi(byGuid, async (c) => {
    const p = await principalOf(c);
    const d = await inv.visibleDevice(p, c.req.valid("param").guid);
    const extra = (await inv.extraFields<string>("device", [{ id: d.guid, site_id: d.site_id }], p))
      .get(
        d.guid,
      );
    return c.json({ ...deviceView(d), ...extra, details: d.details }, 200);
  });

  http.openapi(byHostname, async (c) => {
    const p = await principalOf(c);
    const d = await inv.visibleDeviceByHostname(p, c.req.valid("param").hostname);
    const extra = (await inv.extraFields<string>("device", [{ id: d.guid, site_id: d.site_id }], p))
      .get(
        d.guid,
      );
    return c.json({ ...deviceView(d), ...extra, details: d.details }, 200);
  });

  http.openapi(describe, async (c) => {
    const p = await principalOf(c);
    const { hostname } = c.req.valid("param");
    const { description } = c.req.valid("json");
    const d = await inv.setDescription(p, hostname, description);
    await audit(c, { action: "device.description", target: `device:${d.guid}` });
    return c.json({ status: "ok" as const, description }, 200);
  });

  for (const action of ["quarantine", "unquarantine", "revoke", "purge"] as const) {
    http.openapi(containment(action), async (c) => {
      const p = await principalOf(c);
      const { guid } = c.req.valid("param");
      try {
        const d = await inv.contain(guid, action, p);
        await audit(c, { action: `device.${action}`, target: `device:${guid.toUpperCase()}` });
        return c.json({
          status: "ok" as const,
          guid: guid.toUpperCase(),
          action,
          token_version: d?.token_version ?? null,
          containment_status: d?.status ?? null,
        }, 200);
      } catch (err) {
        await audit(c, {
          action: `device.${action}`,
          target: `device:${guid.toUpperCase()}`,
          outcome: "failure",
          details: { error: err instanceof Error ? err.message : String(err) },
        });
        throw err;
      }
    });
  }
}

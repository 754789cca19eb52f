/**
 * Staged updates: start a rollout to devices or a site with a maximum number updating
 * at once, follow and cancel it; set a site's or a device's channel (stable, beta,
 * pinned) and whether it updates on its own.
 *
 * @module
 */
import { id, idParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { AgentUpdatesService } from "./service.ts";

const tags = ["agent updates"];
const Rollout = z.record(z.string(), z.unknown()).openapi("AgentRollout");
const Version = z.string().regex(
  /^\d{1,6}\.\d{1,6}\.\d{1,6}(?:-[0-9A-Za-z.-]{1,40})?(?:\+[0-9A-Za-z.-]{1,40})?$/,
);
const Policy = z.object({
  channel: z.enum(["stable", "beta", "pinned", "inherit"]),
  pinned_version: Version.optional(),
  auto_update: z.boolean().optional(),
}).strict();

const create = createRoute({
  method: "post",
  path: "/api/agent-updates/rollouts",
  tags,
  summary: "Update devices (by GUID) or a whole site to a version, at most max_concurrency at once",
  middleware: [requireRole("Admin")] as const,
  request: body(
    z.object({
      device_guids: z.array(z.string().uuid()).max(100_000).optional(),
      site_id: id().optional(),
      version: Version.optional(),
      max_concurrency: z.number().int().min(1).max(10_000).default(10),
    }).strict().refine((b) => b.device_guids?.length || b.site_id !== undefined, {
      message: "name device_guids or site_id",
    }),
  ),
  responses: {
    201: json(Rollout, "Started"),
    400: err("Nothing to update"),
    404: err("No such release, site or device"),
  },
});

const get = createRoute({
  method: "get",
  path: "/api/agent-updates/rollouts/{id}",
  tags,
  summary: "A rollout: version, limit, status and each device's update state",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ id: z.string().uuid() }) },
  responses: { 200: json(Rollout, "Rollout"), 404: err("No such rollout") },
});

const cancel = createRoute({
  method: "post",
  path: "/api/agent-updates/rollouts/{id}/cancel",
  tags,
  summary: "Cancel a rollout: devices not started yet stay on their version",
  middleware: [requireRole("Admin")] as const,
  request: { params: z.object({ id: z.string().uuid() }) },
  responses: { 200: json(Rollout, "Cancelled"), 404: err("No such rollout") },
});

const sitePolicy = createRoute({
  method: "put",
  path: "/api/sites/{id}/agent-update-policy",
  tags,
  summary: "A site's channel (stable, beta, pinned version) and automatic updates",
  middleware: [requireRole("Admin")] as const,
  request: { params: z.object({ id: idParam() }), ...body(Policy) },
  responses: {
    200: json(z.record(z.string(), z.unknown()), "Policy"),
    404: err("No such site or release"),
  },
});

const getSitePolicy = createRoute({
  method: "get",
  path: "/api/sites/{id}/agent-update-policy",
  tags,
  summary: "A site's channel, automatic updates and the version it should run",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ id: idParam() }) },
  responses: { 200: json(z.record(z.string(), z.unknown()), "Policy"), 404: err("No such site") },
});

const devicePolicy = createRoute({
  method: "put",
  path: "/api/devices/{guid}/agent-update-policy",
  tags,
  summary: "A device's own channel, or inherit its site's",
  middleware: [requireRole("Admin")] as const,
  request: { params: z.object({ guid: z.string().uuid() }), ...body(Policy) },
  responses: {
    200: json(z.record(z.string(), z.unknown()), "Policy"),
    404: err("No such device or release"),
  },
});

/** Registers the rollout and policy routes. */
export function registerRolloutRoutes(
  http: Router,
  svc: AgentUpdatesService,
  inventory: InventoryService,
  audit: Auditor,
): void {
  http.openapi(create, async (c) => {
    const p = await principalOf(c);
    const out = await svc.createRollout(p, c.req.valid("json"));
    await audit(c, {
      action: "agent_rollout.create",
      target: `agent_rollout:${out.id}`,
      details: {
        version: out.version,
        devices: out.devices.length,
        max_concurrency: out.max_concurrency,
      },
    });
    return c.json(out, 201);
  });

  http.openapi(get, async (c) => c.json(await svc.rollout(c.req.valid("param").id), 200));

  http.openapi(cancel, async (c) => {
    const { id } = c.req.valid("param");
    const out = await svc.cancelRollout(id);
    await audit(c, { action: "agent_rollout.cancel", target: `agent_rollout:${id}` });
    return c.json(out, 200);
  });

  http.openapi(sitePolicy, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    inventory.assertSiteVisible(p, id, "site");
    if (!(await inventory.site(id, false))) {
      throw (await import("../../core/errors.ts")).notFound(`no site ${id}`);
    }
    const body = c.req.valid("json");
    const out = body.channel === "inherit"
      ? await svc.setPolicy("site", String(id), {
        channel: "stable",
        auto_update: body.auto_update,
      })
      : await svc.setPolicy("site", String(id), body);
    await audit(c, {
      action: "agent_update_policy.site",
      target: `site:${id}`,
      details: { ...body },
    });
    return c.json(out, 200);
  });

  http.openapi(getSitePolicy, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    inventory.assertSiteVisible(p, id, "site");
    return c.json(await svc.sitePolicy(id), 200);
  });

  http.openapi(devicePolicy, async (c) => {
    const p = await principalOf(c);
    const d = await inventory.visibleDevice(p, c.req.valid("param").guid);
    const body = c.req.valid("json");
    const out = await svc.setPolicy("device", d.guid, body);
    await audit(c, {
      action: "agent_update_policy.device",
      target: `device:${d.guid}`,
      details: { ...body },
    });
    return c.json(out, 200);
  });
}

/**
 * `GET /api/devices/{guid}/software`: a device's installed software as its agent last
 * reported it (the normalized list telemetry keeps in `device_software_inventory`), for
 * the console's device page. Site-scoped like every device read.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { principalOf, requireRole } from "../../core/auth.ts";
import { err, json } from "../../core/openapi.ts";
import type { PluginContext } from "../../core/plugin.ts";
import type { InventoryService } from "../inventory/mod.ts";

const Item = z.object({
  name: z.string(),
  version: z.string(),
  source: z.string(),
  captured_at: z.string(),
}).openapi("InstalledSoftware");

/** Registers the route. */
export function registerSoftwareRoutes(ctx: PluginContext, inventory: InventoryService): void {
  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/devices/{guid}/software",
      summary: "A device's installed software (last report), sorted by name",
      middleware: [requireRole("User")] as const,
      request: { params: z.object({ guid: z.uuid() }) },
      responses: {
        200: json(z.object({ software: z.array(Item), count: z.number().int() }), "Software"),
        401: err("Not signed in"),
        404: err("No such device in scope"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const device = await inventory.visibleDevice(p, c.req.valid("param").guid);
      const rows = await ctx.sql<
        { name: string; version: string; source: string; captured_at: Date }[]
      >`
        select name, version, source, captured_at from device_software_inventory
        where device_guid = ${device.guid.toLowerCase()} order by lower(name), version`;
      return c.json({
        software: rows.map((r) => ({ ...r, captured_at: r.captured_at.toISOString() })),
        count: rows.length,
      }, 200);
    },
  );
}

/**
 * Routes: maintenance windows. Reads are site-scoped; writes need Admin (a window
 * holds back jobs and incidents for every operator of its scope).
 *
 * @module
 */
import { bigIdParam, id } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { canSeeSite, type Principal, principalOf, requireRole } from "../../core/auth.ts";
import { badRequest, notFound } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import type { FilterService } from "../inventory/mod.ts";
import { errors, json } from "./openapi.ts";
import { cronOf, cronProblem } from "./schedule.ts";
import type { WindowRow, WindowService } from "./windows.ts";

const Body = z.object({
  name: z.string().trim().min(1).max(200),
  cron: z.string().min(1).max(200),
  timezone: z.string().max(64).default("UTC"),
  duration_minutes: z.number().int().min(1).max(10_080),
  site_id: id().nullable().optional(),
  filter_id: id().nullable().optional(),
  enabled: z.boolean().default(true),
}).openapi("MaintenanceWindowBody");
const Window = z.record(z.string(), z.unknown()).openapi("MaintenanceWindow");
const IdParam = z.object({ id: bigIdParam() });

/** Registers the routes. */
export function registerWindowRoutes(
  ctx: PluginContext,
  d: { windows: WindowService; filters: FilterService },
): void {
  const { sql, clock } = ctx;
  /** When the window opens next (after now), or null when disabled or never again. */
  const nextOpen = (w: WindowRow): string | null => {
    if (!w.enabled) return null;
    try {
      const next = cronOf(w.cron, w.timezone).nextRun(new Date(clock.now()));
      return next ? next.toISOString() : null;
    } catch {
      return null;
    }
  };
  const shape = (w: WindowRow, open?: number) => ({
    id: Number(w.id),
    name: w.name,
    cron: w.cron,
    timezone: w.timezone,
    duration_minutes: w.duration_minutes,
    site_id: w.site_id,
    filter_id: w.filter_id,
    enabled: w.enabled,
    created_by: w.created_by,
    created_at: w.created_at.toISOString(),
    updated_at: w.updated_at.toISOString(),
    open_now: open !== undefined,
    open_until: open !== undefined ? new Date(open).toISOString() : null,
    next_open_at: nextOpen(w),
  });
  const visible = (p: Principal, w: WindowRow) =>
    p.sites === "all" || (w.site_id !== null ? canSeeSite(p, w.site_id) : w.filter_id === null);

  async function check(p: Principal, b: z.infer<typeof Body>) {
    const problem = cronProblem(b.cron, b.timezone);
    if (problem) {
      throw badRequest("invalid_schedule", `cron: ${problem}`, [{
        field: "cron",
        message: problem,
      }]);
    }
    if (b.site_id && b.filter_id) {
      throw badRequest("validation_failed", "a window applies to a site or a filter, not both");
    }
    if (b.filter_id) await d.filters.get(b.filter_id, p);
    if (b.site_id) {
      const [s] = await sql`select 1 from sites where id = ${b.site_id}`;
      if (!s) throw badRequest("site_not_found", `no site ${b.site_id}`);
    }
  }

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/maintenance_windows",
      summary: "Maintenance windows (and whether each is open now)",
      middleware: [requireRole("User")] as const,
      responses: { 200: json(z.object({ windows: z.array(Window) }), "Windows"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const rows = (await d.windows.list()).filter((w) => visible(p, w));
      const open = d.windows.openNow(rows);
      return c.json({ windows: rows.map((w) => shape(w, open.get(String(w.id)))) }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/maintenance_windows",
      summary: "Create a maintenance window",
      middleware: [requireRole("Admin")] as const,
      request: { body: { required: true, content: { "application/json": { schema: Body } } } },
      responses: { 201: json(Window, "Created"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const b = c.req.valid("json");
      await check(p, b);
      const now = new Date(clock.now());
      const [row] = await sql<WindowRow[]>`
        insert into maintenance_windows (name, cron, timezone, duration_minutes, site_id, filter_id,
          enabled, created_by, created_at, updated_at)
        values (${b.name}, ${b.cron}, ${b.timezone}, ${b.duration_minutes}, ${b.site_id ?? null},
          ${b.filter_id ?? null}, ${b.enabled}, ${p.name}, ${now}, ${now}) returning *`;
      await ctx.audit(c, {
        action: "maintenance_windows.create",
        target: String(row!.id),
        details: { name: b.name },
      });
      return c.json(shape(row!, d.windows.openNow([row!]).get(String(row!.id))), 201);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "put",
      path: "/api/maintenance_windows/{id}",
      summary: "Replace a maintenance window",
      middleware: [requireRole("Admin")] as const,
      request: {
        params: IdParam,
        body: { required: true, content: { "application/json": { schema: Body } } },
      },
      responses: { 200: json(Window, "Updated"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      const b = c.req.valid("json");
      await check(p, b);
      const [row] = await sql<WindowRow[]>`
        update maintenance_windows set name = ${b.name}, cron = ${b.cron}, timezone = ${b.timezone},
          duration_minutes = ${b.duration_minutes}, site_id = ${b.site_id ?? null},
          filter_id = ${b.filter_id ?? null}, enabled = ${b.enabled},
          updated_at = ${new Date(clock.now())}
        where id = ${id} returning *`;
      if (!row) throw notFound(`no maintenance window ${id}`);
      await ctx.audit(c, { action: "maintenance_windows.update", target: String(id) });
      return c.json(shape(row, d.windows.openNow([row]).get(String(row.id))), 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "delete",
      path: "/api/maintenance_windows/{id}",
      summary: "Delete a maintenance window",
      middleware: [requireRole("Admin")] as const,
      request: { params: IdParam },
      responses: { 200: json(z.object({ status: z.string() }), "Deleted"), ...errors },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const res = await sql`delete from maintenance_windows where id = ${id}`;
      if (!res.count) throw notFound(`no maintenance window ${id}`);
      await ctx.audit(c, { action: "maintenance_windows.delete", target: String(id) });
      return c.json({ status: "ok" }, 200);
    },
  );
}

/**
 * `/api/alerts/routes` (Admin): which incidents go to which channels — per watchdog, or
 * default routes by severity and site for watchdogs without routes of their own.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import { RouteInput } from "./schemas.ts";
import type { AlertsService } from "./service.ts";
import { RouteView } from "./views.ts";

const Id = z.object({ id: z.uuid() });
const guarded = { 401: err("Not signed in"), 403: err("Admins only") };

/** Installs the routing routes. */
export function installRoutingRoutes(http: Router, svc: AlertsService, audit: Auditor): void {
  const admin = requireRole("Admin");

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/routes",
      summary: "Alert routes, all or one watchdog's (Admin)",
      middleware: [admin] as const,
      request: { query: z.object({ watchdog_id: z.uuid().optional() }) },
      responses: { 200: json(z.object({ items: z.array(RouteView) }), "Routes"), ...guarded },
    }),
    async (c) => c.json({ items: await svc.listRoutes(c.req.valid("query").watchdog_id) }, 200),
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/alerts/routes",
      summary: "Create a route (watchdog_id null: a default route)",
      middleware: [admin] as const,
      request: body(RouteInput),
      responses: {
        201: json(RouteView, "Created"),
        400: err("Invalid route or unknown channel"),
        404: err("No such watchdog or site"),
        ...guarded,
      },
    }),
    async (c) => {
      const r = await svc.saveRoute(await principalOf(c), null, c.req.valid("json"));
      await audit(c, {
        action: "alerts.route.create",
        target: `alert_route:${r.id}`,
        details: { name: r.name, watchdog_id: r.watchdog_id, channel_ids: r.channel_ids },
      });
      return c.json(r, 201);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/routes/{id}",
      summary: "One route (Admin)",
      middleware: [admin] as const,
      request: { params: Id },
      responses: { 200: json(RouteView, "Route"), 404: err("No such route"), ...guarded },
    }),
    async (c) => c.json(await svc.getRoute(c.req.valid("param").id), 200),
  );

  http.openapi(
    createRoute({
      method: "put",
      path: "/api/alerts/routes/{id}",
      summary: "Replace a route",
      middleware: [admin] as const,
      request: { params: Id, ...body(RouteInput) },
      responses: {
        200: json(RouteView, "Replaced"),
        400: err("Invalid route or unknown channel"),
        404: err("No such route, watchdog or site"),
        ...guarded,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const r = await svc.saveRoute(await principalOf(c), id, c.req.valid("json"));
      await audit(c, {
        action: "alerts.route.update",
        target: `alert_route:${id}`,
        details: { name: r.name, enabled: r.enabled, channel_ids: r.channel_ids },
      });
      return c.json(r, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "delete",
      path: "/api/alerts/routes/{id}",
      summary: "Delete a route",
      middleware: [admin] as const,
      request: { params: Id },
      responses: { 204: { description: "Deleted" }, 404: err("No such route"), ...guarded },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await svc.removeRoute(id);
      await audit(c, { action: "alerts.route.delete", target: `alert_route:${id}` });
      return c.body(null, 204);
    },
  );
}

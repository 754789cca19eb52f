/**
 * `/api/alerts/deliveries` (Admin): the delivery log — per channel, status, kind or
 * incident, newest first with a cursor, counts per status — one entry, and putting a
 * dead-lettered message back in the queue.
 *
 * @module
 */
import { intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import { err, json } from "../../core/openapi.ts";
import { DELIVERY_STATUSES } from "./api.ts";
import type { AlertsService } from "./service.ts";
import { DeliveryView } from "./views.ts";

const Id = z.object({ id: z.uuid() });
const guarded = { 401: err("Not signed in"), 403: err("Admins only") };

/** Installs the delivery log routes. */
export function installDeliveryRoutes(http: Router, svc: AlertsService, audit: Auditor): void {
  const admin = requireRole("Admin");

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/deliveries",
      summary: "The delivery log, newest first (Admin)",
      middleware: [admin] as const,
      request: {
        query: z.object({
          channel_id: z.uuid().optional(),
          status: z.enum(DELIVERY_STATUSES).optional(),
          kind: z.enum(["opened", "escalated", "acknowledged", "resolved", "digest", "test"])
            .optional(),
          incident_id: z.uuid().optional(),
          /** `next_before` of the previous page. */
          before: z.string().max(100).optional(),
          limit: intParam({ min: 1, max: 500 }).default(100),
        }),
      },
      responses: {
        200: json(
          z.object({
            items: z.array(DeliveryView),
            counts: z.record(z.string(), z.number()),
            next_before: z.string().nullable(),
          }),
          "Deliveries",
        ),
        400: err("Bad query"),
        ...guarded,
      },
    }),
    async (c) => c.json(await svc.deliveries(c.req.valid("query")), 200),
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/deliveries/{id}",
      summary: "One delivery (Admin)",
      middleware: [admin] as const,
      request: { params: Id },
      responses: { 200: json(DeliveryView, "Delivery"), 404: err("No such delivery"), ...guarded },
    }),
    async (c) => c.json(await svc.delivery(c.req.valid("param").id), 200),
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/alerts/deliveries/{id}/retry",
      summary: "Queue a dead-lettered message again with a fresh set of attempts (Admin)",
      middleware: [admin] as const,
      request: { params: Id },
      responses: {
        200: json(DeliveryView, "Queued"),
        404: err("No such delivery"),
        409: err("Not dead-lettered"),
        ...guarded,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const d = await svc.retry(id);
      await audit(c, { action: "alerts.delivery.retry", target: `alert_delivery:${id}` });
      return c.json(d, 200);
    },
  );
}

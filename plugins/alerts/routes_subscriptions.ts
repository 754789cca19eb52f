/**
 * Operators' own alert mail: `GET/PUT /api/alerts/subscription` (any operator, for
 * themselves; the address is set with `PUT /api/auth/email`) and
 * `GET /api/alerts/subscriptions` (Admin: who gets what).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requirePrincipal, requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import { SubscriptionInput } from "./schemas.ts";
import type { AlertsService } from "./service.ts";
import { SubscriptionView } from "./views.ts";

const guarded = { 401: err("Not signed in"), 403: err("Not allowed") };

/** Installs the subscription routes. */
export function installSubscriptionRoutes(
  http: Router,
  svc: AlertsService,
  audit: Auditor,
): void {
  const operator = requirePrincipal("operator");

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/subscription",
      summary: "Your own alert mail settings",
      middleware: [operator] as const,
      responses: { 200: json(SubscriptionView, "Subscription"), ...guarded },
    }),
    async (c) => c.json(await svc.subscription(await principalOf(c)), 200),
  );

  http.openapi(
    createRoute({
      method: "put",
      path: "/api/alerts/subscription",
      summary: "Opt in to (or out of) alert mail at your own address",
      middleware: [requireRole("User")] as const,
      request: body(SubscriptionInput),
      responses: {
        200: json(SubscriptionView, "Saved"),
        400: err("Invalid body, or no email address set"),
        ...guarded,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const input = c.req.valid("json");
      const s = await svc.setSubscription(p, input);
      await audit(c, {
        action: "alerts.subscription",
        target: `user:${p.name}`,
        details: { enabled: input.enabled, min_severity: input.min_severity, events: input.events },
      });
      return c.json(s, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/subscriptions",
      summary: "Every operator's alert mail settings (Admin)",
      middleware: [requireRole("Admin")] as const,
      responses: {
        200: json(
          z.object({ items: z.array(z.record(z.string(), z.unknown())) }),
          "Subscriptions",
        ),
        ...guarded,
      },
    }),
    async (c) => c.json({ items: await svc.listSubscriptions() }, 200),
  );
}

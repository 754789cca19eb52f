/**
 * `/api/terminal/site-policies/{site_id}`: a site's terminal policy — terminals on or
 * off, a reason required to open one, transcripts recorded, file transfer on or off.
 * Operators of the site read it (the console shows it before opening a terminal);
 * Admins change it (audited).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { idParam } from "../../core/fields.ts";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import type { InventoryService } from "../inventory/mod.ts";
import { PolicyInput } from "./schemas.ts";
import type { TerminalStore } from "./store.ts";
import { notFound } from "../../core/errors.ts";

const Policy = z.object({
  site_id: z.number(),
  terminal_enabled: z.boolean(),
  require_reason: z.boolean(),
  record_transcripts: z.boolean(),
  files_enabled: z.boolean(),
  updated_by: z.string().nullable(),
  updated_at: z.string().nullable(),
}).openapi("TerminalSitePolicy");

const SiteId = z.object({ site_id: idParam() });

/** Installs the policy routes. */
export function installPolicyRoutes(
  http: Router,
  o: { store: TerminalStore; inventory: InventoryService; audit: Auditor },
): void {
  const { store, inventory, audit } = o;

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/site-policies/{site_id}",
      summary: "A site's terminal policy (defaults until an Admin sets one)",
      middleware: [requireRole("User")] as const,
      request: { params: SiteId },
      responses: {
        200: json(Policy, "Policy"),
        401: err("Not signed in"),
        404: err("No such site"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const id = c.req.valid("param").site_id;
      inventory.assertSiteVisible(p, id, "site");
      if (!await inventory.site(id, false)) throw notFound("no such site");
      return c.json(await store.policy(id), 200);
    },
  );

  http.openapi(
    createRoute({
      method: "put",
      path: "/api/terminal/site-policies/{site_id}",
      summary: "Set a site's terminal policy (Admin)",
      middleware: [requireRole("Admin")] as const,
      request: { params: SiteId, ...body(PolicyInput) },
      responses: {
        200: json(Policy, "Saved"),
        400: err("Bad body"),
        401: err("Not signed in"),
        403: err("Admins only"),
        404: err("No such site"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const id = c.req.valid("param").site_id;
      if (!await inventory.site(id, false)) throw notFound("no such site");
      const saved = await store.setPolicy(id, c.req.valid("json"), p.name);
      await audit(c, {
        action: "terminal.site_policy.set",
        target: `site:${id}`,
        details: {
          terminal_enabled: saved.terminal_enabled,
          require_reason: saved.require_reason,
          record_transcripts: saved.record_transcripts,
          files_enabled: saved.files_enabled,
        },
      });
      return c.json(saved, 200);
    },
  );
}

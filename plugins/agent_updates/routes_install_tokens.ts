/**
 * Install tokens per site: create (the clear token and the install commands are shown
 * once), list, revoke, and the site's current install commands.
 *
 * @module
 */
import { idParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import { notFound } from "../../core/errors.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { AgentUpdatesService } from "./service.ts";

const tags = ["agent updates"];
const SiteParam = z.object({ id: idParam() });
const Commands = z.object({
  linux: z.string(),
  macos: z.string(),
  windows: z.string(),
  token_id: z.string(),
  expires_at: z.string(),
  version: z.string(),
}).openapi("InstallCommands");
const Token = z.record(z.string(), z.unknown()).openapi("InstallToken");

const create = createRoute({
  method: "post",
  path: "/api/sites/{id}/install-tokens",
  tags,
  summary: "Create an install token for a site; answers the token and install commands once",
  middleware: [requireRole("Admin")] as const,
  request: {
    params: SiteParam,
    ...body(
      z.object({
        expires_in_hours: z.number().int().min(1).max(720).optional(),
        max_uses: z.number().int().min(1).max(100_000).optional(),
        auto_approve: z.boolean().default(true),
        note: z.string().max(500).default(""),
      }).strict(),
    ),
  },
  responses: {
    201: json(Token, "Created (token and install_commands shown only now)"),
    404: err("No such site"),
    423: err("Vault locked"),
  },
});

const list = createRoute({
  method: "get",
  path: "/api/sites/{id}/install-tokens",
  tags,
  summary: "Install tokens of a site (state, uses, refusals; never the token itself)",
  middleware: [requireRole("User")] as const,
  request: { params: SiteParam },
  responses: {
    200: json(z.object({ tokens: z.array(Token) }), "Tokens"),
    404: err("No such site"),
  },
});

const revoke = createRoute({
  method: "post",
  path: "/api/sites/{id}/install-tokens/{token_id}/revoke",
  tags,
  summary: "Revoke an install token: enrollment refuses it from now on",
  middleware: [requireRole("Admin")] as const,
  request: { params: SiteParam.extend({ token_id: z.string().uuid() }) },
  responses: { 200: json(Token, "Revoked"), 404: err("No such token") },
});

const commands = createRoute({
  method: "get",
  path: "/api/sites/{id}/install-commands",
  tags,
  summary: "The site's install commands (newest active install token; Admin)",
  middleware: [requireRole("Admin")] as const,
  request: { params: SiteParam },
  responses: {
    200: json(Commands, "Install commands"),
    404: err("No such site, no active install token, or no agent release"),
  },
});

/** Registers the install-token routes. */
export function registerInstallTokenRoutes(
  http: Router,
  svc: AgentUpdatesService,
  inventory: InventoryService,
  audit: Auditor,
): void {
  const visibleSite = async (c: Parameters<typeof principalOf>[0], id: number) => {
    const p = await principalOf(c);
    inventory.assertSiteVisible(p, id, "site");
    if (!(await inventory.site(id, false))) throw notFound(`no site ${id}`);
    return p;
  };

  http.openapi(create, async (c) => {
    const { id } = c.req.valid("param");
    const p = await visibleSite(c, id);
    const out = await svc.createInstallToken(p, id, c.req.valid("json"));
    await audit(c, {
      action: "install_token.create",
      target: `install_token:${out.id}`,
      details: {
        site_id: id,
        expires_at: out.expires_at,
        max_uses: out.max_uses,
        auto_approve: out.auto_approve,
      },
    });
    return c.json(out, 201);
  });

  http.openapi(list, async (c) => {
    const { id } = c.req.valid("param");
    await visibleSite(c, id);
    return c.json({ tokens: await svc.listInstallTokens(id) }, 200);
  });

  http.openapi(revoke, async (c) => {
    const { id, token_id } = c.req.valid("param");
    const p = await visibleSite(c, id);
    const out = await svc.revokeInstallToken(p, id, token_id);
    await audit(c, {
      action: "install_token.revoke",
      target: `install_token:${token_id}`,
      details: { site_id: id },
    });
    return c.json(out, 200);
  });

  http.openapi(commands, async (c) => {
    const { id } = c.req.valid("param");
    await visibleSite(c, id);
    const out = await svc.installCommands(id);
    if (!out) {
      throw notFound("no active install token (create one) or no agent release to install");
    }
    return c.json(out, 200);
  });
}

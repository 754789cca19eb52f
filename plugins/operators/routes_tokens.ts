/**
 * API tokens for automation: named, expiring, optionally read-only; the value is shown
 * once and stored hashed; listed and revoked by their owner or an admin. Only a signed-in
 * session may issue tokens (a token cannot mint more tokens).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { principalOf } from "../../core/auth.ts";
import { requireRole } from "../../core/auth.ts";
import { forbidden, notFound } from "../../core/errors.ts";
import type { Deps } from "./deps.ts";
import { body, err, guarded, json, plainText } from "./http_util.ts";

const Token = z.object({
  id: z.string(),
  username: z.string(),
  name: z.string(),
  read_only: z.boolean(),
  created_at: z.string(),
  expires_at: z.string(),
  last_used_at: z.string().nullable(),
}).openapi("ApiToken");

const createTokenRoute = createRoute({
  method: "post",
  path: "/api/auth/tokens",
  summary: "Issue an API token for yourself; the value is shown only in this reply",
  middleware: [requireRole("User")] as const,
  request: body(
    z.object({
      name: plainText(100).trim().min(1),
      expires_in_days: z.number().int().min(1).max(365).default(90),
      read_only: z.boolean().default(false),
    }).strict(),
  ),
  responses: {
    201: json(Token.extend({ token: z.string() }), "Issued"),
    400: err("Bad body"),
    ...guarded,
  },
});

const listTokensRoute = createRoute({
  method: "get",
  path: "/api/auth/tokens",
  summary: "Your live API tokens (Admin: all=true for everyone's)",
  middleware: [requireRole("User")] as const,
  request: { query: z.object({ all: z.enum(["true", "false"]).optional() }) },
  responses: { 200: json(z.object({ tokens: z.array(Token) }), "Tokens"), ...guarded },
});

const revokeTokenRoute = createRoute({
  method: "delete",
  path: "/api/auth/tokens/{id}",
  summary: "Revoke an API token (owner or Admin)",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ id: z.uuid() }) },
  responses: { 204: { description: "Revoked" }, 404: err("No such live token"), ...guarded },
});

/** Registers the API token routes. */
export function registerTokenRoutes(deps: Deps): void {
  const { ctx, sessions } = deps;

  ctx.http.openapi(createTokenRoute, async (c) => {
    const p = await principalOf(c);
    if (p.method !== "session") {
      throw forbidden("session_required", "API tokens are issued from a signed-in session");
    }
    const b = c.req.valid("json");
    const { token, view } = await sessions.createToken(p.id, {
      name: b.name,
      ttlMs: b.expires_in_days * 86_400_000,
      readOnly: b.read_only,
    });
    await ctx.audit(c, {
      action: "api_token.create",
      target: `api_token:${view.id}`,
      details: { name: b.name, read_only: b.read_only, expires_at: view.expires_at },
    });
    c.header("Cache-Control", "no-store");
    return c.json({ ...view, token }, 201);
  });

  ctx.http.openapi(listTokensRoute, async (c) => {
    const p = await principalOf(c);
    const all = c.req.valid("query").all === "true";
    if (all && p.role !== "Admin") throw forbidden("admin_required", "only admins list all tokens");
    return c.json({ tokens: await sessions.listTokens(all ? null : p.id) }, 200);
  });

  ctx.http.openapi(revokeTokenRoute, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    const name = await sessions.revokeToken(id, p.role === "Admin" ? null : p.id);
    if (name === null) throw notFound("no such live token");
    await ctx.audit(c, {
      action: "api_token.revoke",
      target: `api_token:${id}`,
      details: { name },
    });
    return c.body(null, 204);
  });
}

/**
 * Dev Mode: an Admin grants it to the current session for a while (default 900 s,
 * at least 60 s). The grant lives in the session row, so it survives a restart and
 * holds on every engine instance; `requireDevMode()` (core/auth.ts) checks it.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { principalOf } from "../../core/auth.ts";
import { requireRole } from "../../core/auth.ts";
import { forbidden } from "../../core/errors.ts";
import type { Deps } from "./deps.ts";
import { body, err, guarded, json } from "./http_util.ts";

const DevMode = z.object({
  enabled: z.boolean(),
  expires_at: z.string().nullable(),
  ttl_remaining: z.number(),
}).openapi("DevMode");

const setRoute = createRoute({
  method: "post",
  path: "/api/dev-mode",
  summary:
    "Turn Dev Mode on (for ttl_seconds, default 900, min 60) or off for this session (Admin)",
  middleware: [requireRole("Admin")] as const,
  request: body(
    z.object({
      enabled: z.boolean(),
      ttl_seconds: z.number().int().min(60).max(86_400).optional(),
    }).strict(),
  ),
  responses: { 200: json(DevMode, "State"), 400: err("Bad body"), ...guarded },
});

const getRoute = createRoute({
  method: "get",
  path: "/api/dev-mode",
  summary: "Dev Mode state of this session",
  middleware: [requireRole("User")] as const,
  responses: { 200: json(DevMode, "State"), ...guarded },
});

/** Registers the Dev Mode routes. */
export function registerDevModeRoutes(deps: Deps): void {
  const { ctx, sessions } = deps;
  const view = (until: Date | null) => ({
    enabled: until !== null,
    expires_at: until?.toISOString() ?? null,
    ttl_remaining: until ? Math.max(0, Math.round((until.getTime() - ctx.clock.now()) / 1000)) : 0,
  });

  ctx.http.openapi(setRoute, async (c) => {
    const p = await principalOf(c);
    if (p.method !== "session" || !p.credentialId) {
      throw forbidden(
        "session_required",
        "Dev Mode is granted to signed-in sessions, not API tokens",
      );
    }
    const b = c.req.valid("json");
    const ttl = b.enabled ? (b.ttl_seconds ?? 900) : 0;
    const until = await sessions.setDevMode(p.credentialId, ttl * 1000);
    await ctx.audit(c, {
      action: b.enabled ? "dev_mode.enable" : "dev_mode.disable",
      target: `session:${p.credentialId}`,
      details: b.enabled ? { ttl_seconds: ttl } : {},
    });
    return c.json(view(until), 200);
  });

  ctx.http.openapi(getRoute, async (c) => {
    const p = await principalOf(c);
    const until = p.method === "session" && p.credentialId
      ? await sessions.devModeUntil(p.credentialId)
      : null;
    return c.json(view(until), 200);
  });
}

/**
 * The signed-in operator's own email address: read it, or set or clear it after
 * re-entering the password (ASVS 7.5.1 — mail meant for this person must not be
 * redirected by whoever holds a stolen session). Other plugins read addresses through
 * the operators service (`contacts`).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { principalOf, requireRole } from "../../core/auth.ts";
import { HttpError, notFound } from "../../core/errors.ts";
import type { Deps } from "./deps.ts";
import { body, err, guarded, json } from "./http_util.ts";
import { reauthenticate } from "./routes_auth.ts";

const Email = z.object({ email: z.string().nullable() }).openapi("OwnEmail");

const getRoute = createRoute({
  method: "get",
  path: "/api/auth/email",
  summary: "Your own email address (null when none is set)",
  middleware: [requireRole("User")] as const,
  responses: { 200: json(Email, "Email"), ...guarded },
});

const setRoute = createRoute({
  method: "put",
  path: "/api/auth/email",
  summary: "Set or clear your own email address (re-enter your password)",
  middleware: [requireRole("User")] as const,
  request: body(
    z.object({
      email: z.email().max(254).nullable(),
      current_password: z.string().min(1).max(1024),
    }).strict(),
  ),
  responses: {
    200: json(Email, "Changed (403 invalid_password: wrong current password)"),
    400: err("Bad body"),
    429: err("Too many wrong passwords"),
    ...guarded,
  },
});

/** Installs the own-email routes. */
export function installEmailRoutes(deps: Deps): void {
  const { ctx, users } = deps;

  ctx.http.openapi(getRoute, async (c) => {
    const p = await principalOf(c);
    const [row] = await ctx.sql<{ email: string | null }[]>`
      select email from users where id = ${p.id}`;
    if (!row) throw notFound("the account no longer exists");
    return c.json({ email: row.email }, 200);
  });

  ctx.http.openapi(setRoute, async (c) => {
    const p = await principalOf(c);
    const { email, current_password } = c.req.valid("json");
    const user = await users.byId(p.id);
    if (!user || !(await reauthenticate(deps, c, user, current_password))) {
      await ctx.audit(c, {
        action: "auth.email_change",
        target: `user:${p.name}`,
        outcome: "failure",
      });
      throw new HttpError(403, "invalid_password", "the current password is not correct");
    }
    await ctx.sql`update users set email = ${email}, updated_at = ${new Date(ctx.clock.now())}
                  where id = ${user.id}`;
    // The address itself stays out of the audit trail: whether one is set is enough.
    await ctx.audit(c, {
      action: "auth.email_change",
      target: `user:${p.name}`,
      details: { email_set: email !== null },
    });
    return c.json({ email }, 200);
  });
}

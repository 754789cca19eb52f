/**
 * User administration (Admin): create, list, delete, reset password, change role,
 * reset or exempt MFA, disable; and the site assignments of Users (upstream
 * `/api/user_site_assignments/selection|assign`). The last enabled admin cannot be
 * removed, demoted or disabled.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../core/auth.ts";
import { badRequest } from "../../core/errors.ts";
import type { Deps } from "./deps.ts";
import { assignSites, requireKnownSites } from "./sites.ts";
import { body, err, guarded, json, plainText } from "./http_util.ts";
import { MAX_PASSWORD_LENGTH } from "./passwords.ts";
import type { UserRow } from "./users.ts";

const User = z.object({
  id: z.string(),
  username: z.string(),
  display_name: z.string(),
  role: z.enum(["Admin", "User"]),
  mfa_enabled: z.boolean(),
  mfa_exempt: z.boolean(),
  auth_source: z.string(),
  disabled: z.boolean(),
  last_login: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  site_ids: z.array(z.number()),
}).openapi("User");

const Role = z.enum(["Admin", "User"]);
const SiteIds = z.array(z.number().int().positive().max(2_147_483_647)).max(10_000);
const Username = z.object({ username: plainText(64).min(1) });
const admin = requireRole("Admin");
const Ok = z.object({ status: z.literal("ok") });

const listRoute = createRoute({
  method: "get",
  path: "/api/users",
  summary: "All operator accounts (Admin)",
  middleware: admin,
  responses: { 200: json(z.object({ users: z.array(User) }), "Users"), ...guarded },
});
const createUserRoute = createRoute({
  method: "post",
  path: "/api/users",
  summary: "Create an operator account (Admin)",
  middleware: admin,
  request: body(
    z.object({
      username: plainText(64).trim().min(1),
      password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 4),
      role: Role.default("User"),
      display_name: z.string().max(200).optional(),
      mfa_exempt: z.boolean().optional(),
      site_ids: SiteIds.optional(),
    }).strict(),
  ),
  responses: {
    201: json(User, "Created"),
    400: err("Bad body or weak password"),
    409: err("Username taken"),
    ...guarded,
  },
});
const deleteRoute = createRoute({
  method: "delete",
  path: "/api/users/{username}",
  summary: "Delete an account and its sessions (Admin)",
  middleware: admin,
  request: { params: Username },
  responses: {
    204: { description: "Deleted" },
    404: err("No such user"),
    409: err("Last admin"),
    ...guarded,
  },
});
const resetPasswordRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/reset_password",
  summary: "Set a user's password; ends all their sessions (Admin)",
  middleware: admin,
  request: {
    params: Username,
    ...body(z.object({ password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 4) }).strict()),
  },
  responses: { 200: json(Ok, "Reset"), 400: err("Weak"), 404: err("No such user"), ...guarded },
});
const roleRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/role",
  summary: "Change a user's role (Admin)",
  middleware: admin,
  request: { params: Username, ...body(z.object({ role: Role }).strict()) },
  responses: {
    200: json(User, "Changed"),
    404: err("No such user"),
    409: err("Last admin"),
    ...guarded,
  },
});
const mfaRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/mfa",
  summary: "Reset a user's TOTP and/or exempt them from MFA (Admin)",
  middleware: admin,
  request: {
    params: Username,
    ...body(
      z.object({ reset: z.boolean().optional(), exempt: z.boolean().optional() }).strict()
        .refine((b) => b.reset !== undefined || b.exempt !== undefined, "reset or exempt"),
    ),
  },
  responses: { 200: json(User, "Changed"), 404: err("No such user"), ...guarded },
});
const disableRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/disable",
  summary: "Disable (ending sessions and API tokens) or re-enable an account (Admin)",
  middleware: admin,
  request: { params: Username, ...body(z.object({ disabled: z.boolean() }).strict()) },
  responses: {
    200: json(User, "Changed"),
    404: err("No such user"),
    409: err("Last admin"),
    ...guarded,
  },
});
const selectionRoute = createRoute({
  method: "post",
  path: "/api/user_site_assignments/selection",
  summary: "The sites a selection of Users shares (Admin)",
  middleware: admin,
  request: body(z.object({ usernames: z.array(plainText(64).min(1)).min(1).max(1000) }).strict()),
  responses: {
    200: json(
      z.object({
        selected_site_ids: z.array(z.number()),
        has_mixed_assignments: z.boolean(),
        warning: z.string().nullable(),
      }),
      "Selection",
    ),
    400: err("admin_selected or unknown users"),
    ...guarded,
  },
});
const assignRoute = createRoute({
  method: "post",
  path: "/api/user_site_assignments/assign",
  summary: "Replace the site assignments of the selected Users (Admin)",
  middleware: admin,
  request: body(
    z.object({
      usernames: z.array(plainText(64).min(1)).min(1).max(1000),
      site_ids: SiteIds,
    }).strict(),
  ),
  responses: {
    200: json(
      z.object({
        status: z.literal("ok"),
        usernames: z.array(z.string()),
        site_ids: z.array(z.number()),
      }),
      "Assigned",
    ),
    400: err("admin_selected, unknown users or unknown sites"),
    ...guarded,
  },
});

/** Registers the user administration routes. */
export function registerUserRoutes(deps: Deps): void {
  const { ctx, users, sessions, sites } = deps;
  const { sql, clock } = ctx;
  const now = () => new Date(clock.now());
  const target = (u: UserRow) => `user:${u.username}`;

  ctx.http.openapi(listRoute, async (c) => c.json({ users: await users.list() }, 200));

  ctx.http.openapi(createUserRoute, async (c) => {
    const b = c.req.valid("json");
    try {
      if (b.role === "User") await requireKnownSites(sites, b.site_ids ?? []);
      const u = await users.create({
        username: b.username,
        password: b.password,
        role: b.role,
        displayName: b.display_name,
        mfaExempt: b.mfa_exempt,
        sites: b.role === "User" ? b.site_ids : [],
      });
      await ctx.audit(c, {
        action: "user.create",
        target: target(u),
        details: { role: u.role, mfa_exempt: u.mfa_exempt, site_ids: b.site_ids ?? [] },
      });
      return c.json(await users.view(u), 201);
    } catch (e) {
      await ctx.audit(c, {
        action: "user.create",
        target: `user:${b.username}`,
        outcome: "failure",
        details: { reason: (e as { code?: string }).code },
      });
      throw e;
    }
  });

  ctx.http.openapi(deleteRoute, async (c) => {
    const u = await users.require(c.req.valid("param").username);
    await users.guardLastAdmin(u);
    await sql`delete from users where id = ${u.id}`;
    sessions.invalidate();
    await ctx.audit(c, { action: "user.delete", target: target(u) });
    return c.body(null, 204);
  });

  ctx.http.openapi(resetPasswordRoute, async (c) => {
    const u = await users.require(c.req.valid("param").username);
    if (u.auth_source !== "local") {
      throw badRequest("not_local_account", "directory accounts have no local password");
    }
    await users.setPassword(u, c.req.valid("json").password);
    const revoked = await sessions.revokeAll(u.id);
    await ctx.audit(c, {
      action: "user.reset_password",
      target: target(u),
      details: { revoked_sessions: revoked },
    });
    return c.json({ status: "ok" as const }, 200);
  });

  ctx.http.openapi(roleRoute, async (c) => {
    const u = await users.require(c.req.valid("param").username);
    const { role } = c.req.valid("json");
    if (u.role === "Admin" && role !== "Admin") await users.guardLastAdmin(u);
    await sql`update users set role = ${role}, updated_at = ${now()} where id = ${u.id}`;
    sessions.invalidate();
    await ctx.audit(c, {
      action: "user.role",
      target: target(u),
      details: { from: u.role, to: role },
    });
    return c.json(await users.view((await users.byId(u.id))!), 200);
  });

  ctx.http.openapi(mfaRoute, async (c) => {
    const u = await users.require(c.req.valid("param").username);
    const b = c.req.valid("json");
    if (b.reset) {
      await sql`update users set mfa_secret = null, mfa_enabled = false, updated_at = ${now()}
                where id = ${u.id}`;
      await sessions.revokeAll(u.id);
    }
    if (b.exempt !== undefined) {
      await sql`update users set mfa_exempt = ${b.exempt}, updated_at = ${now()} where id = ${u.id}`;
    }
    sessions.invalidate();
    await ctx.audit(c, { action: "user.mfa", target: target(u), details: { ...b } });
    return c.json(await users.view((await users.byId(u.id))!), 200);
  });

  ctx.http.openapi(disableRoute, async (c) => {
    const u = await users.require(c.req.valid("param").username);
    const { disabled } = c.req.valid("json");
    if (disabled) await users.guardLastAdmin(u);
    await sql`update users set disabled = ${disabled}, updated_at = ${now()} where id = ${u.id}`;
    sessions.invalidate();
    if (disabled) {
      await sessions.revokeAll(u.id);
      await sessions.revokeAllTokens(u.id);
    }
    await ctx.audit(c, { action: disabled ? "user.disable" : "user.enable", target: target(u) });
    return c.json(await users.view((await users.byId(u.id))!), 200);
  });

  const selected = async (usernames: string[]) => {
    const rows = await sql<UserRow[]>`
      select * from users where lower(username) in ${sql(usernames.map((u) => u.toLowerCase()))}`;
    const found = new Set(rows.map((r) => r.username.toLowerCase()));
    const missing = usernames.filter((u) => !found.has(u.toLowerCase()));
    if (missing.length) {
      throw badRequest("unknown_users", "some users do not exist", { usernames: missing });
    }
    if (rows.some((r) => r.role === "Admin")) {
      throw badRequest("admin_selected", "admins see every site; deselect them", {
        usernames: rows.filter((r) => r.role === "Admin").map((r) => r.username),
      });
    }
    return rows;
  };

  ctx.http.openapi(selectionRoute, async (c) => {
    const rows = await selected(c.req.valid("json").usernames);
    const sets = await Promise.all(rows.map((r) => users.siteIds(r.id)));
    const key = (s: number[]) => s.join(",");
    const mixed = new Set(sets.map(key)).size > 1;
    const common = sets.reduce((acc, s) => acc.filter((x) => s.includes(x)), sets[0] ?? []);
    return c.json({
      selected_site_ids: mixed ? common : (sets[0] ?? []),
      has_mixed_assignments: mixed,
      warning: mixed
        ? "the selected users have different site assignments; saving replaces them all"
        : null,
    }, 200);
  });

  ctx.http.openapi(assignRoute, async (c) => {
    const b = c.req.valid("json");
    const rows = await selected(b.usernames);
    await requireKnownSites(sites, b.site_ids);
    for (const r of rows) await assignSites(sql, r.id, b.site_ids, now());
    sessions.invalidate();
    const siteIds = [...new Set(b.site_ids)].sort((x, y) => x - y);
    await ctx.audit(c, {
      action: "user.assign_sites",
      target: rows.map(target).join(",").slice(0, 500),
      details: { site_ids: siteIds },
    });
    return c.json({
      status: "ok" as const,
      usernames: rows.map((r) => r.username),
      site_ids: siteIds,
    }, 200);
  });
}

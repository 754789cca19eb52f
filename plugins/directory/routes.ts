/**
 * Admin routes under `/api/directory/providers`: CRUD, the pinned CA certificate, the
 * provider test (required before enable), lookup-user, sync, and converting an account
 * to a local one; plus upstream's `POST /api/users/<u>/directory-cache` (refresh one
 * account). Responses never carry the bind password, sealed or not.
 *
 * @module
 */
import { body, err, json } from "../../core/openapi.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../core/auth.ts";
import { badRequest, HttpError, notFound } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import type { OperatorsService } from "../operators/mod.ts";
import type { DirectoryAccounts } from "./accounts.ts";
import { acceptableUsername, directoryHttpError, type DirectoryReader } from "./directory.ts";
import { mapGroups } from "./mapping.ts";
import {
  type CreateInput,
  CreateProvider,
  type PatchInput,
  PatchProvider,
  Pem,
  type ProviderStore,
  ProviderView,
  toView,
} from "./providers.ts";

const guarded = { 401: err("Not signed in"), 403: err("Not an admin") };
const admin = requireRole("Admin");
const IdParam = z.object({ id: z.uuid() });
// deno-lint-ignore no-control-regex -- control characters are refused on purpose
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const Username = z.string().min(1).max(256).regex(NO_CONTROL, "no control characters");

const Step = z.object({
  step: z.string(),
  ok: z.boolean(),
  message: z.string(),
  url: z.string().optional(),
  via: z.string().optional(),
  ms: z.number(),
});
const Lookup = z.object({
  found: z.boolean(),
  dn: z.string().nullable(),
  username: z.string().nullable(),
  display_name: z.string().nullable(),
  mail: z.string().nullable(),
  groups: z.array(z.string()),
  disabled: z.boolean(),
  role: z.enum(["Admin", "User"]).nullable(),
  site_ids: z.array(z.number()),
  matched_groups: z.array(z.string()),
  would_sign_in: z.boolean(),
  reason: z.string(),
}).openapi("DirectoryLookup");
const SyncReply = z.object({
  status: z.literal("ok"),
  checked: z.number(),
  updated: z.number(),
  disabled: z.number(),
  enabled: z.number(),
  unchanged: z.number(),
}).openapi("DirectorySyncResult");

const base = "/api/directory/providers";
const routes = {
  list: createRoute({
    method: "get",
    path: base,
    summary: "Directory providers (Admin)",
    middleware: admin,
    responses: {
      200: json(z.object({ providers: z.array(ProviderView) }), "Providers"),
      ...guarded,
    },
  }),
  create: createRoute({
    method: "post",
    path: base,
    summary: "Add an LDAP or Active Directory provider, disabled until tested (Admin)",
    middleware: admin,
    request: body(CreateProvider),
    responses: {
      201: json(ProviderView, "Created"),
      400: err("Bad body"),
      409: err("Name taken, or enabled before a test passed"),
      ...guarded,
    },
  }),
  patch: createRoute({
    method: "patch",
    path: `${base}/{id}`,
    summary: "Change a provider; connection changes disable it until tested again (Admin)",
    middleware: admin,
    request: { params: IdParam, ...body(PatchProvider) },
    responses: {
      200: json(ProviderView.extend({ needs_test: z.boolean() }), "Changed"),
      400: err("Bad body"),
      404: err("No such provider"),
      409: err("provider_not_tested or name taken"),
      ...guarded,
    },
  }),
  remove: createRoute({
    method: "delete",
    path: `${base}/{id}`,
    summary: "Delete a provider no account comes from any more (Admin)",
    middleware: admin,
    request: { params: IdParam },
    responses: {
      204: { description: "Deleted" },
      404: err("No such provider"),
      409: err("provider_in_use: convert or delete its accounts first"),
      ...guarded,
    },
  }),
  certificate: createRoute({
    method: "post",
    path: `${base}/{id}/certificate`,
    summary: "Pin (or clear with null) the CA certificate for LDAPS / StartTLS (Admin)",
    middleware: admin,
    request: {
      params: IdParam,
      ...body(z.object({ pem: z.string().max(65_536).nullable() }).strict()),
    },
    responses: {
      200: json(ProviderView.extend({ needs_test: z.boolean() }), "Pinned"),
      ...guarded,
    },
  }),
  test: createRoute({
    method: "post",
    path: `${base}/{id}/test`,
    summary: "Connect, bind, find the base DN and (optionally) a user; records the outcome (Admin)",
    middleware: admin,
    request: {
      params: IdParam,
      body: {
        required: false,
        content: {
          "application/json": { schema: z.object({ username: Username.optional() }).strict() },
        },
      },
    },
    responses: {
      200: json(
        z.object({ ok: z.boolean(), steps: z.array(Step) }).openapi("DirectoryTest"),
        "Ran",
      ),
      404: err("No such provider"),
      ...guarded,
    },
  }),
  lookup: createRoute({
    method: "post",
    path: `${base}/{id}/lookup-user`,
    summary: "What a sign-in by this user would map to (Admin)",
    middleware: admin,
    request: { params: IdParam, ...body(z.object({ username: Username }).strict()) },
    responses: {
      200: json(Lookup, "Lookup"),
      404: err("No such provider"),
      503: err("No directory server answered"),
      ...guarded,
    },
  }),
  sync: createRoute({
    method: "post",
    path: `${base}/{id}/sync`,
    summary: "Refresh every account from this provider; disables and revokes as needed (Admin)",
    middleware: admin,
    request: { params: IdParam },
    responses: {
      200: json(SyncReply, "Synced"),
      404: err("No such provider"),
      409: err("Provider misconfigured"),
      503: err("No directory server answered"),
      ...guarded,
    },
  }),
  convert: createRoute({
    method: "post",
    path: `${base}/{id}/users/{username}/convert`,
    summary: "Turn a directory account into a local one without a password (Admin)",
    middleware: admin,
    request: { params: z.object({ id: z.uuid(), username: Username }) },
    responses: {
      200: json(z.object({ status: z.literal("ok"), username: z.string() }), "Converted"),
      404: err("No such account from this provider"),
      ...guarded,
    },
  }),
  userCache: createRoute({
    method: "post",
    path: "/api/users/{username}/directory-cache",
    summary: "Refresh one directory account from its provider now (Admin)",
    middleware: admin,
    request: { params: z.object({ username: Username }) },
    responses: {
      200: json(SyncReply, "Refreshed"),
      404: err("No such directory account"),
      503: err("No directory server answered"),
      ...guarded,
    },
  }),
};

/** What the routes need. */
export interface RouteDeps {
  ctx: PluginContext;
  store: ProviderStore;
  reader: DirectoryReader;
  accounts: DirectoryAccounts;
  operators: OperatorsService;
}

/** Registers the directory routes. */
export function registerDirectoryRoutes(
  { ctx, store, reader, accounts, operators }: RouteDeps,
): void {
  const view = async (id: string) => {
    const p = await store.require(id);
    return toView(p, (await store.userCounts()).get(p.id) ?? 0);
  };

  ctx.http.openapi(routes.list, async (c) => {
    const counts = await store.userCounts();
    const providers = (await store.list()).map((p) => toView(p, counts.get(p.id) ?? 0));
    return c.json({ providers }, 200);
  });

  ctx.http.openapi(routes.create, async (c) => {
    const input = c.req.valid("json") as CreateInput;
    const p = await store.create(input);
    await ctx.audit(c, {
      action: "directory.provider_create",
      target: `directory_provider:${p.name}`,
      details: {
        type: p.provider_type,
        server_urls: p.server_urls,
        host_overrides: p.host_overrides,
      },
    });
    return c.json(toView(p, 0), 201);
  });

  ctx.http.openapi(routes.patch, async (c) => {
    const { id } = c.req.valid("param");
    const patch = c.req.valid("json") as PatchInput;
    const { provider, retest } = await store.update(id, patch);
    await ctx.audit(c, {
      action: "directory.provider_update",
      target: `directory_provider:${provider.name}`,
      // Field names only: values may be long, and the bind password must never appear.
      details: { fields: Object.keys(patch), disabled_for_retest: retest },
    });
    return c.json({
      ...(await view(id)),
      needs_test: !provider.enabled && !toView(provider, 0).tested,
    }, 200);
  });

  ctx.http.openapi(routes.remove, async (c) => {
    const { id } = c.req.valid("param");
    const p = await store.require(id);
    await store.delete(id);
    await ctx.audit(c, {
      action: "directory.provider_delete",
      target: `directory_provider:${p.name}`,
    });
    return c.body(null, 204);
  });

  ctx.http.openapi(routes.certificate, async (c) => {
    const { id } = c.req.valid("param");
    const { pem } = c.req.valid("json");
    if (pem !== null && !Pem.safeParse(pem).success) {
      throw badRequest("invalid_certificate", "pem must be a PEM certificate or null");
    }
    const { provider } = await store.update(id, { tls_ca_pem: pem });
    await ctx.audit(c, {
      action: "directory.provider_certificate",
      target: `directory_provider:${provider.name}`,
      details: { pinned: pem !== null },
    });
    return c.json({ ...(await view(id)), needs_test: !toView(provider, 0).tested }, 200);
  });

  ctx.http.openapi(routes.test, async (c) => {
    const { id } = c.req.valid("param");
    const raw = await c.req.text();
    let username: string | undefined;
    if (raw.trim()) {
      let data: unknown;
      try {
        data = JSON.parse(raw);
      } catch {
        throw badRequest("invalid_json", "the body is not valid JSON");
      }
      const parsed = z.object({ username: Username.optional() }).strict().safeParse(data);
      if (!parsed.success) throw badRequest("validation_failed", "body: {username?}");
      username = parsed.data.username;
    }
    const p = await store.require(id);
    let result;
    try {
      result = await reader.test(p, await store.bindPassword(p), username);
    } catch (e) {
      // The vault being locked is the one failure worth a non-200 answer.
      if (e instanceof HttpError) throw e;
      result = {
        ok: false,
        steps: [{ step: "internal", ok: false, message: "test failed", ms: 0 }],
      };
    }
    const failed = result.steps.find((s) => !s.ok);
    const summary = result.ok
      ? `passed (${result.steps.map((s) => s.step).join(", ")})`
      : `${failed?.step ?? "test"} failed: ${failed?.message ?? "unknown"}`;
    await store.recordTest(p, result.ok, summary);
    await ctx.audit(c, {
      action: "directory.provider_test",
      target: `directory_provider:${p.name}`,
      outcome: result.ok ? "success" : "failure",
      details: { summary },
    });
    return c.json({ ok: result.ok, steps: result.steps }, 200);
  });

  ctx.http.openapi(routes.lookup, async (c) => {
    const { id } = c.req.valid("param");
    const { username } = c.req.valid("json");
    const p = await store.require(id);
    const empty = {
      found: false,
      dn: null,
      username: null,
      display_name: null,
      mail: null,
      groups: [],
      disabled: false,
      role: null,
      site_ids: [],
      matched_groups: [],
      would_sign_in: false,
    };
    if (!acceptableUsername(username)) {
      return c.json({ ...empty, reason: "not a searchable username" }, 200);
    }
    let entry;
    try {
      entry = await reader.lookup(p, await store.bindPassword(p), username);
    } catch (e) {
      throw directoryHttpError(e, p);
    }
    if (!entry) return c.json({ ...empty, reason: "no entry matches the user search filter" }, 200);
    const mapped = mapGroups(p, entry.groups);
    const local = await operators.userByName(entry.username || username);
    const link = local ? await accounts.link(local.id) : undefined;
    const reason = entry.disabled
      ? "disabled in the directory"
      : !mapped.role
      ? "in no group mapped to a role: sign-in would be refused (403 directory_no_access)"
      : local && local.auth_source === "local"
      ? `a local account named ${local.username} exists; it is never taken over`
      : local && link?.provider_id !== p.id
      ? `an account named ${local.username} comes from another provider`
      : !p.enabled
      ? "the provider is not enabled"
      : "would sign in";
    return c.json({
      found: true,
      dn: entry.dn,
      username: entry.username,
      display_name: entry.display_name,
      mail: entry.mail,
      groups: entry.groups,
      disabled: entry.disabled,
      role: mapped.role,
      site_ids: mapped.site_ids,
      matched_groups: mapped.matched_groups,
      would_sign_in: reason === "would sign in",
      reason,
    }, 200);
  });

  ctx.http.openapi(routes.sync, async (c) => {
    const { id } = c.req.valid("param");
    const p = await store.require(id);
    const result = await accounts.sync(p.id);
    await ctx.audit(c, {
      action: "directory.sync",
      target: `directory_provider:${p.name}`,
      details: { ...result },
    });
    return c.json({ status: "ok" as const, ...result }, 200);
  });

  ctx.http.openapi(routes.convert, async (c) => {
    const { id, username } = c.req.valid("param");
    await store.require(id);
    const user = await accounts.convert(id, username);
    await ctx.audit(c, { action: "directory.user_convert", target: `user:${user.username}` });
    return c.json({ status: "ok" as const, username: user.username }, 200);
  });

  ctx.http.openapi(routes.userCache, async (c) => {
    const { username } = c.req.valid("param");
    const user = await operators.userByName(username);
    const link = user ? await accounts.link(user.id) : undefined;
    if (!user || !link) throw notFound(`no directory account ${username}`);
    const result = await accounts.sync(link.provider_id, user.id);
    await ctx.audit(c, { action: "directory.user_refresh", target: `user:${user.username}` });
    return c.json({ status: "ok" as const, ...result }, 200);
  });
}

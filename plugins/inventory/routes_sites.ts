/**
 * Site routes (upstream §1.9): list with device counts, create, delete, rename, assign
 * hostnames, rotate the enrollment code, the hostname → site map, and the time-boxed
 * auto-approval window.
 *
 * @module
 */
import { idParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import { badRequest, HttpError, notFound } from "../../core/errors.ts";
import type { Router } from "../../core/http.ts";
import { errorResponse, jsonBody, jsonResponse, Site } from "./schemas.ts";
import type { InventoryService } from "./service.ts";

const SiteId = idParam();
const Name = z.string().trim().min(1).max(200);
const Hostname = z.string().trim().min(1).max(255);

const tags = ["sites"];

const list = createRoute({
  method: "get",
  path: "/api/sites",
  tags,
  summary: "Sites the caller may see, with device counts (codes shown to admins only)",
  middleware: [requireRole("User")] as const,
  responses: {
    200: jsonResponse(
      "Sites",
      z.object({
        sites: z.array(Site),
        public_base_url: z.string().nullable().describe(
          "BOREALIS_PUBLIC_BASE_URL (what agents use in install commands); null when unset",
        ),
      }),
    ),
    401: errorResponse("Not signed in"),
  },
});

const create = createRoute({
  method: "post",
  path: "/api/sites",
  tags,
  summary: "Create a site with a fresh enrollment code",
  middleware: [requireRole("Admin")] as const,
  request: jsonBody(
    z.object({ name: Name, description: z.string().max(2000).default("") }).strict(),
  ),
  responses: {
    201: jsonResponse("Created", Site),
    400: errorResponse("Bad body"),
    409: errorResponse("Name taken"),
    423: errorResponse("Vault locked"),
  },
});

const remove = createRoute({
  method: "post",
  path: "/api/sites/delete",
  tags,
  summary: "Delete sites; their devices become unassigned",
  middleware: [requireRole("Admin")] as const,
  request: jsonBody(z.object({ ids: z.array(SiteId).min(1).max(1000) }).strict()),
  responses: {
    200: jsonResponse("Deleted", z.object({ status: z.literal("ok"), deleted: z.number().int() })),
    400: errorResponse("Bad body"),
  },
});

const assign = createRoute({
  method: "post",
  path: "/api/sites/assign",
  tags,
  summary: "Move devices (by hostname) into a site",
  middleware: [requireRole("Admin")] as const,
  request: jsonBody(
    z.object({ site_id: SiteId, hostnames: z.array(Hostname).min(1).max(10_000) }).strict(),
  ),
  responses: {
    200: jsonResponse(
      "Assigned",
      z.object({ status: z.literal("ok"), assigned: z.number().int() }),
    ),
    404: errorResponse("No such site"),
  },
});

const rename = createRoute({
  method: "post",
  path: "/api/sites/rename",
  tags,
  summary: "Rename a site",
  middleware: [requireRole("Admin")] as const,
  request: jsonBody(z.object({ id: SiteId, new_name: Name }).strict()),
  responses: {
    200: jsonResponse("Renamed", Site),
    404: errorResponse("No such site"),
    409: errorResponse("Name taken"),
  },
});

const rotate = createRoute({
  method: "post",
  path: "/api/sites/rotate_code",
  tags,
  summary: "Replace a site's enrollment code (the old one stops working at once)",
  middleware: [requireRole("Admin")] as const,
  request: jsonBody(z.object({ site_id: SiteId }).strict()),
  responses: {
    200: jsonResponse("Site with its new code", Site),
    404: errorResponse("No such site"),
    423: errorResponse("Vault locked"),
  },
});

const autoApproval = createRoute({
  method: "post",
  path: "/api/sites/{id}/auto-approval",
  tags,
  summary: "Open a time-boxed auto-approval window for a site (minutes 0 ends it)",
  middleware: [requireRole("Admin")] as const,
  request: {
    params: z.object({ id: SiteId }),
    ...jsonBody(z.object({ minutes: z.number().int().min(0) }).strict()),
  },
  responses: {
    200: jsonResponse("Site", Site),
    400: errorResponse("Window too long"),
    404: errorResponse("No such site"),
  },
});

const deviceMap = createRoute({
  method: "get",
  path: "/api/sites/device_map",
  tags,
  summary: "Site of each hostname (comma-separated), within the caller's scope",
  middleware: [requireRole("User")] as const,
  request: { query: z.object({ hostnames: z.string().max(100_000).default("") }) },
  responses: {
    200: jsonResponse(
      "Mapping",
      z.object({
        mapping: z.record(
          z.string(),
          z.object({ site_id: z.number().int().nullable(), site_name: z.string().nullable() }),
        ),
      }),
    ),
  },
});

// Upstream's early install codes (§1.4) gave way to static per-site codes: the list still
// answers (one active code per site), creating or deleting one is gone (410).
const legacyCodes = createRoute({
  method: "get",
  path: "/api/admin/enrollment-codes",
  tags,
  summary: "Legacy: the per-site enrollment codes (install codes were replaced by site codes)",
  middleware: [requireRole("Admin")] as const,
  request: {
    query: z.object({ status: z.enum(["active", "expired", "used", "all"]).default("active") }),
  },
  responses: {
    200: jsonResponse(
      "Codes",
      z.object({
        codes: z.array(z.object({
          site_id: z.number().int(),
          site_name: z.string(),
          code: z.string().nullable(),
          status: z.literal("active"),
        })),
      }),
    ),
  },
});
const legacyGone = (method: "post" | "delete") =>
  createRoute({
    method,
    path: method === "post" ? "/api/admin/enrollment-codes" : "/api/admin/enrollment-codes/{id}",
    tags,
    summary: "Legacy: removed — use the sites API (410)",
    middleware: [requireRole("Admin")] as const,
    ...(method === "delete" ? { request: { params: z.object({ id: z.string().max(100) }) } } : {}),
    responses: { 410: errorResponse("Removed: use /api/sites and /api/sites/rotate_code") },
  });

/** Registers the site routes. */
export function registerSiteRoutes(
  http: Router,
  inv: InventoryService,
  audit: Auditor,
  publicBaseUrl: string | null = null,
): void {
  http.openapi(list, async (c) => {
    const p = await principalOf(c);
    const sites = await inv.listSites(p);
    const extra = await inv.extraFields<number>(
      "site",
      sites.map((s) => ({ id: s.id, site_id: s.id })),
      p,
    );
    return c.json(
      { sites: sites.map((s) => ({ ...s, ...extra.get(s.id) })), public_base_url: publicBaseUrl },
      200,
    );
  });

  http.openapi(create, async (c) => {
    const { name, description } = c.req.valid("json");
    const site = await inv.createSite(name, description);
    await audit(c, { action: "site.create", target: `site:${site.id}`, details: { name } });
    return c.json(site, 201);
  });

  http.openapi(remove, async (c) => {
    const { ids } = c.req.valid("json");
    const deleted = await inv.deleteSites(ids);
    await audit(c, {
      action: "site.delete",
      target: `sites:${ids.join(",")}`,
      details: { deleted },
    });
    return c.json({ status: "ok" as const, deleted }, 200);
  });

  http.openapi(assign, async (c) => {
    const { site_id, hostnames } = c.req.valid("json");
    const assigned = await inv.assignHostnames(site_id, hostnames);
    await audit(c, {
      action: "site.assign",
      target: `site:${site_id}`,
      details: { hostnames: hostnames.slice(0, 50), assigned },
    });
    return c.json({ status: "ok" as const, assigned }, 200);
  });

  http.openapi(rename, async (c) => {
    const { id, new_name } = c.req.valid("json");
    const site = await inv.renameSite(id, new_name);
    await audit(c, { action: "site.rename", target: `site:${id}`, details: { new_name } });
    return c.json(site, 200);
  });

  http.openapi(rotate, async (c) => {
    const { site_id } = c.req.valid("json");
    const site = await inv.rotateCode(site_id);
    await audit(c, { action: "site.rotate_code", target: `site:${site_id}` });
    return c.json(site, 200);
  });

  http.openapi(autoApproval, async (c) => {
    const { id } = c.req.valid("param");
    const { minutes } = c.req.valid("json");
    if (minutes > inv.maxAutoApprovalMinutes) {
      throw badRequest(
        "window_too_long",
        `auto-approval windows last at most ${inv.maxAutoApprovalMinutes} minutes`,
      );
    }
    const site = await inv.setAutoApproval(id, minutes);
    if (!site) throw notFound(`no site ${id}`);
    await audit(c, { action: "site.auto_approval", target: `site:${id}`, details: { minutes } });
    return c.json(site, 200);
  });

  http.openapi(legacyCodes, async (c) => {
    const p = await principalOf(c);
    const { status } = c.req.valid("query");
    const sites = status === "active" || status === "all" ? await inv.listSites(p) : [];
    return c.json({
      codes: sites.map((s) => ({
        site_id: s.id,
        site_name: s.name,
        code: s.enrollment_code,
        status: "active" as const,
      })),
    }, 200);
  });
  for (const method of ["post", "delete"] as const) {
    http.openapi(legacyGone(method), () => {
      throw new HttpError(
        410,
        "legacy_endpoint_removed_use_sites_api",
        "install codes were replaced by per-site enrollment codes: use /api/sites",
      );
    });
  }

  http.openapi(deviceMap, async (c) => {
    const p = await principalOf(c);
    const { hostnames } = c.req.valid("query");
    const list = hostnames.split(",").map((h) => h.trim()).filter(Boolean).slice(0, 10_000);
    return c.json({ mapping: await inv.deviceMap(p, list) }, 200);
  });
}

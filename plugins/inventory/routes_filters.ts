/**
 * Device filter routes (upstream §1.11) and saved device list views (§1.10).
 *
 * @module
 */
import { idParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { conflict, notFound } from "../../core/errors.ts";
import type { Router } from "../../core/http.ts";
import { FilterDefinition, filterMetadata, FilterPreview, type FilterService } from "./filters.ts";
import { errorResponse, jsonBody, jsonResponse } from "./schemas.ts";

const Id = z.object({ id: idParam() });
const Filter = z.record(z.string(), z.unknown()).openapi("DeviceFilter");
const tags = ["device filters"];

const list = createRoute({
  method: "get",
  path: "/api/device_filters",
  tags,
  summary: "Filters the caller may see (archived ones with include_archived=true)",
  description: "With `with_counts=true` each filter carries `match_count`: the devices it " +
    "matches now that the caller may see (null when it cannot be evaluated).",
  middleware: [requireRole("User")] as const,
  request: {
    query: z.object({
      include_archived: z.enum(["true", "false"]).default("false"),
      with_counts: z.enum(["true", "false"]).default("false"),
    }),
  },
  responses: { 200: jsonResponse("Filters", z.object({ filters: z.array(Filter) })) },
});
const metadata = createRoute({
  method: "get",
  path: "/api/device_filters/metadata",
  tags,
  summary: "Fields, operators, site modes and software sources",
  middleware: [requireRole("User")] as const,
  responses: { 200: jsonResponse("Metadata", z.record(z.string(), z.unknown())) },
});
const create = createRoute({
  method: "post",
  path: "/api/device_filters",
  tags,
  summary: "Create a filter",
  middleware: [requireRole("User")] as const,
  request: jsonBody(FilterDefinition),
  responses: {
    201: jsonResponse("Created", Filter),
    400: errorResponse("Bad definition"),
    409: errorResponse("Name taken"),
  },
});
const preview = createRoute({
  method: "post",
  path: "/api/device_filters/preview",
  tags,
  summary: "Devices a definition matches (within the caller's scope), without saving it",
  middleware: [requireRole("User")] as const,
  request: jsonBody(FilterPreview),
  responses: {
    200: jsonResponse(
      "Matches",
      z.object({
        count: z.number().int(),
        devices: z.array(
          z.object({
            guid: z.string(),
            hostname: z.string(),
            site_id: z.number().int().nullable(),
          }),
        ),
      }),
    ),
    400: errorResponse("Bad definition or regular expression"),
    422: errorResponse("Took too long"),
  },
});
const get = createRoute({
  method: "get",
  path: "/api/device_filters/{id}",
  tags,
  summary: "One filter",
  middleware: [requireRole("User")] as const,
  request: { params: Id },
  responses: { 200: jsonResponse("Filter", Filter), 404: errorResponse("No such filter in scope") },
});
const put = createRoute({
  method: "put",
  path: "/api/device_filters/{id}",
  tags,
  summary: "Replace a filter's definition",
  middleware: [requireRole("User")] as const,
  request: { params: Id, ...jsonBody(FilterDefinition) },
  responses: {
    200: jsonResponse("Filter", Filter),
    404: errorResponse("No such filter"),
    409: errorResponse("Name taken"),
  },
});
const del = createRoute({
  method: "delete",
  path: "/api/device_filters/{id}",
  tags,
  summary: "Delete a filter that nothing uses",
  middleware: [requireRole("User")] as const,
  request: { params: Id },
  responses: {
    200: jsonResponse("Deleted", z.object({ status: z.literal("ok") })),
    409: errorResponse("In use"),
  },
});
const usage = createRoute({
  method: "get",
  path: "/api/device_filters/{id}/usage",
  tags,
  summary: "Jobs and watchdogs that use a filter",
  middleware: [requireRole("User")] as const,
  request: { params: Id },
  responses: {
    200: jsonResponse(
      "Usage",
      z.object({
        usage: z.array(z.object({ kind: z.string(), id: z.string(), name: z.string() })),
      }),
    ),
  },
});
const action = (name: "clone" | "archive" | "unarchive") =>
  createRoute({
    method: "post",
    path: `/api/device_filters/{id}/${name}`,
    tags,
    summary: name === "clone"
      ? "Copy a filter"
      : `${name[0]!.toUpperCase()}${name.slice(1)} a filter`,
    middleware: [requireRole("User")] as const,
    request: {
      params: Id,
      body: {
        required: false,
        content: {
          "application/json": {
            schema: z.object({ name: z.string().trim().min(1).max(200).optional() }),
          },
        },
      },
    },
    responses: { 200: jsonResponse("Filter", Filter), 404: errorResponse("No such filter") },
  });

/** Registers the filter routes. */
export function registerFilterRoutes(http: Router, filters: FilterService, audit: Auditor): void {
  http.openapi(list, async (c) => {
    const p = await principalOf(c);
    const q = c.req.valid("query");
    const list = await filters.list(p, q.include_archived === "true");
    if (q.with_counts !== "true") return c.json({ filters: list }, 200);
    const counted = [];
    for (const f of list) counted.push({ ...f, match_count: await filters.matchCount(f, p) });
    return c.json({ filters: counted }, 200);
  });
  http.openapi(metadata, (c) => c.json(filterMetadata as Record<string, unknown>, 200));
  http.openapi(create, async (c) => {
    const p = await principalOf(c);
    const f = await filters.create(c.req.valid("json"), p);
    await audit(c, {
      action: "filter.create",
      target: `filter:${f.id}`,
      details: { name: f.name },
    });
    return c.json(f as unknown as Record<string, unknown>, 201);
  });
  http.openapi(preview, async (c) => {
    const p = await principalOf(c);
    const def = c.req.valid("json");
    filters.validate(p, def);
    const found = await filters.resolve(def, p);
    return c.json({ count: found.length, devices: found.slice(0, 200) }, 200);
  });
  http.openapi(get, async (c) => {
    const p = await principalOf(c);
    return c.json(
      await filters.get(c.req.valid("param").id, p) as unknown as Record<string, unknown>,
      200,
    );
  });
  http.openapi(put, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    const f = await filters.update(id, c.req.valid("json"), p);
    await audit(c, { action: "filter.update", target: `filter:${id}` });
    return c.json(f as unknown as Record<string, unknown>, 200);
  });
  http.openapi(del, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    await filters.remove(id, p);
    await audit(c, { action: "filter.delete", target: `filter:${id}` });
    return c.json({ status: "ok" as const }, 200);
  });
  http.openapi(usage, async (c) => {
    const p = await principalOf(c);
    return c.json({ usage: await filters.usage(c.req.valid("param").id, p) }, 200);
  });
  for (const name of ["clone", "archive", "unarchive"] as const) {
    http.openapi(action(name), async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      let newName: string | undefined;
      if (name === "clone") {
        try {
          newName = (c.req.valid("json") as { name?: string } | undefined)?.name;
        } catch { /* no body */ }
      }
      const f = name === "clone"
        ? await filters.clone(id, p, newName)
        : await filters.archive(id, name === "archive", p);
      await audit(c, { action: `filter.${name}`, target: `filter:${id}` });
      return c.json(f as unknown as Record<string, unknown>, 200);
    });
  }
}

// ------------------------------------------------------------------ views

const View = z.object({
  name: z.string().trim().min(1).max(200),
  columns: z.array(z.string().max(100)).max(200).default([]),
  filters: z.record(z.string(), z.unknown()).default({}),
}).openapi("DeviceListView");

interface ViewRow {
  id: number;
  name: string;
  columns: string[];
  filters: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}
const viewOut = (r: ViewRow) => ({
  id: r.id,
  name: r.name,
  columns: r.columns,
  filters: r.filters,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});
const vtags = ["device list views"];

/** Registers the saved list view routes (global, any operator). */
export function registerViewRoutes(http: Router, sql: Sql, clock: Clock, audit: Auditor): void {
  const ViewOut = View.extend({
    id: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  });
  http.openapi(
    createRoute({
      method: "get",
      path: "/api/device_list_views",
      tags: vtags,
      summary: "Saved device list views",
      middleware: [requireRole("User")] as const,
      responses: { 200: jsonResponse("Views", z.object({ views: z.array(ViewOut) })) },
    }),
    async (c) => {
      const rows = await sql<ViewRow[]>`select * from device_list_views order by lower(name)`;
      return c.json({ views: rows.map(viewOut) }, 200);
    },
  );
  http.openapi(
    createRoute({
      method: "post",
      path: "/api/device_list_views",
      tags: vtags,
      summary: "Save a view",
      middleware: [requireRole("User")] as const,
      request: jsonBody(View),
      responses: {
        201: jsonResponse("Created", z.object({ id: z.number().int() })),
        409: errorResponse("Name taken"),
      },
    }),
    async (c) => {
      const v = c.req.valid("json");
      const now = new Date(clock.now());
      const [dupe] =
        await sql`select 1 from device_list_views where lower(name) = lower(${v.name})`;
      if (dupe) throw conflict("view_exists", `a view named ${v.name} already exists`);
      const [row] = await sql<{ id: number }[]>`
        insert into device_list_views (name, columns, filters, created_at, updated_at)
        values (${v.name}, ${sql.json(v.columns)}, ${
        sql.json(v.filters as never)
      }, ${now}, ${now}) returning id`;
      await audit(c, { action: "view.create", target: `view:${row!.id}` });
      return c.json({ id: row!.id }, 201);
    },
  );
  const one = async (id: number) => {
    const [row] = await sql<ViewRow[]>`select * from device_list_views where id = ${id}`;
    if (!row) throw notFound(`no view ${id}`);
    return row;
  };
  http.openapi(
    createRoute({
      method: "get",
      path: "/api/device_list_views/{id}",
      tags: vtags,
      summary: "One view",
      middleware: [requireRole("User")] as const,
      request: { params: Id },
      responses: { 200: jsonResponse("View", ViewOut), 404: errorResponse("No such view") },
    }),
    async (c) => c.json(viewOut(await one(c.req.valid("param").id)), 200),
  );
  http.openapi(
    createRoute({
      method: "put",
      path: "/api/device_list_views/{id}",
      tags: vtags,
      summary: "Replace a view",
      middleware: [requireRole("User")] as const,
      request: { params: Id, ...jsonBody(View) },
      responses: {
        200: jsonResponse("View", ViewOut),
        404: errorResponse("No such view"),
        409: errorResponse("Name taken"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const v = c.req.valid("json");
      await one(id);
      const [dupe] =
        await sql`select 1 from device_list_views where lower(name) = lower(${v.name}) and id <> ${id}`;
      if (dupe) throw conflict("view_exists", `a view named ${v.name} already exists`);
      await sql`update device_list_views set name = ${v.name}, columns = ${sql.json(v.columns)},
        filters = ${sql.json(v.filters as never)}, updated_at = ${new Date(
        clock.now(),
      )} where id = ${id}`;
      await audit(c, { action: "view.update", target: `view:${id}` });
      return c.json(viewOut(await one(id)), 200);
    },
  );
  http.openapi(
    createRoute({
      method: "delete",
      path: "/api/device_list_views/{id}",
      tags: vtags,
      summary: "Delete a view",
      middleware: [requireRole("User")] as const,
      request: { params: Id },
      responses: {
        200: jsonResponse("Deleted", z.object({ status: z.literal("ok") })),
        404: errorResponse("No such view"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const r = await sql`delete from device_list_views where id = ${id}`;
      if (!r.count) throw notFound(`no view ${id}`);
      await audit(c, { action: "view.delete", target: `view:${id}` });
      return c.json({ status: "ok" as const }, 200);
    },
  );
}

/**
 * HTTP routes of the catalog (upstream paths, snake_case fields). Any operator reads
 * every domain and writes `user_created`; `official` and `community` writes need an
 * Admin whose session holds Dev Mode. Every mutation is audited, denials included.
 *
 * @module
 */
import { int, intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type Principal, principalOf, requireDevMode, requireRole } from "../../core/auth.ts";
import { forbidden, HttpError } from "../../core/errors.ts";
import type { AppEnv } from "../../core/http.ts";
import type { PluginContext } from "../../core/plugin.ts";
import { operatorsKey } from "../operators/mod.ts";
import { recordItem } from "./cache.ts";
import type { AssemblyRecord, Domain } from "./model.ts";
import { DOMAINS, KINDS, PAYLOAD_TYPES, TYPES } from "./model.ts";
import type { AssembliesService } from "./service.ts";

const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
}).openapi("AssembliesError");

const err = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorBody } },
});

const Guid = z.object({ guid: z.uuid() });

const Queue = z.object({
  dirty_count: z.number().int(),
  pending_deletes: z.number().int(),
  failing_count: z.number().int(),
  oldest_dirty_since: z.string().nullable(),
  last_flush_at: z.string().nullable(),
  last_flush_error: z.string().nullable(),
  flush_interval_seconds: z.number().int(),
  flushing: z.boolean(),
}).openapi("AssemblyQueue");

const Item = z.object({
  assembly_guid: z.string(),
  source: z.enum(DOMAINS),
  domain: z.enum(DOMAINS),
  display_name: z.string(),
  summary: z.string(),
  category: z.string(),
  assembly_kind: z.enum(KINDS),
  assembly_type: z.enum(TYPES).nullable(),
  version: z.number().int(),
  tags: z.array(z.string()),
  payload_type: z.enum(PAYLOAD_TYPES),
  payload_size_bytes: z.number().int(),
  is_dirty: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
  payload_guid: z.string().optional().describe("Admins only"),
}).openapi("AssemblyItem");

const State = z.object({
  domain: z.enum(DOMAINS),
  is_dirty: z.boolean(),
  dirty_since: z.string().nullable(),
  last_persisted: z.string().nullable(),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
});

const Detail = Item.extend({
  metadata: z.record(z.string(), z.unknown()),
  payload: z.unknown(),
  payload_checksum: z.string(),
  checksum: z.string(),
  state: State,
}).openapi("AssemblyDetail");

const PayloadField = z.union([z.string(), z.record(z.string(), z.unknown())])
  .describe("Script text, a workflow object, or base64 with payload_encoding=base64");

const CreateBody = z.object({
  assembly_guid: z.uuid().optional(),
  domain: z.enum(DOMAINS).default("user_created"),
  display_name: z.string().trim().min(1).max(200),
  summary: z.string().max(4000).optional(),
  category: z.string().trim().max(100).optional(),
  assembly_kind: z.enum(KINDS),
  assembly_type: z.enum(TYPES).nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  tags: z.array(z.string().trim().min(1).max(64)).max(50).optional(),
  payload: PayloadField,
  payload_type: z.enum(PAYLOAD_TYPES).optional(),
  payload_encoding: z.enum(["text", "base64"]).optional(),
}).strict().openapi("AssemblyCreate");

const UpdateBody = z.object({
  version: int({ min: 1 }).describe("The version you last read; a stale one gets 409"),
  display_name: z.string().trim().min(1).max(200).optional(),
  summary: z.string().max(4000).optional(),
  category: z.string().trim().max(100).optional(),
  assembly_type: z.enum(TYPES).nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  tags: z.array(z.string().trim().min(1).max(64)).max(50).optional(),
  payload: PayloadField.optional(),
  payload_encoding: z.enum(["text", "base64"]).optional(),
}).strict().openapi("AssemblyUpdate");

const FlushResult = z.object({
  persisted: z.number().int(),
  deleted: z.number().int(),
  failed: z.number().int(),
  superseded: z.number().int(),
  deferred: z.number().int(),
  duration_ms: z.number(),
});

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const body = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});

const tags = ["assemblies"];

/** Registers every route. */
export function registerRoutes(ctx: PluginContext, service: AssembliesService): void {
  const http = ctx.http;
  const operators = ctx.use(operatorsKey);
  const isAdmin = (p: Principal) => p.kind === "system" || p.role === "Admin";

  /** Allows a write to `domain`, or throws (and audits) the kernel guard's 403. */
  const authorize = async (
    c: Context<AppEnv>,
    domain: Domain,
    action: string,
    target?: string,
  ): Promise<void> => {
    if (domain === "user_created") return;
    try {
      await requireDevMode()(c, async () => {});
    } catch (e) {
      await ctx.audit(c, {
        action,
        target,
        outcome: "denied",
        details: await auditDetails(c, domain, {
          reason: e instanceof HttpError ? e.code : "denied",
        }),
      });
      if (e instanceof HttpError && e.code === "dev_mode_required") {
        throw new HttpError(
          403,
          "dev_mode_required",
          `writing the ${domain} domain needs Dev Mode: as an Admin, POST /api/assemblies/dev-mode/switch {"enabled": true}, then retry`,
          { domain },
        );
      }
      if (e instanceof HttpError && e.code === "admin_required") {
        throw new HttpError(
          403,
          "dev_mode_required",
          `writing the ${domain} domain needs an Admin with Dev Mode enabled; operators may write user_created`,
          { domain },
        );
      }
      throw e;
    }
  };

  const auditDetails = async (
    c: Context<AppEnv>,
    domain: Domain | undefined,
    extra: Record<string, unknown> = {},
  ) => {
    const p = await principalOf(c);
    return { role: p.role ?? p.kind, dev_mode: !!p.devMode, domain, ...extra };
  };

  const audited = async <T>(
    c: Context<AppEnv>,
    action: string,
    domain: Domain | undefined,
    target: string | undefined,
    fn: () => Promise<T>,
    extra: (r: T) => Record<string, unknown> = () => ({}),
  ): Promise<T> => {
    try {
      const r = await fn();
      await ctx.audit(c, {
        action,
        target,
        details: await auditDetails(c, domain, extra(r)),
      });
      return r;
    } catch (e) {
      await ctx.audit(c, {
        action,
        target,
        outcome: "failure",
        details: await auditDetails(c, domain, {
          error: e instanceof HttpError ? e.code : "internal_error",
        }),
      });
      throw e;
    }
  };

  const toDetail = (
    r: AssemblyRecord,
    payload: unknown,
    admin: boolean,
  ): z.infer<typeof Detail> => {
    const state = service.cache.state(r.assembly_guid)!;
    return {
      ...recordItem(r, state.is_dirty, admin),
      metadata: r.metadata,
      payload,
      payload_checksum: r.payload_checksum,
      checksum: r.checksum,
      state,
    };
  };

  const summary = (r: AssemblyRecord, admin: boolean): z.infer<typeof Item> =>
    recordItem(r, service.cache.state(r.assembly_guid)?.is_dirty ?? true, admin);

  // ---- reads ---------------------------------------------------------------------

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/assemblies",
      tags,
      summary: "List assemblies with their queue state",
      middleware: [requireRole("User")] as const,
      request: {
        query: z.object({
          domain: z.enum(DOMAINS).optional(),
          kind: z.enum(KINDS).optional(),
          q: z.string().max(200).optional().describe(
            "Text search in name, summary, category, tags",
          ),
          limit: intParam({ min: 1, max: 10_000 }).default(100),
          offset: intParam({ min: 0, max: 10_000_000 }).default(0),
        }),
      },
      responses: {
        200: json(
          z.object({ items: z.array(Item), total: z.number().int(), queue: Queue }),
          "A page of assemblies",
        ),
        400: err("Bad query"),
        401: err("Not signed in"),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const p = await principalOf(c);
      // Items come pre-serialized from the cache (see listJson); the envelope is built here.
      const { items, total } = service.cache.listJson(q, isAdmin(p));
      const body = `{"items":${items},"total":${total},"queue":${
        JSON.stringify(service.cache.queue())
      }}`;
      return new Response(body, {
        status: 200,
        headers: { "Content-Type": "application/json; charset=utf-8" },
      }) as never;
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/assemblies/integrity",
      tags,
      summary: "Check every payload file and list missing or corrupt ones (Admin)",
      middleware: [requireRole("Admin")] as const,
      responses: {
        200: json(
          z.object({
            checked: z.number().int(),
            problems: z.array(z.object({
              assembly_guid: z.string(),
              domain: z.enum(DOMAINS),
              display_name: z.string(),
              payload_guid: z.string(),
              payload_file: z.string(),
              problem: z.enum(["missing", "corrupt", "unreadable"]),
              detail: z.string(),
              detected_at: z.string(),
            })),
          }),
          "Integrity report",
        ),
        401: err("Not signed in"),
        403: err("Not an Admin"),
      },
    }),
    async (c) => {
      const problems = await service.cache.checkIntegrity();
      return c.json({ checked: service.cache.size, problems }, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/assemblies/queue",
      tags,
      summary: "Write-queue state per GUID (Admin)",
      middleware: [requireRole("Admin")] as const,
      responses: {
        200: json(
          z.object({ queue: Queue, entries: z.record(z.string(), z.unknown()) }),
          "Queue snapshot and per-GUID state",
        ),
        401: err("Not signed in"),
        403: err("Not an Admin"),
      },
    }),
    (c) => c.json({ queue: service.cache.queue(), entries: service.cache.describe() }, 200),
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/assemblies/{guid}",
      tags,
      summary: "One assembly with its payload",
      middleware: [requireRole("User")] as const,
      request: { params: Guid },
      responses: {
        200: json(Detail, "The assembly"),
        400: err("Bad GUID"),
        401: err("Not signed in"),
        404: err("No such assembly"),
        409: err("The payload file is missing or corrupt (payload_missing, payload_corrupt)"),
      },
    }),
    async (c) => {
      const { guid } = c.req.valid("param");
      const p = await principalOf(c);
      const { record, payload } = await service.detail(guid);
      return c.json(toDetail(record, payload, isAdmin(p)), 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/assemblies/{guid}/export",
      tags,
      summary: "Export one assembly as a legacy JSON document",
      middleware: [requireRole("User")] as const,
      request: { params: Guid },
      responses: {
        200: json(z.record(z.string(), z.unknown()), "The legacy document"),
        400: err("Bad GUID"),
        401: err("Not signed in"),
        404: err("No such assembly"),
        409: err("The payload file is missing or corrupt"),
      },
    }),
    async (c) => {
      const { guid } = c.req.valid("param");
      const { record, body } = await service.exportDocument(guid);
      const name = record.display_name.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "assembly";
      // The exact bytes matter (exports are byte-stable), so the body is sent as text.
      return new Response(body, {
        status: 200,
        headers: {
          "Content-Type": "application/json; charset=utf-8",
          "Content-Disposition": `attachment; filename="${name}.json"`,
        },
      }) as never;
    },
  );

  // ---- writes --------------------------------------------------------------------

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/assemblies",
      tags,
      summary: "Create an assembly (staged; written at the next flush)",
      middleware: [requireRole("User")] as const,
      request: body(CreateBody),
      responses: {
        201: json(Item, "Created and queued"),
        400: err("Invalid fields"),
        401: err("Not signed in"),
        403: err("dev_mode_required for official/community"),
        409: err("GUID taken"),
        413: err("Payload too large"),
      },
    }),
    async (c) => {
      const input = c.req.valid("json");
      await authorize(c, input.domain, "assemblies.create", input.assembly_guid);
      const p = await principalOf(c);
      const record = await audited(
        c,
        "assemblies.create",
        input.domain,
        input.assembly_guid,
        () => service.create(input),
        (r) => ({ assembly_guid: r.assembly_guid, display_name: r.display_name }),
      );
      return c.json(summary(record, isAdmin(p)), 201);
    },
  );

  http.openapi(
    createRoute({
      method: "put",
      path: "/api/assemblies/{guid}",
      tags,
      summary: "Update an assembly; send the version you last read",
      middleware: [requireRole("User")] as const,
      request: { params: Guid, ...body(UpdateBody) },
      responses: {
        200: json(Item, "Updated and queued"),
        400: err("Invalid fields"),
        401: err("Not signed in"),
        403: err("dev_mode_required for official/community"),
        404: err("No such assembly"),
        409: err("stale_version: someone saved a newer version"),
        413: err("Payload too large"),
      },
    }),
    async (c) => {
      const { guid } = c.req.valid("param");
      const { version, ...patch } = c.req.valid("json");
      const current = service.cache.require(guid);
      await authorize(c, current.domain, "assemblies.update", guid);
      const p = await principalOf(c);
      const record = await audited(
        c,
        "assemblies.update",
        current.domain,
        guid,
        () => service.update(guid, version, patch),
        (r) => ({ version: r.version }),
      );
      return c.json(summary(record, isAdmin(p)), 200);
    },
  );

  http.openapi(
    createRoute({
      method: "delete",
      path: "/api/assemblies/{guid}",
      tags,
      summary: "Delete an assembly (queued; the row goes at the next flush)",
      middleware: [requireRole("User")] as const,
      request: {
        params: Guid,
        query: z.object({ version: intParam({ min: 1 }).optional() }),
      },
      responses: {
        202: json(
          z.object({ status: z.literal("queued"), assembly_guid: z.string(), queue: Queue }),
          "Queued",
        ),
        400: err("Bad GUID"),
        401: err("Not signed in"),
        403: err("dev_mode_required for official/community"),
        404: err("No such assembly"),
        409: err("stale_version"),
      },
    }),
    async (c) => {
      const { guid } = c.req.valid("param");
      const { version } = c.req.valid("query");
      const current = service.cache.require(guid);
      await authorize(c, current.domain, "assemblies.delete", guid);
      await audited(
        c,
        "assemblies.delete",
        current.domain,
        guid,
        () => Promise.resolve(service.remove(guid, version)),
      );
      return c.json(
        { status: "queued" as const, assembly_guid: guid, queue: service.cache.queue() },
        202,
      );
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/assemblies/{guid}/clone",
      tags,
      summary: "Copy an assembly into a domain under a new GUID",
      middleware: [requireRole("User")] as const,
      request: {
        params: Guid,
        ...body(
          z.object({
            target_domain: z.enum(DOMAINS),
            new_assembly_guid: z.uuid().optional(),
          }).strict(),
        ),
      },
      responses: {
        201: json(Item, "Cloned and queued"),
        400: err("Invalid fields"),
        401: err("Not signed in"),
        403: err("dev_mode_required for official/community"),
        404: err("No such assembly"),
        409: err("GUID taken, or the source payload is missing/corrupt"),
      },
    }),
    async (c) => {
      const { guid } = c.req.valid("param");
      const { target_domain, new_assembly_guid } = c.req.valid("json");
      service.cache.require(guid);
      await authorize(c, target_domain, "assemblies.clone", guid);
      const p = await principalOf(c);
      const record = await audited(
        c,
        "assemblies.clone",
        target_domain,
        guid,
        () => service.clone(guid, target_domain, new_assembly_guid),
        (r) => ({ new_assembly_guid: r.assembly_guid }),
      );
      return c.json(summary(record, isAdmin(p)), 201);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/assemblies/import",
      tags,
      summary: "Import a legacy JSON document (creates, or updates the same GUID)",
      middleware: [requireRole("User")] as const,
      request: {
        query: z.object({ domain: z.enum(DOMAINS).default("user_created") }),
        ...body(z.record(z.string(), z.unknown())),
      },
      responses: {
        200: json(Item, "Updated an existing assembly"),
        201: json(Item, "Created"),
        400: err("invalid_assembly_document, listing each invalid field"),
        401: err("Not signed in"),
        403: err("dev_mode_required for official/community"),
        409: err("GUID taken in another domain, or stale version"),
        413: err("Too large"),
      },
    }),
    async (c) => {
      const { domain } = c.req.valid("query");
      const doc = c.req.valid("json");
      await authorize(c, domain, "assemblies.import");
      const p = await principalOf(c);
      const { record, created } = await audited(
        c,
        "assemblies.import",
        domain,
        typeof doc.assembly_guid === "string" ? doc.assembly_guid : undefined,
        () => service.importDocument(doc, domain),
        (r) => ({ assembly_guid: r.record.assembly_guid, created: r.created }),
      );
      return c.json(summary(record, isAdmin(p)), created ? 201 : 200);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/assemblies/import/preview",
      tags,
      summary: "Check an import document and answer what it would become, saving nothing",
      description: "The same rules as POST /api/assemblies/import (shape, kind and type, " +
        "variables, files, the size limit); an editor fills its form with the answer.",
      middleware: [requireRole("User")] as const,
      request: body(z.record(z.string(), z.unknown())),
      responses: {
        200: json(
          z.object({
            assembly_guid: z.string().nullable(),
            document_domain: z.string().nullable(),
            display_name: z.string(),
            summary: z.string(),
            category: z.string(),
            assembly_kind: z.enum(KINDS),
            assembly_type: z.enum(TYPES).nullable(),
            metadata: z.record(z.string(), z.unknown()),
            tags: z.array(z.string()),
            payload: z.unknown(),
            payload_encoding: z.enum(["text", "base64"]),
            payload_size_bytes: z.number().int(),
            max_bytes: z.number().int(),
          }).openapi("AssemblyImportPreview"),
          "What the document would become",
        ),
        400: err("invalid_assembly_document, listing each invalid field"),
        401: err("Not signed in"),
      },
    }),
    (c) => c.json(service.previewImport(c.req.valid("json")) as never, 200),
  );

  // ---- Dev Mode and privileged operations ----------------------------------------

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/assemblies/dev-mode/switch",
      tags,
      summary: "Turn Dev Mode on or off for this session (Admin)",
      middleware: [requireRole("Admin")] as const,
      request: body(
        z.object({
          enabled: z.boolean(),
          ttl_seconds: z.number().int().min(60).max(86_400).default(900),
        }).strict(),
      ),
      responses: {
        200: json(
          z.object({ dev_mode: z.boolean(), expires_at: z.string().nullable() }),
          "Dev Mode state",
        ),
        400: err("Invalid fields"),
        401: err("Not signed in"),
        403: err("Not an Admin, or not a session"),
      },
    }),
    async (c) => {
      const { enabled, ttl_seconds } = c.req.valid("json");
      const p = await principalOf(c);
      if (p.kind !== "operator" || p.method !== "session" || !p.credentialId) {
        await ctx.audit(c, {
          action: "assemblies.dev_mode.switch",
          outcome: "denied",
          details: await auditDetails(c, undefined, { enabled, reason: "not_a_session" }),
        });
        throw forbidden(
          "dev_mode_needs_session",
          "Dev Mode is held by a signed-in session; API tokens cannot hold it",
        );
      }
      await operators.setDevMode(p.credentialId, enabled ? ttl_seconds : 0);
      const expires = enabled ? new Date(ctx.clock.now() + ttl_seconds * 1000).toISOString() : null;
      await ctx.audit(c, {
        action: "assemblies.dev_mode.switch",
        target: p.name,
        details: await auditDetails(c, undefined, { enabled, expires_at: expires }),
      });
      return c.json({ dev_mode: enabled, expires_at: expires }, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/assemblies/dev-mode/write",
      tags,
      summary: "Write every staged change to the database now (Admin + Dev Mode)",
      middleware: [requireDevMode()] as const,
      responses: {
        200: json(z.object({ result: FlushResult, queue: Queue }), "Flushed"),
        401: err("Not signed in"),
        403: err("admin_required or dev_mode_required"),
      },
    }),
    async (c) => {
      const result = await audited(
        c,
        "assemblies.flush",
        undefined,
        undefined,
        () => service.flush(),
        (r) => ({ ...r }),
      );
      return c.json({ result, queue: service.cache.queue() }, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/assemblies/official/sync",
      tags,
      summary: "Rebuild the official domain from the shipped catalog (Admin + Dev Mode)",
      middleware: [requireDevMode()] as const,
      responses: {
        200: json(
          z.object({
            files: z.number().int(),
            added: z.array(z.string()),
            changed: z.array(z.string()),
            removed: z.array(z.string()),
            unchanged: z.number().int(),
            repaired: z.number().int(),
            skipped: z.array(z.object({ path: z.string(), reason: z.string() })),
            fingerprint: z.string(),
          }),
          "Sync summary",
        ),
        401: err("Not signed in"),
        403: err("admin_required or dev_mode_required"),
      },
    }),
    async (c) => {
      const result = await audited(
        c,
        "assemblies.official_sync",
        "official",
        undefined,
        () => service.syncOfficial(),
        (r) => ({
          added: r.added.length,
          changed: r.changed.length,
          removed: r.removed.length,
          unchanged: r.unchanged,
          skipped: r.skipped.length,
        }),
      );
      return c.json(result, 200);
    },
  );
}

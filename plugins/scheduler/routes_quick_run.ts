/**
 * Routes: quick run, device activity history, and the code-signing public key.
 *
 * @module
 */
import { bigIdParam, intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { canSeeSite, principalOf, requireRole } from "../../core/auth.ts";
import { badRequest, HttpError, notFound } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import { activityJson, type ActivityRow, Dispatcher } from "./dispatch.ts";
import type { QuickRunner } from "./quick_run.ts";
import { ErrorBody, errors, json } from "./openapi.ts";
import type { CodeSigner } from "./signing.ts";

const QuickRunBody = z.object({
  assembly_guid: z.string().min(1).max(100).optional(),
  script_path: z.string().max(500).optional(),
  hostnames: z.array(z.string().min(1).max(255)).max(10_000).optional(),
  device_guids: z.array(z.string().min(1).max(64)).max(10_000).optional(),
  run_mode: z.enum(["system", "current_user"]).default("system"),
  variable_values: z.record(z.string(), z.unknown()).optional(),
}).openapi("QuickRunBody");

/** Registers the routes. */
export function registerQuickRunRoutes(
  ctx: PluginContext,
  d: { runner: QuickRunner; signer: CodeSigner; dispatcher: Dispatcher },
): void {
  const { sql } = ctx;
  const cols = sql.unsafe(Dispatcher.columns);

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/scripts/quick_run",
      summary: "Run an assembly on devices now",
      middleware: [requireRole("User")] as const,
      request: {
        body: { required: true, content: { "application/json": { schema: QuickRunBody } } },
      },
      responses: {
        200: json(
          z.object({
            job_id: z.string(),
            results: z.array(z.object({
              hostname: z.string(),
              device_guid: z.string(),
              activity_id: z.number(),
              job_id: z.number(),
              status: z.string(),
            })),
          }),
          "Dispatched",
        ),
        ...errors,
        423: json(ErrorBody, "Vault locked"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const body = c.req.valid("json");
      if (!body.assembly_guid) {
        throw badRequest(
          "missing_assembly",
          body.script_path
            ? "script_path is not supported by this engine; send assembly_guid"
            : "Missing script_path or assembly_guid",
        );
      }
      const hostnames = body.hostnames ?? [];
      const guidsIn = body.device_guids ?? [];
      if (!hostnames.length && !guidsIn.length) {
        throw badRequest("missing_hostnames", "Missing hostnames[]");
      }
      const rows = await sql<{ guid: string; hostname: string; site_id: number | null }[]>`
        select guid::text, hostname, site_id from devices
        where lower(hostname) = any(${hostnames.map((h) => h.toLowerCase())}::text[])
           or guid::text = any(${guidsIn.map((g) => g.toLowerCase())}::text[])`;
      const byHost = new Map(rows.map((r) => [r.hostname.toLowerCase(), r]));
      const byGuid = new Map(rows.map((r) => [r.guid.toLowerCase(), r]));
      // Unknown and out-of-scope targets are reported alike, so names cannot be probed.
      const outOfScope: string[] = [];
      const guids: string[] = [];
      for (const h of hostnames) {
        const r = byHost.get(h.toLowerCase());
        if (!r || !canSeeSite(p, r.site_id)) outOfScope.push(h);
        else guids.push(r.guid);
      }
      for (const g of guidsIn) {
        const r = byGuid.get(g.toLowerCase());
        if (!r || !canSeeSite(p, r.site_id)) outOfScope.push(g);
        else guids.push(r.guid);
      }
      if (outOfScope.length) {
        await ctx.audit(c, {
          action: "scripts.quick_run",
          target: body.assembly_guid,
          outcome: "denied",
          details: { out_of_scope_hostnames: outOfScope },
        });
        throw new HttpError(
          403,
          "out_of_scope_hostnames",
          `not allowed on: ${outOfScope.join(", ")}`,
          { out_of_scope_hostnames: outOfScope },
        );
      }
      const result = await d.runner.run({
        assemblyGuid: body.assembly_guid,
        deviceGuids: guids,
        variableValues: body.variable_values,
        runMode: body.run_mode,
        requestedBy: p.name,
      });
      await ctx.audit(c, {
        action: "scripts.quick_run",
        target: body.assembly_guid,
        details: { job_id: result.jobId, targets: result.targets.map((t) => t.hostname) },
      });
      return c.json({
        job_id: result.jobId,
        results: result.targets.map((t) => ({
          hostname: t.hostname,
          device_guid: t.deviceGuid,
          activity_id: Number(t.activityId),
          job_id: Number(t.activityId),
          status: t.status,
        })),
      }, 200);
    },
  );

  const Activity = z.record(z.string(), z.unknown()).openapi("DeviceActivity");

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/device/activity/job/{id}",
      summary: "One activity (a job id as sent to the agent)",
      middleware: [requireRole("User")] as const,
      request: { params: z.object({ id: bigIdParam() }) },
      responses: { 200: json(Activity, "Activity"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      const [row] = await sql<ActivityRow[]>`select ${cols} from activity_history where id = ${id}`;
      if (!row || !canSeeSite(p, row.site_id)) throw notFound(`no activity ${id}`);
      return c.json(activityJson(row), 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/device/activity/{hostname}",
      summary: "Activity history of a device, newest first",
      middleware: [requireRole("User")] as const,
      request: {
        params: z.object({ hostname: z.string().min(1).max(255) }),
        query: z.object({ limit: intParam({ min: 1, max: 1000 }).default(200) }),
      },
      responses: { 200: json(z.object({ history: z.array(Activity) }), "History"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { hostname } = c.req.valid("param");
      const { limit } = c.req.valid("query");
      const rows = await sql<ActivityRow[]>`
        select ${cols} from activity_history where lower(hostname) = ${hostname.toLowerCase()}
        order by id desc limit ${limit}`;
      const visible = rows.filter((r) => canSeeSite(p, r.site_id));
      return c.json({ history: visible.map(activityJson) }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "delete",
      path: "/api/device/activity/{hostname}",
      summary: "Clear a device's finished activity",
      middleware: [requireRole("User")] as const,
      request: { params: z.object({ hostname: z.string().min(1).max(255) }) },
      responses: {
        200: json(z.object({ status: z.string(), deleted: z.number() }), "Cleared"),
        ...errors,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { hostname } = c.req.valid("param");
      const scope = p.sites === "all" ? sql`true` : sql`site_id = any(${[...p.sites]}::int[])`;
      const res = await sql`
        delete from activity_history where lower(hostname) = ${hostname.toLowerCase()}
          and status not in ('Pending', 'Running') and ${scope}`;
      await ctx.audit(c, {
        action: "device.activity.clear",
        target: hostname,
        details: { deleted: res.count },
      });
      return c.json({ status: "ok", deleted: res.count }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/scripts/signing_key",
      summary: "The engine's script-signing public key (Ed25519, base64 SPKI)",
      responses: {
        200: json(
          z.object({ sig_alg: z.literal("ed25519"), signing_key: z.string(), key_id: z.string() }),
          "Key",
        ),
        423: json(ErrorBody, "No key yet and the vault is locked"),
      },
    }),
    async (c) => {
      const k = await d.signer.ensure();
      return c.json({ sig_alg: "ed25519" as const, signing_key: k.spki, key_id: k.kid }, 200);
    },
  );
}

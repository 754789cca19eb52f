/**
 * Routes: quick run, device activity history, and the code-signing public key.
 *
 * @module
 */
import { bigIdParam, intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { id } from "../../core/fields.ts";
import { canSeeSite, principalOf, requireRole } from "../../core/auth.ts";
import { badRequest, HttpError, notFound } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import type { FilterService, InventoryService, TargetDevice } from "../inventory/mod.ts";
import { activityJson, type ActivityRow, Dispatcher } from "./dispatch.ts";
import { type QuickRunner, RUNNABLE } from "./quick_run.ts";
import { ErrorBody, errors, json } from "./openapi.ts";
import type { CodeSigner } from "./signing.ts";

/** Most devices one quick run reaches (a fleet of 19,000 fits with room). */
const MAX_TARGETS = 100_000;

const QuickRunBody = z.object({
  assembly_guid: z.string().min(1).max(100).optional(),
  script_path: z.string().max(500).optional(),
  hostnames: z.array(z.string().min(1).max(255)).max(10_000).optional(),
  device_guids: z.array(z.string().min(1).max(64)).max(10_000).optional(),
  filter_id: id().optional().openapi({
    description: "Every device a saved filter matches, resolved now in the caller's scope",
  }),
  site_ids: z.array(id()).min(1).max(1000).optional().openapi({
    description: "Every device of these sites (each must be in the caller's scope)",
  }),
  all_devices: z.boolean().optional().openapi({
    description: "true: every device in the caller's scope",
  }),
  online_only: z.boolean().default(false).openapi({
    description:
      "Only devices whose presence is online get the script; the others are reported Skipped",
  }),
  run_mode: z.enum(["system", "current_user"]).default("system"),
  variable_values: z.record(z.string(), z.unknown()).optional(),
}).openapi("QuickRunBody");

/** Registers the routes. */
export function registerQuickRunRoutes(
  ctx: PluginContext,
  d: {
    runner: QuickRunner;
    signer: CodeSigner;
    dispatcher: Dispatcher;
    inventory: InventoryService;
    filters: FilterService;
  },
): void {
  const { sql } = ctx;
  const cols = sql.unsafe(Dispatcher.columns);

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/scripts/quick_run",
      summary: "Run an assembly on devices now",
      description:
        "Targets: hostnames, device_guids, a saved filter (filter_id), sites (site_ids) or " +
        "every device in the caller's scope (all_devices), combined; filters, sites and " +
        "all_devices are resolved on the server in the caller's scope, and their revoked " +
        "devices are left out. Each result carries the device's presence; online_only " +
        "skips devices that are not online.",
      middleware: [requireRole("User")] as const,
      request: {
        body: { required: true, content: { "application/json": { schema: QuickRunBody } } },
      },
      responses: {
        200: json(
          z.object({
            job_id: z.string(),
            counts: z.object({
              running: z.number(),
              pending: z.number(),
              skipped: z.number(),
              failed: z.number(),
            }),
            results: z.array(z.object({
              hostname: z.string(),
              device_guid: z.string(),
              activity_id: z.number().nullable(),
              job_id: z.number().nullable(),
              status: z.enum(["Running", "Pending", "Skipped", "Failed"]),
              presence: z.enum(["online", "offline", "overdue"]),
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
      const fleet = body.filter_id !== undefined || body.site_ids !== undefined ||
        body.all_devices === true;
      if (!hostnames.length && !guidsIn.length && !fleet) {
        throw badRequest(
          "missing_hostnames",
          "Missing hostnames[] (or device_guids, filter_id, site_ids, all_devices)",
        );
      }
      // Unknown and out-of-scope targets are reported alike, so names cannot be probed.
      const outOfScope: string[] = [];
      const devices = new Map<string, TargetDevice>();
      const named: string[] = [];
      if (hostnames.length || guidsIn.length) {
        const rows = await d.inventory.targets({ guids: guidsIn, hostnames });
        const byHost = new Map(rows.map((r) => [r.hostname.toLowerCase(), r]));
        const byGuid = new Map(rows.map((r) => [r.guid, r]));
        for (
          const [name, r] of [
            ...hostnames.map((h) => [h, byHost.get(h.toLowerCase())] as const),
            ...guidsIn.map((g) => [g, byGuid.get(g.toUpperCase())] as const),
          ]
        ) {
          if (!r || !canSeeSite(p, r.site_id)) outOfScope.push(name);
          else {
            devices.set(r.guid, r);
            named.push(r.guid);
          }
        }
      }
      for (const siteId of body.site_ids ?? []) {
        if (!canSeeSite(p, siteId)) outOfScope.push(`site ${siteId}`);
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
      // Fleet-wide targets are resolved here, in the caller's scope; of those, devices
      // that cannot run anything (revoked, decommissioned) are left out, not refused.
      const wide: string[] = [];
      if (body.site_ids !== undefined || body.all_devices === true) {
        const scope = { principal: p, siteIds: body.all_devices ? undefined : body.site_ids };
        for (const r of await d.inventory.targets({ scope })) {
          if (!RUNNABLE.has(r.status)) continue;
          devices.set(r.guid, r);
          wide.push(r.guid);
        }
      }
      if (body.filter_id !== undefined) {
        const matched = (await d.filters.resolveById(body.filter_id, p)).map((r) => r.guid);
        const unknown = matched.filter((g) => !devices.has(g));
        for (const r of unknown.length ? await d.inventory.targets({ guids: unknown }) : []) {
          devices.set(r.guid, r);
        }
        wide.push(...matched.filter((g) => RUNNABLE.has(devices.get(g)?.status ?? "")));
      }
      const guids = [...new Set([...named, ...wide])];
      if (fleet && guids.length > MAX_TARGETS) {
        throw badRequest("too_many_targets", `a quick run reaches at most ${MAX_TARGETS} devices`);
      }
      if (!guids.length) {
        throw badRequest("no_devices_targeted", "the filter, sites or scope hold no devices");
      }
      const result = await d.runner.runOn([...devices.values()], {
        assemblyGuid: body.assembly_guid,
        deviceGuids: guids,
        variableValues: body.variable_values,
        runMode: body.run_mode,
        requestedBy: p.name,
        onlineOnly: body.online_only,
      });
      await ctx.audit(c, {
        action: "scripts.quick_run",
        target: body.assembly_guid,
        details: {
          job_id: result.jobId,
          ...(fleet
            ? {
              filter_id: body.filter_id,
              site_ids: body.site_ids,
              all_devices: body.all_devices,
              online_only: body.online_only,
            }
            : {}),
          target_count: result.targets.length,
          // A fleet-wide run names its selectors; the list of hostnames would be the fleet.
          ...(result.targets.length <= 1000
            ? { targets: result.targets.map((t) => t.hostname) }
            : {}),
        },
      });
      const counts = { running: 0, pending: 0, skipped: 0, failed: 0 };
      const key = {
        Running: "running",
        Pending: "pending",
        Skipped: "skipped",
        Failed: "failed",
      } as const;
      for (const t of result.targets) counts[key[t.status]]++;
      return c.json({
        job_id: result.jobId,
        counts,
        results: result.targets.map((t) => ({
          hostname: t.hostname,
          device_guid: t.deviceGuid,
          activity_id: t.activityId ? Number(t.activityId) : null,
          job_id: t.activityId ? Number(t.activityId) : null,
          status: t.status,
          presence: t.presence,
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

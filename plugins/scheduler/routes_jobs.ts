/**
 * Routes: scheduled jobs (upstream §4) — CRUD, toggle, rerun, runs, per-device results.
 *
 * @module
 */
import { bigIdParam, intParam, MAX_INT8_SAFE } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { canSeeSite, type Principal, principalOf, requireRole } from "../../core/auth.ts";
import { badRequest, conflict, HttpError, notFound } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import type { AssembliesService } from "../assemblies/mod.ts";
import type { FilterService } from "../inventory/mod.ts";
import {
  canSeeJob,
  checkSchedule,
  type Counts,
  emptyCounts,
  expirationText,
  JobBody,
  type JobInput,
  jobJson,
  type JobRow,
  parseStart,
  type StoredTarget,
} from "./jobs.ts";
import { errorsWithConflict, json } from "./openapi.ts";
import type { RunEngine } from "./runs.ts";

const errors = errorsWithConflict;
const Job = z.record(z.string(), z.unknown()).openapi("ScheduledJob");
const IdParam = z.object({ id: bigIdParam() });

interface OccRow {
  job_id: string | number;
  id: string | number;
  scheduled_ts: Date;
  status: string;
}

/** Registers the routes. */
export function registerJobRoutes(
  ctx: PluginContext,
  d: { runs: RunEngine; filters: FilterService; assemblies: AssembliesService },
): void {
  const { sql, clock } = ctx;

  async function lastOccurrences(ids: number[]) {
    const out = new Map<number, { scheduled_ts: Date; status: string; counts: Counts }>();
    if (!ids.length) return out;
    const occs = await sql<OccRow[]>`
      select distinct on (job_id) job_id, id, scheduled_ts, status from scheduled_job_occurrences
      where job_id = any(${ids}::bigint[]) order by job_id, scheduled_ts desc, id desc`;
    const counts = await sql<{ occurrence_id: string; status: string; n: number }[]>`
      select occurrence_id, status, count(*)::int as n from scheduled_job_runs
      where occurrence_id = any(${occs.map((o) => Number(o.id))}::bigint[])
      group by occurrence_id, status`;
    for (const o of occs) {
      const c = emptyCounts();
      for (const r of counts) {
        if (Number(r.occurrence_id) !== Number(o.id)) continue;
        c.total_targets += r.n;
        if (r.status === "Pending") c.pending += r.n;
        else if (r.status === "Dispatching" || r.status === "Running") c.running += r.n;
        else if (r.status === "Success") c.success += r.n;
        else if (r.status === "Failed") c.failed += r.n;
        else if (r.status === "Expired") c.expired += r.n;
        else if (r.status === "Timed Out") c.timed_out += r.n;
        else if (r.status === "Skipped") c.skipped += r.n;
      }
      out.set(Number(o.job_id), { scheduled_ts: o.scheduled_ts, status: o.status, counts: c });
    }
    return out;
  }

  async function visibleJob(p: Principal, id: number): Promise<JobRow> {
    const [job] = await sql<JobRow[]>`select * from scheduled_jobs where id = ${id}`;
    if (!job || !canSeeJob(p, job)) throw notFound(`no scheduled job ${id}`);
    return job;
  }

  /** Checks targets and components against scope; returns stored targets. */
  async function normalize(p: Principal, input: JobInput): Promise<StoredTarget[]> {
    checkSchedule(input);
    for (const [i, comp] of input.components.entries()) {
      const rec = d.assemblies.get(comp.assembly_guid);
      if (!rec) {
        throw badRequest(
          "assembly_not_found",
          `components[${i}]: no assembly ${comp.assembly_guid}`,
        );
      }
      if (rec.assembly_kind !== "script") {
        throw badRequest(
          "unsupported_assembly_kind",
          `components[${i}]: only scripts can be scheduled`,
        );
      }
    }
    const hostnames: string[] = [];
    const guids: string[] = [];
    const stored: StoredTarget[] = [];
    const outOfScopeSites: string[] = [];
    for (const t of input.targets) {
      if (typeof t === "string") hostnames.push(t);
      else if (t.kind === "device") {
        if (t.device_guid) guids.push(t.device_guid);
        else if (t.hostname) hostnames.push(t.hostname);
        else throw badRequest("invalid_target", "a device target needs device_guid or hostname");
      } else if (t.kind === "filter") {
        await d.filters.get(t.filter_id, p); // 404 when missing or out of scope
        stored.push({ kind: "filter", filter_id: t.filter_id });
      } else if (t.kind === "sites") {
        for (const id of t.site_ids) if (!canSeeSite(p, id)) outOfScopeSites.push(`site ${id}`);
        stored.push({ kind: "sites", site_ids: [...new Set(t.site_ids)] });
      } else stored.push({ kind: "all_devices" });
    }
    if (outOfScopeSites.length) {
      throw new HttpError(
        403,
        "out_of_scope_hostnames",
        `not allowed on: ${outOfScopeSites.join(", ")}`,
        { out_of_scope_hostnames: outOfScopeSites },
      );
    }
    if (hostnames.length || guids.length) {
      const rows = await sql<{ guid: string; hostname: string; site_id: number | null }[]>`
        select guid::text, hostname, site_id from devices
        where lower(hostname) = any(${hostnames.map((h) => h.toLowerCase())}::text[])
           or guid::text = any(${guids.map((g) => g.toLowerCase())}::text[])`;
      const byHost = new Map(rows.map((r) => [r.hostname.toLowerCase(), r]));
      const byGuid = new Map(rows.map((r) => [r.guid.toLowerCase(), r]));
      const bad: string[] = [];
      const seen = new Set<string>();
      for (const key of [...hostnames.map((h) => ["h", h]), ...guids.map((g) => ["g", g])]) {
        const r = key[0] === "h"
          ? byHost.get(key[1]!.toLowerCase())
          : byGuid.get(key[1]!.toLowerCase());
        if (!r || !canSeeSite(p, r.site_id)) {
          bad.push(key[1]!);
          continue;
        }
        if (seen.has(r.guid)) continue;
        seen.add(r.guid);
        stored.push({
          kind: "device",
          device_guid: r.guid.toUpperCase(),
          hostname: r.hostname,
          site_id: r.site_id,
        });
      }
      if (bad.length) {
        throw new HttpError(403, "out_of_scope_hostnames", `not allowed on: ${bad.join(", ")}`, {
          out_of_scope_hostnames: bad,
        });
      }
    }
    return stored;
  }

  const list = createRoute({
    method: "get",
    path: "/api/scheduled_jobs",
    summary: "Scheduled jobs with their last and next run",
    middleware: [requireRole("User")] as const,
    responses: { 200: json(z.object({ jobs: z.array(Job) }), "Jobs"), ...errors },
  });
  ctx.http.openapi(list, async (c) => {
    const p = await principalOf(c);
    const rows = (await sql<JobRow[]>`select * from scheduled_jobs order by id`)
      .filter((j) => canSeeJob(p, j));
    const last = await lastOccurrences(rows.map((r) => Number(r.id)));
    const now = clock.now();
    return c.json({ jobs: rows.map((j) => jobJson(j, now, last.get(Number(j.id)))) }, 200);
  });

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/scheduled_jobs",
      summary: "Create a scheduled job",
      middleware: [requireRole("User")] as const,
      request: { body: { required: true, content: { "application/json": { schema: JobBody } } } },
      responses: { 201: json(Job, "Created"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const input = c.req.valid("json");
      const targets = await normalize(p, input);
      const now = clock.now();
      const start = input.schedule.type === "immediately"
        ? parseStart(undefined, now)
        : parseStart(input.schedule.start, now);
      const [row] = await sql<JobRow[]>`
        insert into scheduled_jobs (name, components, targets, schedule_type, start_ts, cron, timezone,
          duration_stop_enabled, expiration, execution_context, credential_id, use_service_account,
          job_kind, enabled, maintenance_window_only, allowed_site_ids, created_by, created_at, updated_at)
        values (${input.name}, ${sql.json(input.components as never)}, ${
        sql.json(targets as never)
      },
          ${input.schedule.type}, ${new Date(start)}, ${input.schedule.cron ?? null},
          ${input.schedule.timezone ?? "UTC"}, ${input.duration?.stopAfterEnabled ?? false},
          ${expirationText(input)}, ${input.execution_context}, ${input.credential_id ?? null},
          ${input.use_service_account}, ${input.job_kind}, ${input.enabled},
          ${input.maintenance_window_only}, ${p.sites === "all" ? null : [...p.sites]},
          ${p.name}, ${new Date(now)}, ${new Date(now)})
        returning *`;
      await ctx.audit(c, {
        action: "scheduled_jobs.create",
        target: String(row!.id),
        details: { name: input.name },
      });
      // "immediately" should not wait for the next tick.
      if (input.schedule.type === "immediately" && input.enabled) {
        await d.runs.openOccurrence(row!, start, false);
        d.runs.kick();
      }
      return c.json(jobJson(row!, now), 201);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/scheduled_jobs/{id}",
      summary: "One scheduled job",
      middleware: [requireRole("User")] as const,
      request: { params: IdParam },
      responses: { 200: json(Job, "Job"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const job = await visibleJob(p, c.req.valid("param").id);
      const last = await lastOccurrences([Number(job.id)]);
      return c.json(jobJson(job, clock.now(), last.get(Number(job.id))), 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "put",
      path: "/api/scheduled_jobs/{id}",
      summary: "Replace a scheduled job's definition",
      middleware: [requireRole("User")] as const,
      request: {
        params: IdParam,
        body: { required: true, content: { "application/json": { schema: JobBody } } },
      },
      responses: { 200: json(Job, "Updated"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      const old = await visibleJob(p, id);
      const input = c.req.valid("json");
      const targets = await normalize(p, input);
      const now = clock.now();
      const start = input.schedule.type === "immediately"
        ? old.start_ts.getTime()
        : parseStart(input.schedule.start, now);
      const scheduleChanged = start !== old.start_ts.getTime() ||
        input.schedule.type !== old.schedule_type || (input.schedule.cron ?? null) !== old.cron;
      const [row] = await sql<JobRow[]>`
        update scheduled_jobs set name = ${input.name}, components = ${
        sql.json(input.components as never)
      },
          targets = ${sql.json(targets as never)}, schedule_type = ${input.schedule.type},
          start_ts = ${new Date(start)}, cron = ${input.schedule.cron ?? null},
          timezone = ${input.schedule.timezone ?? "UTC"},
          duration_stop_enabled = ${input.duration?.stopAfterEnabled ?? false},
          expiration = ${expirationText(input)}, execution_context = ${input.execution_context},
          credential_id = ${
        input.credential_id ?? null
      }, use_service_account = ${input.use_service_account},
          job_kind = ${input.job_kind}, enabled = ${input.enabled},
          maintenance_window_only = ${input.maintenance_window_only},
          allowed_site_ids = ${p.sites === "all" ? old.allowed_site_ids : [...p.sites]},
          last_occurrence_ts = ${scheduleChanged ? null : old.last_occurrence_ts},
          updated_at = ${new Date(now)}
        where id = ${id} returning *`;
      await ctx.audit(c, { action: "scheduled_jobs.update", target: String(id) });
      const last = await lastOccurrences([id]);
      return c.json(jobJson(row!, now, last.get(id)), 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "delete",
      path: "/api/scheduled_jobs/{id}",
      summary: "Delete a scheduled job and its runs",
      middleware: [requireRole("User")] as const,
      request: { params: IdParam },
      responses: { 200: json(z.object({ status: z.string() }), "Deleted"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      await visibleJob(p, id);
      await sql`delete from scheduled_jobs where id = ${id}`;
      await ctx.audit(c, { action: "scheduled_jobs.delete", target: String(id) });
      return c.json({ status: "ok" }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/scheduled_jobs/{id}/toggle",
      summary: "Enable or disable a job (flips it without a body)",
      middleware: [requireRole("User")] as const,
      request: {
        params: IdParam,
        body: {
          required: false,
          content: {
            "application/json": { schema: z.object({ enabled: z.boolean().optional() }) },
          },
        },
      },
      responses: { 200: json(Job, "Toggled"), ...errors },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      const job = await visibleJob(p, id);
      // Without a body the validated value is {}: flip.
      const enabled = c.req.valid("json").enabled ?? !job.enabled;
      const [row] = await sql<JobRow[]>`update scheduled_jobs set enabled = ${enabled},
        updated_at = ${new Date(clock.now())} where id = ${id} returning *`;
      await ctx.audit(c, {
        action: "scheduled_jobs.toggle",
        target: String(id),
        details: { enabled },
      });
      return c.json(jobJson(row!, clock.now()), 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/scheduled_jobs/{id}/rerun",
      summary: "Start a new occurrence now",
      middleware: [requireRole("User")] as const,
      request: { params: IdParam },
      responses: {
        200: json(z.object({ status: z.string(), occurrence: z.number() }), "Started"),
        ...errors,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      const job = await visibleJob(p, id);
      const [open] =
        await sql`select 1 from scheduled_job_occurrences where job_id = ${id} and status = 'Running'`;
      if (open) throw conflict("occurrence_running", "the current occurrence has not finished yet");
      const now = clock.now();
      const occ = await d.runs.openOccurrence(job, now, true);
      if (occ === null) throw conflict("occurrence_running", "an occurrence was just started");
      await ctx.audit(c, { action: "scheduled_jobs.rerun", target: String(id) });
      d.runs.kick();
      return c.json({ status: "ok", occurrence: Math.floor(now / 1000) }, 200);
    },
  );

  const Run = z.record(z.string(), z.unknown()).openapi("ScheduledJobRun");
  const sec = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);
  interface RunRow {
    id: string;
    scheduled_ts: Date;
    started_ts: Date | null;
    finished_ts: Date | null;
    status: string;
    error: string | null;
    hostname: string;
    device_guid: string | null;
    site_id: number | null;
    activity_id: string | null;
    component_index: number;
    resolved_from_filter_id: number | null;
    dispatch_count: number;
    status_query_count: number;
    lease_owner: string | null;
  }
  const runJson = (r: RunRow) => ({
    id: Number(r.id),
    scheduled_ts: sec(r.scheduled_ts),
    started_ts: sec(r.started_ts),
    finished_ts: sec(r.finished_ts),
    status: r.status,
    error: r.error,
    target_hostname: r.hostname,
    hostname: r.hostname,
    device_guid: r.device_guid?.toUpperCase() ?? null,
    site_id: r.site_id,
    activity_id: r.activity_id === null ? null : Number(r.activity_id),
    component_index: r.component_index,
    resolved_from_filter_id: r.resolved_from_filter_id,
    dispatch_count: r.dispatch_count,
    status_query_count: r.status_query_count,
  });

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/scheduled_jobs/{id}/runs",
      summary: "Runs of a job, newest first, with its occurrences",
      middleware: [requireRole("User")] as const,
      request: {
        params: IdParam,
        query: z.object({ limit: intParam({ min: 1, max: 5000 }).default(500) }),
      },
      responses: {
        200: json(z.object({ runs: z.array(Run), occurrences: z.array(Run) }), "Runs"),
        ...errors,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      await visibleJob(p, id);
      const runs = await sql<RunRow[]>`
        select id, scheduled_ts, started_ts, finished_ts, status, error, hostname, device_guid::text,
          site_id, activity_id, component_index, resolved_from_filter_id, dispatch_count,
          status_query_count, lease_owner
        from scheduled_job_runs where job_id = ${id} order by scheduled_ts desc, id desc
        limit ${c.req.valid("query").limit}`;
      const occs = await sql<
        {
          id: string;
          scheduled_ts: Date;
          status: string;
          skip_reason: string | null;
          manual: boolean;
          finished_at: Date | null;
        }[]
      >`select id, scheduled_ts, status, skip_reason, manual, finished_at from scheduled_job_occurrences
        where job_id = ${id} order by scheduled_ts desc limit 200`;
      return c.json({
        runs: runs.map(runJson),
        occurrences: occs.map((o) => ({
          id: Number(o.id),
          scheduled_ts: sec(o.scheduled_ts),
          status: o.status,
          skip_reason: o.skip_reason,
          manual: o.manual,
          finished_ts: sec(o.finished_at),
        })),
      }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "delete",
      path: "/api/scheduled_jobs/{id}/runs",
      summary: "Clear a job's finished history",
      middleware: [requireRole("User")] as const,
      request: { params: IdParam },
      responses: {
        200: json(z.object({ status: z.string(), deleted: z.number() }), "Cleared"),
        ...errors,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      await visibleJob(p, id);
      const res =
        await sql`delete from scheduled_job_occurrences where job_id = ${id} and status <> 'Running'`;
      await ctx.audit(c, { action: "scheduled_jobs.runs.clear", target: String(id) });
      return c.json({ status: "ok", deleted: res.count }, 200);
    },
  );

  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/scheduled_jobs/{id}/devices",
      summary: "Per-device results of one occurrence (default: the latest)",
      middleware: [requireRole("User")] as const,
      request: {
        params: IdParam,
        query: z.object({ occurrence: intParam({ min: 0, max: MAX_INT8_SAFE }).optional() }),
      },
      responses: {
        200: json(
          z.object({ occurrence: z.number().nullable(), devices: z.array(Run) }),
          "Devices",
        ),
        ...errors,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { id } = c.req.valid("param");
      await visibleJob(p, id);
      const q = c.req.valid("query").occurrence;
      const [occ] = q === undefined
        ? await sql<
          { id: string; scheduled_ts: Date }[]
        >`select id, scheduled_ts from scheduled_job_occurrences
            where job_id = ${id} order by scheduled_ts desc limit 1`
        : await sql<
          { id: string; scheduled_ts: Date }[]
        >`select id, scheduled_ts from scheduled_job_occurrences
            where job_id = ${id} and scheduled_ts >= ${new Date(
          q * 1000,
        )} and scheduled_ts < ${new Date(q * 1000 + 1000)}
            order by id desc limit 1`;
      if (!occ) return c.json({ occurrence: null, devices: [] }, 200);
      const runs = await sql<(RunRow & { stdout: string | null; stderr: string | null })[]>`
        select r.id, r.scheduled_ts, r.started_ts, r.finished_ts, r.status, r.error, r.hostname,
          r.device_guid::text, r.site_id, r.activity_id, r.component_index, r.resolved_from_filter_id,
          r.dispatch_count, r.status_query_count, r.lease_owner, a.stdout, a.stderr
        from scheduled_job_runs r left join activity_history a on a.id = r.activity_id
        where r.occurrence_id = ${occ.id} order by lower(r.hostname), r.component_index`;
      return c.json({
        occurrence: sec(occ.scheduled_ts),
        devices: runs.map((r) => ({ ...runJson(r), stdout: r.stdout, stderr: r.stderr })),
      }, 200);
    },
  );
}

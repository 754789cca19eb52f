/**
 * Scheduled job definitions: the request body (upstream's shape plus `cron`,
 * `timezone` and `maintenance_window_only`), its normalisation, and the row ↔ API
 * shaping including `next_run_ts`, `last_status` and `result_counts`.
 *
 * @module
 */
import { bigId, id, idParam } from "../../core/fields.ts";
import { z } from "@hono/zod-openapi";
import { canSeeSite, type Principal } from "../../core/auth.ts";
import { badRequest } from "../../core/errors.ts";
import {
  cronProblem,
  floorMinute,
  nextRun,
  type Schedule,
  SCHEDULE_TYPES,
  validExpiration,
} from "./schedule.ts";

const Component = z.object({
  type: z.enum(["script"]).default("script"),
  assembly_guid: z.string().min(1).max(100),
  variable_values: z.record(z.string(), z.unknown()).optional(),
  name: z.string().max(200).optional(),
}).passthrough();

const Target = z.union([
  z.string().min(1).max(255),
  z.object({
    kind: z.literal("device"),
    device_guid: z.string().max(64).optional(),
    hostname: z.string().max(255).optional(),
  }).passthrough(),
  z.object({ kind: z.literal("filter"), filter_id: idParam() })
    .passthrough(),
  z.object({ kind: z.literal("sites"), site_ids: z.array(id()).min(1).max(1000) }).passthrough()
    .openapi({ description: "Every device of these sites, resolved at each occurrence" }),
  z.object({ kind: z.literal("all_devices") }).passthrough()
    .openapi({ description: "Every device in the job's scope, resolved at each occurrence" }),
]);

/** The body of POST/PUT /api/scheduled_jobs. */
export const JobBody = z.object({
  name: z.string().trim().min(1).max(200),
  components: z.array(Component).min(1).max(20),
  targets: z.array(Target).min(1).max(10_000),
  schedule: z.object({
    type: z.enum(SCHEDULE_TYPES),
    start: z.union([z.number(), z.string().max(64)]).optional(),
    cron: z.string().max(200).optional(),
    timezone: z.string().max(64).optional(),
  }),
  duration: z.object({
    stopAfterEnabled: z.boolean().optional(),
    expiration: z.union([z.string().max(20), z.number().int().min(0)]).optional(),
  }).optional(),
  execution_context: z.enum(["system", "current_user"]).default("system"),
  credential_id: bigId().nullable().optional(),
  use_service_account: z.boolean().default(true),
  enabled: z.boolean().default(true),
  job_kind: z.enum(["automation", "onboarding", "agent_maintenance", "patch_install"]).default(
    "automation",
  ),
  maintenance_window_only: z.boolean().default(false),
}).openapi("ScheduledJobBody");
export type JobInput = z.infer<typeof JobBody>;

/** A stored target. */
export type StoredTarget =
  | { kind: "device"; device_guid: string; hostname: string; site_id: number | null }
  | { kind: "filter"; filter_id: number }
  | { kind: "sites"; site_ids: number[] }
  | { kind: "all_devices" };

/** A job row. */
export interface JobRow {
  id: string | number;
  name: string;
  components: Array<
    { type: string; assembly_guid: string; variable_values?: Record<string, unknown> }
  >;
  targets: StoredTarget[];
  schedule_type: Schedule["type"];
  start_ts: Date;
  cron: string | null;
  timezone: string;
  duration_stop_enabled: boolean;
  expiration: string;
  execution_context: string;
  credential_id: number | null;
  use_service_account: boolean;
  job_kind: string;
  enabled: boolean;
  maintenance_window_only: boolean;
  allowed_site_ids: number[] | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  last_occurrence_ts: Date | null;
}

/** Parses `start` (epoch seconds, epoch ms or ISO text) into epoch ms. */
export function parseStart(v: number | string | undefined, now: number): number {
  if (v === undefined || v === "") return floorMinute(now);
  if (typeof v === "number") return floorMinute(v < 1e11 ? v * 1000 : v);
  const t = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(t)) {
    throw badRequest("invalid_schedule", "schedule.start: epoch seconds or an ISO 8601 time", [
      { field: "schedule.start", message: "epoch seconds or an ISO 8601 time" },
    ]);
  }
  return floorMinute(t);
}

/** Checks the schedule fields beyond their shape. */
export function checkSchedule(input: JobInput): void {
  const s = input.schedule;
  if (s.type === "cron") {
    if (!s.cron) {
      throw badRequest("invalid_schedule", "schedule.cron is required for type cron", [
        { field: "schedule.cron", message: "required" },
      ]);
    }
    const problem = cronProblem(s.cron, s.timezone ?? "UTC");
    if (problem) {
      throw badRequest("invalid_schedule", `schedule.cron: ${problem}`, [
        { field: "schedule.cron", message: problem },
      ]);
    }
  } else if (s.timezone && cronProblem("0 0 * * *", s.timezone)) {
    throw badRequest("invalid_schedule", `unknown time zone ${s.timezone}`, [
      { field: "schedule.timezone", message: "an IANA time zone" },
    ]);
  }
  const e = input.duration?.expiration;
  if (typeof e === "string" && !validExpiration(e)) {
    throw badRequest("invalid_expiration", "duration.expiration: Nm, Nh, Nd or no_expire", [
      { field: "duration.expiration", message: "Nm, Nh, Nd or no_expire" },
    ]);
  }
}

/** Expiration as stored text. */
export function expirationText(input: JobInput): string {
  const e = input.duration?.expiration;
  if (e === undefined) return "no_expire";
  return typeof e === "number" ? `${e}m` : e.trim().toLowerCase();
}

/** True when `p` may see and change the job. */
export function canSeeJob(p: Principal, job: Pick<JobRow, "allowed_site_ids">): boolean {
  if (p.sites === "all") return true;
  if (!job.allowed_site_ids) return false;
  return job.allowed_site_ids.every((s) => canSeeSite(p, s));
}

/** The job's schedule for the arithmetic. */
export const scheduleOf = (j: JobRow): Schedule => ({
  type: j.schedule_type,
  start: j.start_ts.getTime(),
  cron: j.cron,
  timezone: j.timezone,
});

/** Result counts of one occurrence. */
export interface Counts {
  pending: number;
  running: number;
  success: number;
  failed: number;
  expired: number;
  timed_out: number;
  skipped: number;
  total_targets: number;
}

/** Per-status counts of an occurrence with nothing counted yet. */
export function emptyCounts(): Counts {
  return {
    pending: 0,
    running: 0,
    success: 0,
    failed: 0,
    expired: 0,
    timed_out: 0,
    skipped: 0,
    total_targets: 0,
  };
}

/** The status a list row shows: Running > Timed Out > Expired > Failed > Success. */
export function lastStatus(c: Counts | undefined, skipped: boolean): string | null {
  if (skipped) return "Skipped";
  if (!c || !c.total_targets) return null;
  if (c.running || c.pending) return "Running";
  if (c.timed_out) return "Timed Out";
  if (c.expired) return "Expired";
  if (c.failed) return "Failed";
  return "Success";
}

const sec = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

/** API shape of a job. */
export function jobJson(
  j: JobRow,
  now: number,
  last?: { scheduled_ts: Date; status: string; counts: Counts },
) {
  const schedule = scheduleOf(j);
  const open = last?.status === "Running";
  const next = j.enabled && !open
    ? nextRun(schedule, j.last_occurrence_ts?.getTime() ?? null, now)
    : null;
  return {
    id: Number(j.id),
    name: j.name,
    components: j.components,
    targets: j.targets,
    schedule: {
      type: j.schedule_type,
      start: sec(j.start_ts),
      cron: j.cron,
      timezone: j.timezone,
    },
    schedule_type: j.schedule_type,
    start_ts: sec(j.start_ts),
    duration: { stopAfterEnabled: j.duration_stop_enabled, expiration: j.expiration },
    execution_context: j.execution_context,
    credential_id: j.credential_id,
    use_service_account: j.use_service_account,
    job_kind: j.job_kind,
    enabled: j.enabled,
    maintenance_window_only: j.maintenance_window_only,
    created_by: j.created_by,
    created_at: sec(j.created_at),
    updated_at: sec(j.updated_at),
    last_run_ts: last ? sec(last.scheduled_ts) : null,
    last_status: last ? lastStatus(last.counts, last.status === "Skipped") : null,
    next_run_ts: next === null ? null : Math.floor(next / 1000),
    result_counts: last?.counts ?? emptyCounts(),
  };
}

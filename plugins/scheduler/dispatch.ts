/**
 * Turning an assembly into a signed `quick_job_run`, keeping the activity history, and
 * taking `quick_job_progress` / `quick_job_result` back from agents. Quick runs and
 * scheduled runs share all of it.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import { badRequest, HttpError } from "../../core/errors.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { Logger } from "../../core/log.ts";
import type { CredentialService } from "../aegis/mod.ts";
import type { AssembliesService } from "../assemblies/mod.ts";
import type { AgentChannel, AgentRef } from "../realtime/mod.ts";
import { b64, type CodeSigner } from "./signing.ts";
import {
  checkVariables,
  environmentOf,
  substitutePowershell,
  toLf,
  type VariableDef,
} from "./variables.ts";

/** Activity states. */
export const TERMINAL = ["Success", "Failed", "Expired", "Timed Out", "Cancelled"] as const;

/** A script ready to send: signed bytes and the fixed parts of the payload. */
export interface PreparedScript {
  assemblyGuid: string;
  scriptName: string;
  scriptType: string;
  timeoutSeconds: number;
  /** Payload fields shared by every target (without job_id, target_hostname, context). */
  base: Record<string, unknown>;
}

/** Context carried to the agent and back. */
export interface RunContext {
  scheduled_job_id?: number;
  scheduled_job_run_id?: number;
  scheduled_ts?: number;
  quick_job_id?: string;
}

/** Options of {@link Dispatcher}. */
export interface DispatcherOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  assemblies: AssembliesService;
  signer: CodeSigner;
  channel: AgentChannel;
  credentials?: CredentialService;
  /** Extra time past a script's timeout before it is marked Timed Out. */
  graceMs: number;
  /** How long realtime holds a message for an offline agent. */
  holdMs: number;
}

/** Shape of an activity row as the API shows it. */
export interface ActivityRow {
  id: string | number;
  device_guid: string | null;
  hostname: string;
  site_id: number | null;
  assembly_guid: string | null;
  script_name: string;
  script_type: string | null;
  run_mode: string;
  requested_by: string;
  quick_job_id: string | null;
  status: string;
  stdout: string;
  stderr: string;
  exit_code: number | null;
  queue_lane: string | null;
  activity_kind: string;
  metadata: Record<string, unknown>;
  ran_at: Date;
  started_at: Date | null;
  updated_at: Date;
  finished_at: Date | null;
  deadline_at: Date;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const epoch = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

/** API shape of an activity row. */
export function activityJson(r: ActivityRow) {
  return {
    id: Number(r.id),
    job_id: Number(r.id),
    device_guid: r.device_guid ? r.device_guid.toUpperCase() : null,
    hostname: r.hostname,
    site_id: r.site_id,
    assembly_guid: r.assembly_guid,
    script_name: r.script_name,
    script_type: r.script_type,
    run_mode: r.run_mode,
    requested_by: r.requested_by,
    quick_job_id: r.quick_job_id,
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    exit_code: r.exit_code,
    queue_lane: r.queue_lane,
    activity_kind: r.activity_kind,
    metadata: r.metadata,
    ran_at: epoch(r.ran_at),
    started_at: epoch(r.started_at),
    updated_at: epoch(r.updated_at),
    finished_at: epoch(r.finished_at),
    ran_at_iso: iso(r.ran_at),
  };
}

/** What agents send back. */
export const QuickJobResult = z.object({
  job_id: z.union([z.string().max(40), z.number().int()]),
  status: z.string().max(40),
  stdout: z.string().max(4_000_000).optional(),
  stderr: z.string().max(4_000_000).optional(),
  exit_code: z.number().int().nullable().optional(),
  context: z.record(z.string(), z.unknown()).optional(),
});
/** Progress agents send while a script runs. */
export const QuickJobProgress = QuickJobResult.extend({
  append_output: z.string().max(1_000_000).optional(),
  queue_lane: z.string().max(64).optional(),
  activity_kind: z.string().max(64).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
}).partial({ status: true });

/**
 * An agent's answer to `quick_job_status` for a job id it has never seen (the script
 * frame was lost before it reached the agent): the engine sends the script now.
 */
export const QuickJobUnknown = z.object({
  job_id: z.union([z.string().min(1).max(40), z.number().int()]),
}).strict();

/** Frame id of the `quick_job_status` query of an activity (an agent's error echoes it). */
export const statusFrameId = (activityId: number) => `quick_job_status:${activityId}`;

/** The activity id from a `quick_job_status` frame id, or null. */
export function activityOfStatusFrame(id: string | undefined): number | null {
  const m = /^quick_job_status:(\d{1,18})$/.exec(id ?? "");
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** Normalises an agent's status word. */
export function normalizeStatus(s: string | undefined): string {
  const v = (s ?? "").trim().toLowerCase().replace(/[\s_-]+/g, " ");
  if (["success", "succeeded", "ok", "completed", "complete"].includes(v)) return "Success";
  if (["running", "started", "in progress"].includes(v)) return "Running";
  if (["timed out", "timeout"].includes(v)) return "Timed Out";
  return "Failed";
}

const ACTIVITY_COLUMNS =
  `id, device_guid, hostname, site_id, assembly_guid, script_name, script_type,
  run_mode, requested_by, quick_job_id, status, stdout, stderr, exit_code, queue_lane, activity_kind,
  metadata, ran_at, started_at, updated_at, finished_at, deadline_at`;

interface PendingResult {
  guid: string;
  id: number;
  status: string;
  d: z.infer<typeof QuickJobResult>;
  done: (v: unknown) => void;
  fail: (e: unknown) => void;
}

/** Builds, signs and sends scripts; records activity; handles results. */
export class Dispatcher {
  /** Told how long handing a script to realtime took, and how it went (metrics). */
  onSent?: (status: string, seconds: number) => void;
  /** Told each result's lag: from its activity's creation to the result (metrics). */
  onResult?: (status: string, seconds: number) => void;

  /** Called after an activity changed (the plugin emits `device_activity_changed`). */
  onChange: (rows: ActivityRow[], change: string, source: string) => Promise<void> = () =>
    Promise.resolve();

  constructor(private readonly o: DispatcherOptions) {}

  /** Columns to select for {@link ActivityRow}. */
  static readonly columns = ACTIVITY_COLUMNS;

  /**
   * Resolves an assembly, checks and renders its variables, signs the exact script
   * bytes. Throws 400/404 for a bad assembly or variables.
   */
  async prepare(
    assemblyGuid: string,
    variableValues: Record<string, unknown> | undefined,
    runMode: string,
    credentialId?: number | null,
  ): Promise<PreparedScript> {
    const record = this.o.assemblies.get(assemblyGuid);
    if (!record) throw new HttpError(404, "assembly_not_found", `no assembly ${assemblyGuid}`);
    if (record.assembly_kind !== "script") {
      throw badRequest(
        "unsupported_assembly_kind",
        `only script assemblies can be run this way (this one is a ${record.assembly_kind})`,
      );
    }
    const { payload } = await this.o.assemblies.detail(assemblyGuid);
    if (typeof payload !== "string") {
      throw badRequest("unsupported_payload", "the assembly's payload is not script text");
    }
    const meta = record.metadata as {
      variables?: VariableDef[];
      timeout_seconds?: number;
      files?: unknown[];
    };
    const values = checkVariables(meta.variables ?? [], variableValues);
    const type = record.assembly_type ?? "bash";
    const environment = environmentOf(values);
    const variables: Array<{ name: string; type: string; value: unknown }> = [];
    for (const d of meta.variables ?? []) {
      if (!values.has(d.name)) continue;
      if ((d.type ?? "string") === "credential") {
        const cred = await this.#credential(Number(values.get(d.name)));
        const key = d.name.toUpperCase().replace(/[^A-Z0-9]/g, "_");
        environment[key] = String(cred.id);
        if (cred.username !== null) environment[`${key}_USERNAME`] = cred.username;
        if (cred.password !== null) environment[`${key}_PASSWORD`] = cred.password;
        values.set(d.name, cred.username ?? "");
        variables.push({ name: d.name, type: "credential", value: cred.id });
      } else {
        variables.push({ name: d.name, type: d.type ?? "string", value: values.get(d.name) });
      }
    }
    let text = toLf(payload);
    if (type === "powershell") text = substitutePowershell(text, values);
    const bytes = new TextEncoder().encode(text);
    const signed = await this.o.signer.sign(bytes);
    let admin: { admin_user: string | null; admin_pass: string | null } = {
      admin_user: null,
      admin_pass: null,
    };
    if (credentialId) {
      const cred = await this.#credential(credentialId);
      admin = { admin_user: cred.username, admin_pass: cred.password };
    }
    const timeoutSeconds = meta.timeout_seconds ?? 3600;
    return {
      assemblyGuid: record.assembly_guid,
      scriptName: record.display_name,
      scriptType: type,
      timeoutSeconds,
      base: {
        script_type: type,
        script_name: record.display_name,
        script_path: record.source_path ?? `${record.domain}/${record.assembly_guid}`,
        script_content: b64(bytes),
        script_encoding: "base64",
        environment,
        variables,
        timeout_seconds: timeoutSeconds,
        files: meta.files ?? [],
        run_mode: runMode,
        ...admin,
        signature: signed.signature,
        sig_alg: "ed25519",
        signing_key: signed.spki,
        signing_key_id: signed.kid,
      },
    };
  }

  async #credential(id: number) {
    if (!this.o.credentials) {
      throw badRequest("credentials_unavailable", "credentials are not available");
    }
    const cred = await this.o.credentials.open(id);
    if (!cred) throw badRequest("credential_not_found", `no credential ${id}`);
    return cred;
  }

  /**
   * The status query for a run whose script was sent before (a reclaimed lease): the
   * agent answers with its stored `quick_job_result`, a `quick_job_progress` (still
   * running) or `quick_job_unknown` (never received the script).
   */
  statusFrame(
    activityId: number,
    context: RunContext,
  ): { type: string; id: string; data: Record<string, unknown> } {
    return {
      type: "quick_job_status",
      id: statusFrameId(activityId),
      data: { job_id: String(activityId), context },
    };
  }

  /** The frame for one target. */
  frame(
    prepared: PreparedScript,
    activityId: number,
    hostname: string,
    context: RunContext,
  ): { type: string; id: string; data: Record<string, unknown> } {
    return {
      type: "quick_job_run",
      id: String(activityId),
      data: {
        ...prepared.base,
        job_id: String(activityId),
        target_hostname: hostname,
        context: {
          assembly_source: "assembly",
          assembly_guid: prepared.assemblyGuid,
          ...context,
        },
      },
    };
  }

  /** Inserts activity rows (one per target) in one statement; returns their ids in order. */
  async createActivities(
    prepared: PreparedScript,
    targets: Array<{ guid: string; hostname: string; siteId: number | null }>,
    opts: {
      runMode: string;
      requestedBy: string;
      quickJobId: string | null;
      status: string;
      /** Latest deadline (epoch ms), e.g. a job's stop-after limit. */
      deadline?: number | null;
      /**
       * The instance that will send the scripts (quick runs). Its activities count as
       * not delivered until {@link claimForSending} marks them; without an owner they
       * are marked at once (scheduled runs have their own leases).
       */
      owner?: string;
    },
  ): Promise<number[]> {
    if (!targets.length) return [];
    const now = this.o.clock.now();
    const deadline = new Date(
      Math.min(
        now + this.o.holdMs + prepared.timeoutSeconds * 1000 + this.o.graceMs,
        opts.deadline ?? Infinity,
      ),
    );
    const rows = await this.o.sql<{ id: string }[]>`
      insert into activity_history (device_guid, hostname, site_id, assembly_guid, script_name,
        script_type, run_mode, requested_by, quick_job_id, status, ran_at, updated_at, deadline_at,
        started_at, dispatch_owner, dispatched_at)
      select g::uuid, h, s, ${prepared.assemblyGuid}, ${prepared.scriptName}, ${prepared.scriptType},
        ${opts.runMode}, ${opts.requestedBy}, ${opts.quickJobId}, ${opts.status}, ${new Date(now)},
        ${new Date(now)}, ${deadline}, ${opts.status === "Running" ? new Date(now) : null},
        ${opts.owner ?? null}, ${opts.owner ? null : new Date(now)}
      from unnest(${targets.map((t) => t.guid)}::text[], ${targets.map((t) => t.hostname)}::text[],
        ${targets.map((t) => t.siteId)}::int[]) with ordinality as u(g, h, s, n)
      order by n
      returning id`;
    return rows.map((r) => Number(r.id));
  }

  /**
   * Marks activities as being sent, just before their scripts go out; returns the ids it
   * marked. An activity already declared undelivered (its sender was presumed dead) is
   * not marked, and must not be sent.
   */
  async claimForSending(ids: number[]): Promise<Set<number>> {
    if (!ids.length) return new Set();
    const rows = await this.o.sql<{ id: string }[]>`
      update activity_history set dispatched_at = ${new Date(this.o.clock.now())}
      where id = any(${ids}::bigint[]) and dispatched_at is null
        and status in ('Pending', 'Running')
      returning id`;
    return new Set(rows.map((r) => Number(r.id)));
  }

  /**
   * Quick-run activities whose script was never handed to realtime (the engine stopped
   * between recording them and sending) become Failed with a reason, instead of staying
   * Running until their deadline. Only those recorded before `before` (the sender had
   * time to claim them), and none of `except`'s (this instance's runs in progress).
   */
  async failUndelivered(before: Date, except?: string): Promise<number> {
    const now = new Date(this.o.clock.now());
    const rows = await this.o.sql<ActivityRow[]>`
      update activity_history set status = 'Failed', finished_at = ${now}, updated_at = ${now},
        stderr = 'not delivered: the engine stopped before it sent this script to the agent; run it again',
        metadata = metadata || '{"undelivered": true}'::jsonb
      where quick_job_id is not null and dispatched_at is null
        and status in ('Pending', 'Running') and ran_at <= ${before}
        and dispatch_owner is distinct from ${except ?? null}
      returning ${this.o.sql.unsafe(ACTIVITY_COLUMNS)}`;
    if (rows.length) {
      this.o.log.warn(
        `${rows.length} quick-run activit${rows.length === 1 ? "y was" : "ies were"} never sent ` +
          `(the engine stopped first): marked Failed`,
      );
      await this.onChange(rows, "undelivered", "scheduler");
    }
    return rows.length;
  }

  /** Sends one prepared script; "offline" means realtime holds it for a while. */
  async send(
    guid: string,
    frame: { type: string; id: string; data: Record<string, unknown> },
  ): Promise<"delivered" | "routed" | "offline"> {
    const start = performance.now();
    const r = await this.o.channel.send(guid, frame);
    this.onSent?.(r.status, (performance.now() - start) / 1000);
    return r.status;
  }

  /** Marks activities whose message realtime could not deliver at once as Pending. */
  async markPending(ids: number[]): Promise<void> {
    if (!ids.length) return;
    await this.o.sql`update activity_history set status = 'Pending', started_at = null
      where id = any(${ids}::bigint[]) and status = 'Running'`;
  }

  /** Applies a progress frame from the agent that owns the activity. */
  async progress(agent: AgentRef, d: z.infer<typeof QuickJobProgress>): Promise<unknown> {
    const id = Number(d.job_id);
    if (!Number.isSafeInteger(id)) return { status: "unknown_job" };
    const now = new Date(this.o.clock.now());
    const rows = await this.o.sql<ActivityRow[]>`
      update activity_history set status = 'Running', started_at = coalesce(started_at, ${now}),
        updated_at = ${now},
        stdout = left(stdout || ${d.append_output ?? d.stdout ?? ""}, 4000000),
        queue_lane = coalesce(${d.queue_lane ?? null}, queue_lane),
        activity_kind = coalesce(${d.activity_kind ?? null}, activity_kind)
      where id = ${id} and device_guid = ${agent.guid} and status in ('Pending', 'Running')
      returning ${this.o.sql.unsafe(ACTIVITY_COLUMNS)}`;
    if (!rows.length) return { status: "unknown_job" };
    // Progress also answers a status query ("still running"): the query is no longer
    // outstanding, so the lease is renewed again.
    await this.o.sql`update scheduled_job_runs set status = 'Running',
      started_ts = coalesce(started_ts, ${now}), updated_at = ${now}, status_query_at = null
      where activity_id = ${id}
        and (status = 'Dispatching' or (status = 'Running' and status_query_at is not null))`;
    await this.onChange(rows, "progress", "agent");
    return { status: "ok" };
  }

  #results: PendingResult[] = [];
  #flushing?: Promise<void>;

  /**
   * Applies a result frame from the agent that owns the activity. Results arriving
   * together are written together (one statement per batch), which is what keeps
   * thousands of agents answering at once from queueing behind each other.
   */
  result(agent: AgentRef, d: z.infer<typeof QuickJobResult>): Promise<unknown> {
    const id = Number(d.job_id);
    if (!Number.isSafeInteger(id)) return Promise.resolve({ status: "unknown_job" });
    const status = normalizeStatus(d.status);
    if (status === "Running") return this.progress(agent, { ...d, status: "Running" });
    return new Promise((done, fail) => {
      this.#results.push({ guid: agent.guid, id, status, d, done, fail });
      this.#flushResults();
    });
  }

  #flushResults(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      await Promise.resolve();
      while (this.#results.length) {
        const batch = this.#results.splice(0, 1000);
        try {
          const applied = await this.#applyResults(batch);
          for (const b of batch) b.done({ status: applied.has(b.id) ? "ok" : "unknown_job" });
        } catch (err) {
          for (const b of batch) b.fail(err);
        }
      }
    })().finally(() => {
      this.#flushing = undefined;
      if (this.#results.length) this.#flushResults();
    });
  }

  async #applyResults(batch: PendingResult[]): Promise<Set<number>> {
    const { sql } = this.o;
    const now = new Date(this.o.clock.now());
    const cols = sql.unsafe(ACTIVITY_COLUMNS.split(",").map((c) => `a.${c.trim()}`).join(", "));
    const rows = await sql<ActivityRow[]>`
      update activity_history a set status = u.st, stdout = u.o, stderr = u.e, exit_code = u.x,
        started_at = coalesce(a.started_at, ${now}), finished_at = ${now}, updated_at = ${now}
      from unnest(${batch.map((b) => b.id)}::bigint[], ${batch.map((b) => b.guid)}::uuid[],
        ${batch.map((b) => b.status)}::text[], ${batch.map((b) => b.d.stdout ?? "")}::text[],
        ${batch.map((b) => b.d.stderr ?? "")}::text[], ${
      batch.map((b) => b.d.exit_code ?? null)
    }::int[])
        as u(id, g, st, o, e, x)
      where a.id = u.id and a.device_guid = u.g and a.status in ('Pending', 'Running')
      returning ${cols}`;
    if (!rows.length) return new Set();
    if (this.onResult) {
      for (const r of rows) this.onResult(r.status, (now.getTime() - r.ran_at.getTime()) / 1000);
    }
    await sql`
      update scheduled_job_runs r set status = u.st, started_ts = coalesce(r.started_ts, ${now}),
        finished_ts = ${now}, updated_at = ${now}, lease_owner = null, lease_expires_at = null,
        error = case when u.st = 'Success' then null else nullif(left(u.e, 2000), '') end
      from unnest(${rows.map((r) => Number(r.id))}::bigint[], ${rows.map((r) => r.status)}::text[],
        ${rows.map((r) => r.stderr)}::text[]) as u(id, st, e)
      where r.activity_id = u.id and r.status in ('Dispatching', 'Running')`;
    await this.onChange(rows, "result", "agent");
    return new Set(rows.map((r) => Number(r.id)));
  }

  /** Activities past their deadline become Timed Out (with their runs). */
  async timeOut(): Promise<number> {
    const now = new Date(this.o.clock.now());
    const rows = await this.o.sql<ActivityRow[]>`
      update activity_history set status = 'Timed Out', finished_at = ${now}, updated_at = ${now},
        stderr = case when stderr = '' then 'no result before the time limit' else stderr end
      where status in ('Pending', 'Running') and deadline_at < ${now}
      returning ${this.o.sql.unsafe(ACTIVITY_COLUMNS)}`;
    if (!rows.length) return 0;
    await this.o.sql`update scheduled_job_runs set status = 'Timed Out', finished_ts = ${now},
      updated_at = ${now}, lease_owner = null, lease_expires_at = null,
      error = 'no result before the time limit'
      where activity_id = any(${rows.map((r) => Number(r.id))}::bigint[])
        and status in ('Pending', 'Dispatching', 'Running')`;
    await this.onChange(rows, "timed_out", "scheduler");
    return rows.length;
  }
}

/**
 * The work loop of scheduled jobs, safe with several engine instances on one database.
 *
 * - The tick (a cluster singleton) times out overdue runs, expires runs of offline
 *   devices, closes finished occurrences, purges old history in batches, and opens a
 *   new occurrence for every job whose slot is inside its firing window and whose
 *   previous occurrence is finished. Targets are resolved and snapshotted then.
 * - The pump (every instance) claims per-target runs with `FOR UPDATE SKIP LOCKED` and
 *   a lease, dispatches them, and renews its leases while they run. A lease that
 *   expires (its instance died) is reclaimed by another instance. A reclaimed run whose
 *   script was already sent is never sent again blindly: the instance asks the agent
 *   (`quick_job_status`), and only an agent that answers `quick_job_unknown` (the first
 *   delivery was lost) gets the script. So at most one script frame reaches an agent.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { HttpError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { FilterService, InventoryService, TargetDevice } from "../inventory/mod.ts";
import type { AgentChannel, AgentRef } from "../realtime/mod.ts";
import type { Dispatcher, PreparedScript } from "./dispatch.ts";
import { type JobRow, scheduleOf } from "./jobs.ts";
import { dueSlot, expirationMs } from "./schedule.ts";
import type { WindowService } from "./windows.ts";

/** Options of {@link RunEngine}. */
export interface RunEngineOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  instanceId: string;
  channel: AgentChannel;
  filters: FilterService;
  inventory: InventoryService;
  dispatcher: Dispatcher;
  windows: WindowService;
  firingWindowMs: number;
  leaseMs: number;
  retentionDays: number;
  batchSize: number;
}

interface RunRow {
  id: string | number;
  job_id: string | number;
  occurrence_id: string | number;
  scheduled_ts: Date;
  component_index: number;
  device_guid: string;
  hostname: string;
  site_id: number | null;
  status: string;
  activity_id: string | number | null;
  expires_at: Date | null;
  window_only: boolean;
}

/** A target as snapshotted into an occurrence. */
interface ResolvedTarget {
  guid: string;
  hostname: string;
  siteId: number | null;
  filterId: number | null;
}

/** Counters (tests and the benchmark read them). */
export interface RunStats {
  ticks: number;
  occurrences: number;
  /** Script frames sent. */
  dispatched: number;
  /** Runs reclaimed after their lease expired (each gets a status query). */
  reclaimed: number;
  /** `quick_job_status` frames sent. */
  statusQueries: number;
  /** Scripts sent after an agent answered `quick_job_unknown` (or could not answer). */
  redelivered: number;
  expired: number;
  timedOut: number;
}

/** Ticks and pumps scheduled work. */
export class RunEngine {
  readonly stats: RunStats = {
    ticks: 0,
    occurrences: 0,
    dispatched: 0,
    reclaimed: 0,
    statusQueries: 0,
    redelivered: 0,
    expired: 0,
    timedOut: 0,
  };
  #pumping?: Promise<void>;
  #again = false;
  #stopped = false;

  constructor(private readonly o: RunEngineOptions) {}

  // ------------------------------------------------------------------ tick

  /** One scheduler tick (run by one instance at a time). */
  async tick(): Promise<void> {
    const { sql } = this.o;
    const now = this.o.clock.now();
    this.stats.ticks++;
    this.stats.timedOut += await this.o.dispatcher.timeOut();
    const expired = await sql<{ id: string }[]>`
      update scheduled_job_runs set status = 'Expired', error = 'Device offline',
        finished_ts = ${new Date(now)}, updated_at = ${new Date(now)},
        lease_owner = null, lease_expires_at = null
      where status = 'Pending' and expires_at <= ${new Date(now)} returning id`;
    this.stats.expired += expired.length;
    await this.closeOccurrences();
    await this.purge();
    const jobs = await sql<JobRow[]>`
      select j.* from scheduled_jobs j
      where j.enabled and not exists (
        select 1 from scheduled_job_occurrences o where o.job_id = j.id and o.status = 'Running')
      order by j.id`;
    const due: Array<{ job: JobRow; slot: number }> = [];
    for (const job of jobs) {
      try {
        const slot = dueSlot(
          scheduleOf(job),
          job.last_occurrence_ts?.getTime() ?? null,
          now,
          this.o.firingWindowMs,
        );
        if (slot !== null) due.push({ job, slot });
      } catch (err) {
        this.o.log.warn(
          `job ${job.id}: bad schedule (${err instanceof Error ? err.message : err})`,
        );
      }
    }
    for (let i = 0; i < due.length; i += 1000) {
      await this.openOccurrences(due.slice(i, i + 1000), false);
    }
    this.kick();
  }

  /** Closes occurrences whose runs are all finished. */
  async closeOccurrences(): Promise<void> {
    const now = new Date(this.o.clock.now());
    await this.o.sql`
      update scheduled_job_occurrences o set status = 'Complete', finished_at = ${now}
      where o.status = 'Running' and not exists (
        select 1 from scheduled_job_runs r
        where r.occurrence_id = o.id and r.status in ('Pending', 'Dispatching', 'Running'))`;
  }

  /** Deletes history older than the retention, a batch at a time. */
  async purge(): Promise<number> {
    const cutoff = new Date(this.o.clock.now() - this.o.retentionDays * 86_400_000);
    let total = 0;
    for (let i = 0; i < 20; i++) {
      const a = await this.o.sql`
        delete from scheduled_job_occurrences where id in (
          select id from scheduled_job_occurrences where status <> 'Running' and created_at < ${cutoff}
          limit 1000)`;
      const b = await this.o.sql`
        delete from activity_history where id in (
          select id from activity_history where ran_at < ${cutoff}
            and status not in ('Pending', 'Running') limit 1000)`;
      total += a.count + b.count;
      if (a.count < 1000 && b.count < 1000) break;
    }
    return total;
  }

  /**
   * Resolves the targets of several jobs now (devices and filters, each inside its job's
   * allowed sites): one query for every device target, one per distinct filter and scope.
   */
  async resolveTargets(jobs: JobRow[]): Promise<Map<number, ResolvedTarget[]>> {
    const guids = new Set<string>();
    for (const j of jobs) {
      for (const t of j.targets) {
        if (t.kind === "device") guids.add(t.device_guid.toUpperCase());
      }
    }
    const runnable = (d: TargetDevice) => d.status === "active" || d.status === "quarantined";
    const devices = new Map<string, { hostname: string; site_id: number | null }>();
    if (guids.size) {
      for (const r of await this.o.inventory.targets({ guids: [...guids] })) {
        if (runnable(r)) devices.set(r.guid, r);
      }
    }
    const filterCache = new Map<
      string,
      Array<{ guid: string; hostname: string; site_id: number | null }> | null
    >();
    const out = new Map<number, ResolvedTarget[]>();
    for (const job of jobs) {
      const sites = job.allowed_site_ids;
      const p: Principal = {
        kind: "system",
        id: "scheduler",
        name: "scheduler",
        sites: sites ?? "all",
      };
      const inScope = (site: number | null) => !sites || (site !== null && sites.includes(site));
      const found = new Map<string, ResolvedTarget>();
      for (const t of job.targets) {
        if (t.kind === "device") {
          const g = t.device_guid.toUpperCase();
          const d = devices.get(g);
          if (d && inScope(d.site_id) && !found.has(g)) {
            found.set(g, { guid: g, hostname: d.hostname, siteId: d.site_id, filterId: null });
          }
          continue;
        }
        const scope = sites ? sites.join(",") : "all";
        const key = t.kind === "filter"
          ? `filter ${t.filter_id}:${scope}`
          : `sites ${t.kind === "sites" ? t.site_ids.join(",") : "all"}:${scope}`;
        if (!filterCache.has(key)) {
          if (t.kind === "filter") {
            try {
              filterCache.set(key, await this.o.filters.resolveById(t.filter_id, p));
            } catch (err) {
              if (!(err instanceof HttpError && err.status === 404)) throw err;
              filterCache.set(key, null); // the filter was deleted: it targets nobody
            }
          } else {
            // Sites and "all devices" are resolved now, inside the job's scope.
            const scoped = { principal: p, siteIds: t.kind === "sites" ? t.site_ids : undefined };
            filterCache.set(
              key,
              (await this.o.inventory.targets({ scope: scoped })).filter(runnable),
            );
          }
        }
        for (const d of filterCache.get(key) ?? []) {
          const g = d.guid.toUpperCase();
          if (!found.has(g)) {
            found.set(g, {
              guid: g,
              hostname: d.hostname,
              siteId: d.site_id,
              filterId: t.kind === "filter" ? t.filter_id : null,
            });
          }
        }
      }
      out.set(Number(job.id), [...found.values()]);
    }
    return out;
  }

  /** Opens one occurrence (see {@link openOccurrences}); null when it exists already. */
  async openOccurrence(job: JobRow, slot: number, manual: boolean): Promise<number | null> {
    const [id] = await this.openOccurrences([{ job, slot }], manual);
    return id ?? null;
  }

  /**
   * Opens occurrences: snapshots each one's targets as Pending runs, or records it as
   * Skipped when there are none. A handful of statements for any number of jobs. Returns
   * the new occurrence ids (an occurrence another instance opened already is left out).
   */
  async openOccurrences(
    due: Array<{ job: JobRow; slot: number }>,
    manual: boolean,
  ): Promise<number[]> {
    if (!due.length) return [];
    const { sql } = this.o;
    const now = new Date(this.o.clock.now());
    const targets = await this.resolveTargets(due.map((d) => d.job));
    const jobIds = due.map((d) => Number(d.job.id));
    const slots = due.map((d) => new Date(d.slot).toISOString());
    const counts = due.map((d) => targets.get(Number(d.job.id))!.length);
    const opened = await sql.begin(async (tx) => {
      const occs = await tx<{ id: string; job_id: string }[]>`
        insert into scheduled_job_occurrences (job_id, scheduled_ts, status, skip_reason, manual, created_at, finished_at)
        select j, ts, case when n > 0 then 'Running' else 'Skipped' end,
          case when n > 0 then null else 'no_devices_targeted' end, ${manual}, ${now},
          case when n > 0 then null else ${now}::timestamptz end
        from unnest(${jobIds}::bigint[], ${slots}::timestamptz[], ${counts}::int[]) as u(j, ts, n)
        on conflict (job_id, scheduled_ts) do nothing returning id, job_id`;
      if (!occs.length) return [];
      const occOf = new Map(occs.map((o) => [Number(o.job_id), Number(o.id)]));
      await tx`
        update scheduled_jobs j set last_occurrence_ts = greatest(j.last_occurrence_ts, u.ts)
        from unnest(${jobIds}::bigint[], ${slots}::timestamptz[]) as u(id, ts)
        where j.id = u.id and u.id = any(${[...occOf.keys()]}::bigint[])`;
      const runs: Array<
        [
          number,
          number,
          number,
          number,
          string,
          string,
          number | null,
          number | null,
          Date | null,
          boolean,
        ]
      > = [];
      for (const { job, slot } of due) {
        const occ = occOf.get(Number(job.id));
        if (occ === undefined) continue;
        const exp = expirationMs(job.expiration);
        const expiresAt = exp === null ? null : new Date(slot + exp);
        for (const t of targets.get(Number(job.id))!) {
          for (let c = 0; c < job.components.length; c++) {
            runs.push([
              Number(job.id),
              occ,
              slot,
              c,
              t.guid,
              t.hostname,
              t.siteId,
              t.filterId,
              expiresAt,
              job.maintenance_window_only,
            ]);
          }
        }
      }
      for (let i = 0; i < runs.length; i += 5000) {
        const chunk = runs.slice(i, i + 5000);
        await tx`
          insert into scheduled_job_runs (job_id, occurrence_id, scheduled_ts, component_index,
            device_guid, hostname, site_id, resolved_from_filter_id, status, expires_at, window_only,
            created_at, updated_at)
          select j, o, ts, c, g::uuid, h, s, f, 'Pending', e, w::boolean, ${now}, ${now}
          from unnest(${chunk.map((r) => r[0])}::bigint[], ${chunk.map((r) => r[1])}::bigint[],
            ${chunk.map((r) => new Date(r[2]).toISOString())}::timestamptz[], ${
          chunk.map((r) => r[3])
        }::int[],
            ${chunk.map((r) => r[4])}::text[], ${chunk.map((r) => r[5])}::text[],
            ${chunk.map((r) => r[6])}::int[], ${chunk.map((r) => r[7])}::int[],
            ${chunk.map((r) => r[8]?.toISOString() ?? null)}::timestamptz[], ${
          chunk.map((r) => String(r[9]))
        }::text[])
            as u(j, o, ts, c, g, h, s, f, e, w)`;
      }
      return occs.map((o) => Number(o.id));
    });
    this.stats.occurrences += opened.length;
    if (opened.length) {
      this.o.log.info(
        `opened ${opened.length} occurrence(s)${manual ? " (rerun)" : ""}: ${
          due.slice(0, 5).map((d) => `job ${d.job.id} at ${new Date(d.slot).toISOString()}`).join(
            ", ",
          )
        }${due.length > 5 ? ", …" : ""}`,
      );
    }
    return opened;
  }

  // ------------------------------------------------------------------ pump

  /** Asks for a dispatch pass soon (coalesced). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = (async () => {
      do {
        this.#again = false;
        try {
          await this.pump();
        } catch (err) {
          this.o.log.error(`dispatch pass failed: ${err instanceof Error ? err.message : err}`);
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => (this.#pumping = undefined));
  }

  /** Resolves when no dispatch pass is running. */
  async idle(): Promise<void> {
    while (this.#pumping) await this.#pumping;
  }

  /** Stops dispatching (leases run out and other instances take over). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.idle();
  }

  /** One dispatch pass: renew own leases, claim what is dispatchable, send it. */
  async pump(): Promise<number> {
    const { sql, clock, instanceId } = this.o;
    let now = clock.now();
    // A run with an unanswered status query is not renewed: an agent that does not answer
    // within the lease is asked again at the next reclaim.
    await sql`update scheduled_job_runs set lease_expires_at = ${new Date(now + this.o.leaseMs)}
      where lease_owner = ${instanceId} and status in ('Dispatching', 'Running')
        and status_query_at is null`;
    let sent = 0;
    // Keyset over run ids, so runs of offline devices at the front never starve the rest.
    let after = 0;
    const page = this.o.batchSize * 4;
    for (let round = 0; round < 1000 && !this.#stopped; round++) {
      now = clock.now();
      const candidates = await sql<RunRow[]>`
        select id, device_guid::text, site_id, status, window_only from scheduled_job_runs
        where id > ${after} and (
          (status = 'Pending' and (expires_at is null or expires_at > ${new Date(now)}))
          or (status in ('Dispatching', 'Running') and lease_expires_at < ${new Date(now)}))
        order by id limit ${page}`;
      if (!candidates.length) break;
      let ready = candidates.filter((r) => this.o.channel.connected(r.device_guid));
      const held = ready.filter((r) => r.window_only && r.status === "Pending");
      if (held.length) {
        const inside = await this.o.windows.devicesInWindow(
          held.map((r) => ({ guid: r.device_guid, siteId: r.site_id })),
          now,
        );
        ready = ready.filter((r) =>
          !(r.window_only && r.status === "Pending") || inside.has(r.device_guid)
        );
      }
      const ids = ready.slice(0, this.o.batchSize).map((r) => Number(r.id));
      // The next page starts after this one, or after the last id claimed when more of
      // this page was ready than one batch holds.
      after = ready.length > ids.length
        ? ids[ids.length - 1]!
        : Number(candidates[candidates.length - 1]!.id);
      if (!ids.length) {
        if (candidates.length < page) break;
        continue;
      }
      const claimed = await sql<RunRow[]>`
        update scheduled_job_runs r set lease_owner = ${instanceId},
          lease_expires_at = ${new Date(now + this.o.leaseMs)},
          status = case when r.status = 'Pending' then 'Dispatching' else r.status end,
          status_query_count = r.status_query_count + (r.activity_id is not null)::int,
          status_query_at = case when r.activity_id is null then null else ${new Date(now)} end,
          updated_at = ${new Date(now)}
        from (
          select id from scheduled_job_runs
          where id = any(${ids}::bigint[])
            and (status = 'Pending' or (status in ('Dispatching', 'Running') and lease_expires_at < ${new Date(
        now,
      )}))
          for update skip locked
        ) c
        where r.id = c.id
        returning r.id, r.job_id, r.occurrence_id, r.scheduled_ts, r.component_index,
          r.device_guid::text as device_guid, r.hostname, r.site_id, r.status, r.activity_id,
          r.expires_at, r.window_only`;
      if (claimed.length) sent += await this.#dispatch(claimed);
      if (candidates.length < page && ready.length <= this.o.batchSize) break;
    }
    return sent;
  }

  /**
   * Sends what claimed runs need: a run never sent (no activity yet) gets its script; a
   * reclaimed run whose script was sent before gets a `quick_job_status` query instead.
   */
  async #dispatch(runs: RunRow[]): Promise<number> {
    const queried = runs.filter((r) => r.activity_id !== null);
    const fresh = runs.filter((r) => r.activity_id === null);
    if (queried.length) {
      this.stats.reclaimed += queried.length;
      for (const r of queried) {
        await this.o.dispatcher.send(
          r.device_guid,
          this.o.dispatcher.statusFrame(Number(r.activity_id), this.#context(r)),
        );
      }
      this.stats.statusQueries += queried.length;
      const now = new Date(this.o.clock.now());
      await this.o.sql`update scheduled_job_runs set status = 'Running', updated_at = ${now}
        where id = any(${queried.map((r) => Number(r.id))}::bigint[]) and status = 'Dispatching'`;
    }
    return fresh.length ? await this.#sendScripts(fresh) : 0;
  }

  #context(r: RunRow) {
    return {
      scheduled_job_id: Number(r.job_id),
      scheduled_job_run_id: Number(r.id),
      scheduled_ts: Math.floor(r.scheduled_ts.getTime() / 1000),
    };
  }

  /**
   * An agent answered a status query with `quick_job_unknown` (it never received the
   * script), or could not answer it at all (`unsupported`: an agent predating the query,
   * which per the earlier protocol dedups by job id). Sends the script once: only while
   * a query is outstanding, cleared in the same statement, so a second answer (to an
   * earlier query) sends nothing. The instance sending the script takes the lease.
   */
  async answerUnknown(
    agent: AgentRef,
    activityId: number,
    why: "unknown" | "unsupported",
  ): Promise<{ status: "dispatched" | "ignored" }> {
    if (!Number.isSafeInteger(activityId)) return { status: "ignored" };
    const now = this.o.clock.now();
    const rows = await this.o.sql<RunRow[]>`
      update scheduled_job_runs r set status_query_at = null, dispatch_count = r.dispatch_count + 1,
        lease_owner = ${this.o.instanceId}, lease_expires_at = ${new Date(now + this.o.leaseMs)},
        updated_at = ${new Date(now)}
      where r.activity_id = ${activityId} and r.device_guid = ${agent.guid}::uuid
        and r.status in ('Dispatching', 'Running') and r.status_query_at is not null
        and exists (select 1 from activity_history a
          where a.id = r.activity_id and a.status in ('Pending', 'Running'))
      returning r.id, r.job_id, r.occurrence_id, r.scheduled_ts, r.component_index,
        r.device_guid::text as device_guid, r.hostname, r.site_id, r.status, r.activity_id,
        r.expires_at, r.window_only`;
    if (!rows.length) return { status: "ignored" };
    this.o.log.info(
      `run ${rows[0]!.id}: agent ${agent.guid} ${
        why === "unknown" ? "never received activity" : "cannot answer a status query for"
      } ${activityId}; sending the script`,
    );
    this.stats.redelivered += rows.length;
    await this.#sendScripts(rows);
    return { status: "dispatched" };
  }

  /**
   * Prepares (resolves, renders, signs) and sends scripts. Runs without an activity get
   * one (and count a script dispatch); runs with one were counted by the caller.
   */
  async #sendScripts(runs: RunRow[]): Promise<number> {
    const { sql, clock } = this.o;
    const jobIds = [...new Set(runs.map((r) => Number(r.job_id)))];
    const jobs = new Map(
      (await sql<JobRow[]>`select * from scheduled_jobs where id = any(${jobIds}::bigint[])`)
        .map((j) => [Number(j.id), j]),
    );
    const prepared = new Map<string, PreparedScript | Error>();
    const byKey = new Map<string, RunRow[]>();
    for (const r of runs) {
      const key = `${r.job_id}:${r.component_index}`;
      byKey.set(key, [...(byKey.get(key) ?? []), r]);
    }
    let sent = 0;
    for (const [key, group] of byKey) {
      const job = jobs.get(Number(group[0]!.job_id));
      let script = prepared.get(key);
      if (!script) {
        try {
          const comp = job?.components[group[0]!.component_index];
          if (!job || !comp) throw new Error("the job or its component no longer exists");
          script = await this.o.dispatcher.prepare(
            comp.assembly_guid,
            comp.variable_values,
            job.execution_context,
            job.credential_id,
          );
        } catch (err) {
          script = err instanceof Error ? err : new Error(String(err));
        }
        prepared.set(key, script);
      }
      const now = new Date(clock.now());
      if (script instanceof Error) {
        await sql`update scheduled_job_runs set status = 'Failed', error = ${
          script.message.slice(0, 2000)
        },
          finished_ts = ${now}, updated_at = ${now}, lease_owner = null, lease_expires_at = null
          where id = any(${group.map((r) => Number(r.id))}::bigint[])`;
        continue;
      }
      const fresh = group.filter((r) => r.activity_id === null);
      const stopAt = job!.duration_stop_enabled ? expirationMs(job!.expiration) : null;
      const ids = await this.o.dispatcher.createActivities(
        script,
        fresh.map((r) => ({ guid: r.device_guid, hostname: r.hostname, siteId: r.site_id })),
        {
          runMode: job!.execution_context,
          requestedBy: `scheduled_job:${job!.id}`,
          quickJobId: null,
          status: "Running",
          deadline: stopAt === null
            ? null
            : fresh[0]
            ? fresh[0].scheduled_ts.getTime() + stopAt
            : null,
        },
      );
      fresh.forEach((r, i) => (r.activity_id = ids[i]!));
      if (fresh.length) {
        // dispatch_count counts script frames sent: the activity and the count are written
        // together, right before the send.
        await sql`
          update scheduled_job_runs r set activity_id = u.a, status = 'Running',
            dispatch_count = r.dispatch_count + 1,
            started_ts = coalesce(r.started_ts, ${now}), updated_at = ${now}
          from unnest(${fresh.map((r) => Number(r.id))}::bigint[], ${ids}::bigint[]) as u(id, a)
          where r.id = u.id`;
      }
      const offline: number[] = [];
      for (const r of group) {
        const frame = this.o.dispatcher.frame(
          script,
          Number(r.activity_id),
          r.hostname,
          this.#context(r),
        );
        const status = await this.o.dispatcher.send(r.device_guid, frame);
        if (status === "offline") offline.push(Number(r.id));
        sent++;
      }
      // A socket that closed between the check and the send: realtime holds the frame and
      // delivers it when the agent reconnects, so the run simply stays Running.
      if (offline.length) {
        this.o.log.debug(`runs ${offline.join(", ")}: agent offline; realtime holds the message`);
      }
    }
    this.stats.dispatched += sent;
    return sent;
  }
}

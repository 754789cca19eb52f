/**
 * The terminal plugin's SQL: site policies, sessions (with the limits counted under a
 * lock), transcript chunks, device actions and file transfers. Only this plugin's tables.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { conflict } from "../../core/errors.ts";
import type { ActionView, SessionView, SitePolicy, TransferView } from "./api.ts";

interface PolicyRow {
  site_id: number;
  terminal_enabled: boolean;
  require_reason: boolean;
  record_transcripts: boolean;
  files_enabled: boolean;
  updated_by: string | null;
  updated_at: Date | null;
}

/** The policy a site has before an admin sets one. */
export function defaultPolicy(siteId: number): SitePolicy {
  return {
    site_id: siteId,
    terminal_enabled: true,
    require_reason: false,
    record_transcripts: false,
    files_enabled: true,
    updated_by: null,
    updated_at: null,
  };
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** A session row. */
export interface SessionRow {
  id: string;
  device_guid: string;
  hostname: string;
  site_id: number | null;
  operator_id: string;
  operator_name: string;
  reason: string | null;
  run_as: "system" | "user";
  status: SessionView["status"];
  owner_instance: string;
  recorded: boolean;
  cols: number;
  rows: number;
  mode: "pty" | "line" | null;
  shell_user: string | null;
  pid: number | null;
  created_at: Date;
  started_at: Date | null;
  detached_at: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  exit_code: number | null;
  bytes_in: string | number;
  bytes_out: string | number;
}

/** The API view of a session row. */
export function sessionView(r: SessionRow): SessionView {
  return {
    id: r.id,
    device_guid: r.device_guid.toUpperCase(),
    hostname: r.hostname,
    site_id: r.site_id,
    operator: r.operator_name,
    reason: r.reason,
    run_as: r.run_as,
    status: r.status,
    recorded: r.recorded,
    mode: r.mode,
    shell_user: r.shell_user,
    created_at: r.created_at.toISOString(),
    started_at: iso(r.started_at),
    ended_at: iso(r.ended_at),
    end_reason: r.end_reason,
    exit_code: r.exit_code,
    bytes_in: Number(r.bytes_in),
    bytes_out: Number(r.bytes_out),
  };
}

/** What a new session row needs. */
export interface NewSession {
  id: string;
  guid: string;
  hostname: string;
  siteId: number | null;
  operatorId: string;
  operatorName: string;
  reason: string | null;
  runAs: "system" | "user";
  owner: string;
  recorded: boolean;
  cols: number;
  rows: number;
}

/** A device action row. */
interface ActionRow {
  id: string;
  device_guid: string;
  hostname: string;
  operator_name: string;
  kind: ActionView["kind"];
  params: Record<string, unknown>;
  status: ActionView["status"];
  result: Record<string, unknown> | null;
  created_at: Date;
  finished_at: Date | null;
}

const actionView = (r: ActionRow): ActionView => ({
  id: r.id,
  device_guid: r.device_guid.toUpperCase(),
  hostname: r.hostname,
  operator: r.operator_name,
  kind: r.kind,
  params: r.params,
  status: r.status,
  result: r.result,
  created_at: r.created_at.toISOString(),
  finished_at: iso(r.finished_at),
});

interface TransferRow {
  id: string;
  device_guid: string;
  hostname: string;
  operator_name: string;
  direction: "download" | "upload";
  path: string;
  status: TransferView["status"];
  size: string | number | null;
  bytes: string | number;
  sha256: string | null;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const transferView = (r: TransferRow): TransferView => ({
  id: r.id,
  device_guid: r.device_guid.toUpperCase(),
  hostname: r.hostname,
  operator: r.operator_name,
  direction: r.direction,
  path: r.path,
  status: r.status,
  size: r.size === null ? null : Number(r.size),
  bytes: Number(r.bytes),
  sha256: r.sha256,
  error: r.error,
  created_at: r.created_at.toISOString(),
  finished_at: iso(r.finished_at),
});

/** Advisory lock class of session admission (one lock per device). */
const ADMIT_LOCK = 0x7e41;

/** The store. */
export class TerminalStore {
  constructor(private readonly sql: Sql, private readonly clock: Clock) {}

  #now(): Date {
    return new Date(this.clock.now());
  }

  // ------------------------------------------------------------------ policies

  /** A site's policy (defaults when none was set; devices without a site get defaults). */
  async policy(siteId: number | null): Promise<SitePolicy> {
    if (siteId === null) return { ...defaultPolicy(0), site_id: 0 };
    const [r] = await this.sql<PolicyRow[]>`
      select site_id, terminal_enabled, require_reason, record_transcripts, files_enabled,
        updated_by, updated_at
      from terminal_site_policies where site_id = ${siteId}`;
    return r ? { ...r, updated_at: iso(r.updated_at) } : defaultPolicy(siteId);
  }

  /** Replaces a site's policy. */
  async setPolicy(
    siteId: number,
    p: Pick<
      SitePolicy,
      "terminal_enabled" | "require_reason" | "record_transcripts" | "files_enabled"
    >,
    by: string,
  ): Promise<SitePolicy> {
    const [r] = await this.sql<PolicyRow[]>`
      insert into terminal_site_policies (site_id, terminal_enabled, require_reason,
        record_transcripts, files_enabled, updated_by, updated_at)
      values (${siteId}, ${p.terminal_enabled}, ${p.require_reason}, ${p.record_transcripts},
        ${p.files_enabled}, ${by}, ${this.#now()})
      on conflict (site_id) do update set terminal_enabled = excluded.terminal_enabled,
        require_reason = excluded.require_reason, record_transcripts = excluded.record_transcripts,
        files_enabled = excluded.files_enabled, updated_by = excluded.updated_by,
        updated_at = excluded.updated_at
      returning site_id, terminal_enabled, require_reason, record_transcripts, files_enabled,
        updated_by, updated_at`;
    return { ...r!, updated_at: iso(r!.updated_at) };
  }

  /** Sites that have a policy row. */
  async policySites(): Promise<number[]> {
    const rows = await this.sql<{ site_id: number }[]>`
      select site_id from terminal_site_policies order by site_id`;
    return rows.map((r) => r.site_id);
  }

  /** Removes the policies of sites that no longer exist. */
  async deletePolicies(siteIds: number[]): Promise<number> {
    if (!siteIds.length) return 0;
    const r = await this.sql`
      delete from terminal_site_policies where site_id = any(${siteIds}::int[])`;
    return r.count;
  }

  // ------------------------------------------------------------------ sessions

  /**
   * Inserts a session unless the device or the operator is at its limit; the count and
   * the insert happen under a per-device advisory lock so two instances cannot both
   * admit the last slot. (The operator limit may overshoot by one when two instances
   * admit the same operator's sessions on two devices in the same instant.)
   */
  async admit(s: NewSession, limits: { perDevice: number; perOperator: number }): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${ADMIT_LOCK}, hashtext(${s.guid}))`;
      const [counts] = await tx<{ device: number; operator: number }[]>`
        select
          count(*) filter (where device_guid = ${s.guid})::int as device,
          count(*) filter (where operator_id = ${s.operatorId})::int as operator
        from terminal_sessions
        where status <> 'closed' and (device_guid = ${s.guid} or operator_id = ${s.operatorId})`;
      if (counts!.device >= limits.perDevice) {
        throw conflict(
          "too_many_sessions",
          `this device already has ${
            counts!.device
          } open terminal session(s) (limit ${limits.perDevice})`,
          { limit: limits.perDevice, scope: "device" },
        );
      }
      if (counts!.operator >= limits.perOperator) {
        throw conflict(
          "too_many_sessions",
          `you already have ${
            counts!.operator
          } open terminal session(s) (limit ${limits.perOperator})`,
          { limit: limits.perOperator, scope: "operator" },
        );
      }
      await tx`
        insert into terminal_sessions (id, device_guid, hostname, site_id, operator_id,
          operator_name, reason, run_as, status, owner_instance, recorded, cols, rows, created_at)
        values (${s.id}, ${s.guid}, ${s.hostname}, ${s.siteId}, ${s.operatorId},
          ${s.operatorName}, ${s.reason}, ${s.runAs}, 'opening', ${s.owner}, ${s.recorded},
          ${s.cols}, ${s.rows}, ${this.#now()})`;
    });
  }

  async session(id: string): Promise<SessionRow | undefined> {
    const [r] = await this.sql<SessionRow[]>`select * from terminal_sessions where id = ${id}`;
    return r;
  }

  /** The agent started the shell. */
  async started(
    id: string,
    o: { mode: "pty" | "line"; user: string | null; pid: number | null },
  ): Promise<void> {
    await this.sql`
      update terminal_sessions set status = case when status = 'opening' then 'open' else status end,
        started_at = coalesce(started_at, ${this.#now()}), mode = ${o.mode},
        shell_user = ${o.user}, pid = ${o.pid}
      where id = ${id} and status <> 'closed'`;
  }

  /** The operator's socket went away (the session waits for it). */
  async detached(id: string, bytesIn: number, bytesOut: number): Promise<void> {
    await this.sql`
      update terminal_sessions set status = 'detached', detached_at = ${this.#now()},
        bytes_in = greatest(bytes_in, ${bytesIn}), bytes_out = greatest(bytes_out, ${bytesOut})
      where id = ${id} and status in ('open', 'opening')`;
  }

  /** Claims a live session for a new operator socket on `owner`; undefined when it is gone. */
  async claim(id: string, operatorId: string, owner: string): Promise<SessionRow | undefined> {
    const [r] = await this.sql<SessionRow[]>`
      update terminal_sessions set owner_instance = ${owner},
        status = case when started_at is null then 'opening' else 'open' end, detached_at = null
      where id = ${id} and operator_id = ${operatorId} and status <> 'closed'
      returning *`;
    return r;
  }

  /** Writes the byte counters of a live session. */
  async counters(id: string, bytesIn: number, bytesOut: number): Promise<void> {
    await this.sql`
      update terminal_sessions set bytes_in = greatest(bytes_in, ${bytesIn}),
        bytes_out = greatest(bytes_out, ${bytesOut})
      where id = ${id}`;
  }

  /** Ends a session; returns the row when this call ended it (undefined: already closed). */
  async close(
    id: string,
    o: { reason: string; exitCode?: number | null; bytesIn?: number; bytesOut?: number },
  ): Promise<SessionRow | undefined> {
    const [r] = await this.sql<SessionRow[]>`
      update terminal_sessions set status = 'closed', ended_at = ${this.#now()},
        end_reason = ${o.reason}, exit_code = ${o.exitCode ?? null},
        bytes_in = greatest(bytes_in, ${o.bytesIn ?? 0}),
        bytes_out = greatest(bytes_out, ${o.bytesOut ?? 0})
      where id = ${id} and status <> 'closed'
      returning *`;
    return r;
  }

  /** Records the exit code the agent reported after the session was already closed. */
  async lateExit(id: string, exitCode: number | null, bytesOut: number): Promise<void> {
    await this.sql`
      update terminal_sessions set exit_code = coalesce(exit_code, ${exitCode}),
        bytes_out = greatest(bytes_out, ${bytesOut})
      where id = ${id}`;
  }

  /** Live sessions whose owning instance is not in `alive`. */
  async orphaned(alive: Set<string>): Promise<SessionRow[]> {
    return await this.sql<SessionRow[]>`
      select * from terminal_sessions
      where status <> 'closed' and not (owner_instance = any(${[...alive]}::text[]))`;
  }

  /** Sessions, newest first. */
  async listSessions(
    f: {
      guid?: string;
      status?: "live" | "closed";
      sites: readonly number[] | null;
      limit: number;
    },
  ): Promise<SessionView[]> {
    const sql = this.sql;
    const rows = await sql<SessionRow[]>`
      select * from terminal_sessions
      where ${f.guid ? sql`device_guid = ${f.guid}` : sql`true`}
        and ${
      f.status === "live"
        ? sql`status <> 'closed'`
        : f.status === "closed"
        ? sql`status = 'closed'`
        : sql`true`
    }
        and ${f.sites === null ? sql`true` : sql`site_id = any(${[...f.sites]}::int[])`}
      order by created_at desc limit ${f.limit}`;
    return rows.map(sessionView);
  }

  // ------------------------------------------------------------------ transcripts

  /** The next chunk number of a session's transcript. */
  async nextTranscriptSeq(sessionId: string): Promise<number> {
    const [r] = await this.sql<{ n: number }[]>`
      select coalesce(max(seq) + 1, 0)::int as n from terminal_transcripts
      where session_id = ${sessionId}`;
    return r!.n;
  }

  /** Stores one sealed chunk (its id is the seal's row). */
  async addTranscript(
    sessionId: string,
    seq: number,
    bytes: number,
    seal: (id: string) => Promise<string>,
  ): Promise<void> {
    const [row] = await this.sql<{ id: string }[]>`
      insert into terminal_transcripts (session_id, seq, sealed, bytes, created_at)
      values (${sessionId}, ${seq}, null, ${bytes}, ${this.#now()})
      returning id`;
    const sealed = await seal(String(row!.id));
    await this.sql`update terminal_transcripts set sealed = ${sealed} where id = ${row!.id}`;
  }

  /** A session's sealed chunks in order. */
  async transcript(sessionId: string): Promise<Array<{ id: string; sealed: string | null }>> {
    return await this.sql<{ id: string; sealed: string | null }[]>`
      select id::text as id, sealed from terminal_transcripts
      where session_id = ${sessionId} order by seq`;
  }

  /** Removes chunks older than the retention. */
  async pruneTranscripts(before: Date): Promise<number> {
    const r = await this.sql`delete from terminal_transcripts where created_at < ${before}`;
    return r.count;
  }

  // ------------------------------------------------------------------ actions

  async addAction(a: {
    id: string;
    guid: string;
    hostname: string;
    siteId: number | null;
    operatorId: string;
    operatorName: string;
    kind: ActionView["kind"];
    params: Record<string, unknown>;
  }): Promise<ActionView> {
    const [r] = await this.sql<ActionRow[]>`
      insert into terminal_device_actions (id, device_guid, hostname, site_id, operator_id,
        operator_name, kind, params, status, created_at)
      values (${a.id}, ${a.guid}, ${a.hostname}, ${a.siteId}, ${a.operatorId}, ${a.operatorName},
        ${a.kind}, ${this.sql.json(a.params as never)}, 'pending', ${this.#now()})
      returning *`;
    return actionView(r!);
  }

  async finishAction(
    id: string,
    status: "succeeded" | "failed" | "timed_out",
    result: Record<string, unknown>,
  ): Promise<ActionView | undefined> {
    const [r] = await this.sql<ActionRow[]>`
      update terminal_device_actions set status = ${status},
        result = ${this.sql.json(result as never)}, finished_at = ${this.#now()}
      where id = ${id} and (status = 'pending' or (status = 'timed_out' and ${status} <> 'timed_out'))
      returning *`;
    return r ? actionView(r) : undefined;
  }

  async action(id: string): Promise<(ActionView & { site_id: number | null }) | undefined> {
    const [r] = await this.sql<(ActionRow & { site_id: number | null })[]>`
      select * from terminal_device_actions where id = ${id}`;
    return r ? { ...actionView(r), site_id: r.site_id } : undefined;
  }

  async listActions(guid: string, limit: number): Promise<ActionView[]> {
    const rows = await this.sql<ActionRow[]>`
      select * from terminal_device_actions where device_guid = ${guid}
      order by created_at desc limit ${limit}`;
    return rows.map(actionView);
  }

  // ------------------------------------------------------------------ transfers

  async addTransfer(t: {
    id: string;
    guid: string;
    hostname: string;
    siteId: number | null;
    operatorId: string;
    operatorName: string;
    direction: "download" | "upload";
    path: string;
    size: number | null;
  }): Promise<void> {
    await this.sql`
      insert into terminal_transfers (id, device_guid, hostname, site_id, operator_id,
        operator_name, direction, path, status, size, created_at)
      values (${t.id}, ${t.guid}, ${t.hostname}, ${t.siteId}, ${t.operatorId}, ${t.operatorName},
        ${t.direction}, ${t.path}, 'running', ${t.size}, ${this.#now()})`;
  }

  async finishTransfer(
    id: string,
    o: {
      status: "succeeded" | "failed";
      bytes: number;
      size?: number | null;
      sha256?: string | null;
      error?: string | null;
    },
  ): Promise<TransferView | undefined> {
    const [r] = await this.sql<TransferRow[]>`
      update terminal_transfers set status = ${o.status}, bytes = ${o.bytes},
        size = coalesce(${o.size ?? null}, size), sha256 = ${o.sha256 ?? null},
        error = ${o.error ?? null}, finished_at = ${this.#now()}
      where id = ${id} and status = 'running'
      returning *`;
    return r ? transferView(r) : undefined;
  }

  async listTransfers(guid: string, limit: number): Promise<TransferView[]> {
    const rows = await this.sql<TransferRow[]>`
      select * from terminal_transfers where device_guid = ${guid}
      order by created_at desc limit ${limit}`;
    return rows.map(transferView);
  }

  /** Transfers left running by an instance that stopped (their HTTP requests are gone). */
  async failStaleTransfers(before: Date): Promise<number> {
    const r = await this.sql`
      update terminal_transfers set status = 'failed', error = 'engine stopped during the transfer',
        finished_at = ${this.#now()}
      where status = 'running' and created_at < ${before}`;
    return r.count;
  }
}

/**
 * Evaluation: policies × devices → per-device state, incidents and actions. One run reads
 * the targeted devices' telemetry in ONE query (only the `details` parts the rules
 * need), the software rows rules ask for in one more, the non-quiet states, unresolved
 * incidents, live overrides and the scheduler's maintenance windows in one query each;
 * computes every step in memory (see state.ts); and writes all changes in one
 * transaction of a few set-based statements. Quiet devices cost no row at all.
 *
 * Runs are serialized per engine instance. The interval run is a cluster singleton; the
 * incremental runs happen on the instance that received the telemetry, so the work is
 * split by device across instances; at most one unresolved incident per (policy, device)
 * is guaranteed by a unique index either way.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { HttpError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { FilterService } from "../inventory/mod.ts";
import type { AgentChannel } from "../realtime/mod.ts";
import type { ActiveWindow, SchedulerService } from "../scheduler/api.ts";
import type { ActionOutcome, ActionRunner } from "./actions.ts";
import type { Severity } from "./api.ts";
import type { IncidentHooks, WrittenChange } from "./incident_hooks.ts";
import {
  combine,
  type DeviceSample,
  evaluateRule,
  neededParts,
  normalizeName,
  type RuleResult,
  type SoftwareEntry,
} from "./rules.ts";
import type { DeviceState, Policy } from "./schemas.ts";
import { type ActiveIncident, type Hold, step, type StoredState } from "./state.ts";

/** The principal filters are resolved as (watchdogs see every site). */
export const SYSTEM: Principal = {
  kind: "system",
  id: "watchdogs",
  name: "watchdogs",
  sites: "all",
};

/** Counters of one run. */
export interface EvalStats {
  policies: number;
  devices: number;
  pairs: number;
  opened: number;
  retriggered: number;
  resolved: number;
  actions: number;
  /** Pairs left to another instance that judged them at the same moment. */
  concurrent: number;
  ms: number;
  /** Time spent reading, computing and writing (ms). */
  phases: { read: number; compute: number; write: number };
}

/** Dependencies of {@link Evaluator}. */
export interface EvaluatorDeps {
  sql: Sql;
  clock: Clock;
  log: Logger;
  filters: FilterService;
  channel: AgentChannel;
  /** In-memory last_seen (fresher than the column between flushes). */
  lastSeen: (guid: string) => number | null;
  /** The device list's presence from a stored last_seen (inventory's derivation). */
  presence?: (guid: string, lastSeen: number | null) => "online" | "offline" | "overdue";
  scheduler: () => SchedulerService | undefined;
  actions: ActionRunner;
  staleMs: number;
  /**
   * Writes telemetry still held in memory (realtime keeps heartbeat fields until its
   * next flush) so an evaluation reads what agents just reported.
   */
  flushTelemetry?: () => Promise<void>;
  /** Run inside the write transaction with what it changed (other plugins' outboxes). */
  hooks?: IncidentHooks;
}

/** An incident change, for the operator feed. */
export interface IncidentChange {
  incident_id: string;
  watchdog_id: string;
  device_guid: string;
  hostname: string;
  site_id: number | null;
  change: "opened" | "retriggered" | "severity_changed" | "resolved";
  reason?: string;
}

interface DeviceRow {
  guid: string;
  hostname: string;
  site_id: number | null;
  /** Epoch ms (numbers parse far faster than timestamps for 20,000 rows). */
  created_at: number;
  last_seen: number | null;
  last_reboot: number | null;
  uptime: number | null;
  cpu_percent: number | null;
  memory_percent: number | null;
  /** `details` parts as JSON text: parsed here, which is cheaper than the driver's jsonb path. */
  storage?: string | null;
  services?: string | null;
  agent_role_health?: string | null;
  processes?: string | null;
}

interface StateRow {
  watchdog_id: string;
  device_guid: string;
  state: DeviceState;
  consecutive_matches: number;
  first_match_at: Date | null;
  last_match_at: Date | null;
  clear_since: Date | null;
  last_action_at: Date | null;
  held_until: Date | null;
  /** The row's `xmin`: changes with every write, so a concurrent evaluation shows. */
  version: string;
}

const parse = (text: string | null | undefined): unknown =>
  text == null ? undefined : JSON.parse(text);
const ms = (d: Date | null): number | null => (d ? d.getTime() : null);
const iso = (n: number | null): string | null => (n === null ? null : new Date(n).toISOString());
const key = (policyId: string, guid: string) => `${policyId}|${guid}`;

const baselines = new WeakMap<object, number>();
/** A policy's creation time in ms, parsed once per policy object. */
function baselineOf(p: Policy): number {
  let b = baselines.get(p);
  if (b === undefined) baselines.set(p, b = Date.parse(p.created_at));
  return b;
}

/** Two states that would store the same row (the sample aside). */
function same(a: StoredState, b: StoredState): boolean {
  return a.state === b.state && a.consecutive === b.consecutive &&
    a.firstMatchAt === b.firstMatchAt && a.lastMatchAt === b.lastMatchAt &&
    a.clearSince === b.clearSince && a.lastActionAt === b.lastActionAt &&
    a.heldUntil === b.heldUntil;
}

/** Runs evaluations. */
export class Evaluator {
  #chain: Promise<unknown> = Promise.resolve();
  /** Called with every incident change after it is stored. */
  onChanges: (changes: IncidentChange[]) => Promise<void> = async () => {};

  constructor(private readonly d: EvaluatorDeps) {}

  /** Runs `fn` after every run already queued on this instance. */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  /**
   * Evaluates `policies` (default: every active one) over their targets, or only over
   * `guids` when given (incremental). Policies not given are left alone.
   */
  evaluate(policies: Policy[], guids?: string[]): Promise<EvalStats> {
    return this.serialize(() => this.#evaluate(policies, guids));
  }

  /** Resolves a policy's targets to device GUIDs (upper case), before site mode. */
  async targets(
    policy: Pick<Policy, "targets">,
    all: Iterable<string>,
    filterCache = new Map<number, Set<string>>(),
    as: Principal = SYSTEM,
  ): Promise<Set<string>> {
    const out = new Set<string>();
    for (const t of policy.targets) {
      if (t.kind === "all_devices") { for (const g of all) out.add(g); }
      else if (t.kind === "device") out.add(t.device_guid.toUpperCase());
      else {
        let set = filterCache.get(t.filter_id);
        if (!set) {
          try {
            const rows = await this.d.filters.resolveById(t.filter_id, as);
            set = new Set(rows.map((r) => r.guid.toUpperCase()));
          } catch (err) {
            // A deleted filter targets nothing (its devices' incidents resolve); any other
            // failure (a timeout) fails this run rather than resolving everything.
            if (!(err instanceof HttpError && err.status === 404)) throw err;
            this.d.log.warn(`watchdog filter ${t.filter_id} no longer exists`);
            set = new Set();
          }
          filterCache.set(t.filter_id, set);
        }
        for (const g of set) out.add(g);
      }
    }
    return out;
  }

  /** Loads telemetry samples of active devices (all, or the given GUIDs). */
  async samples(
    policies: Pick<Policy, "criteria">[],
    guids?: string[],
  ): Promise<Map<string, DeviceSample>> {
    const sql = this.d.sql;
    await this.d.flushTelemetry?.();
    const rules = policies.flatMap((p) => p.criteria.rules);
    const parts = neededParts(rules);
    const part = (name: string) =>
      parts.has(name) ? sql`, (d.details->${name})::text as ${sql(name)}` : sql``;
    const only = guids ? sql`and d.guid = any(${guids}::uuid[])` : sql``;
    const rows = await sql<DeviceRow[]>`
      select d.guid, d.hostname, d.site_id,
        (extract(epoch from d.created_at) * 1000)::float8 as created_at,
        (extract(epoch from d.last_seen) * 1000)::float8 as last_seen,
        (extract(epoch from d.last_reboot) * 1000)::float8 as last_reboot,
        d.uptime::float8 as uptime, d.cpu_percent, d.memory_percent
        ${part("storage")} ${part("services")} ${part("agent_role_health")} ${part("processes")}
      from devices d where d.status = 'active' ${only}`;
    const out = new Map<string, DeviceSample>();
    for (const r of rows) {
      const guid = r.guid.toUpperCase();
      const db = r.last_seen;
      const mem = this.d.lastSeen(guid);
      const lastSeen = db === null ? mem : mem === null ? db : Math.max(db, mem);
      out.set(guid, {
        guid,
        hostname: r.hostname,
        siteId: r.site_id,
        createdAt: r.created_at,
        lastSeen,
        connected: this.d.channel.connected(guid),
        presence: this.d.presence?.(guid, lastSeen),
        lastReboot: r.last_reboot,
        uptime: r.uptime,
        cpuPercent: r.cpu_percent,
        memoryPercent: r.memory_percent,
        storage: parse(r.storage),
        services: parse(r.services),
        roleHealth: parse(r.agent_role_health),
        processes: parse(r.processes),
      });
    }
    if (parts.has("software") && out.size) {
      const names = [
        ...new Set(
          rules.flatMap((r) =>
            r.type === "software_presence_or_version" ? [normalizeName(r.software_name)] : []
          ),
        ),
      ];
      const patterns = names.map((n) => `%${n.replace(/[\\%_]/g, (m) => `\\${m}`)}%`);
      const sw = await sql<
        {
          device_guid: string;
          name: string;
          name_normalized: string;
          version: string;
          source: string;
        }[]
      >`
        select device_guid, name, name_normalized, version, source from device_software_inventory
        where name_normalized like any(${patterns}::text[])
          ${guids ? sql`and device_guid = any(${guids}::uuid[])` : sql``}`;
      for (const s of out.values()) s.software = [];
      for (const r of sw) {
        const entry: SoftwareEntry = {
          name: r.name,
          normalized: r.name_normalized,
          version: r.version,
          source: r.source,
        };
        out.get(r.device_guid.toUpperCase())?.software?.push(entry);
      }
    }
    return out;
  }

  /** Applies a policy's site mode. */
  static inSites(p: Pick<Policy, "site_mode" | "site_ids">, siteId: number | null): boolean {
    if (p.site_mode === "specific_sites") return siteId !== null && p.site_ids.includes(siteId);
    if (p.site_mode === "global_exclusions") return siteId === null || !p.site_ids.includes(siteId);
    return true;
  }

  /** Rule results of one device under one policy (the offline clock restarts after a hold). */
  static results(
    p: Policy,
    s: DeviceSample,
    now: number,
    staleMs: number,
    heldUntil: number | null,
  ): RuleResult[] {
    const baselineAt = baselineOf(p);
    return p.criteria.rules.map((rule) => {
      const sample =
        rule.type === "device_offline" && heldUntil !== null && (s.lastSeen ?? 0) < heldUntil
          ? { ...s, lastSeen: heldUntil }
          : s;
      return evaluateRule(rule, sample, { now, staleMs, baselineAt });
    });
  }

  async #evaluate(policies: Policy[], guids?: string[]): Promise<EvalStats> {
    const started = performance.now();
    const stats: EvalStats = {
      policies: policies.length,
      devices: 0,
      pairs: 0,
      opened: 0,
      retriggered: 0,
      resolved: 0,
      actions: 0,
      concurrent: 0,
      ms: 0,
      phases: { read: 0, compute: 0, write: 0 },
    };
    if (!policies.length || (guids && !guids.length)) return stats;
    const sql = this.d.sql;
    const now = this.d.clock.now();
    const nowIso = new Date(now).toISOString();
    const ids = policies.map((p) => p.id);
    const lower = guids?.map((g) => g.toLowerCase());

    const devices = await this.samples(policies, lower);
    stats.devices = devices.size;
    const filterCache = new Map<number, Set<string>>();
    const targeted = new Map<string, Set<string>>();
    const union = new Set<string>();
    for (const p of policies) {
      const set = new Set<string>();
      for (const g of await this.targets(p, devices.keys(), filterCache)) {
        const s = devices.get(g);
        if (s && Evaluator.inSites(p, s.siteId)) {
          set.add(g);
          union.add(g);
        }
      }
      targeted.set(p.id, set);
    }

    const onlyGuids = lower ? sql`and device_guid = any(${lower}::uuid[])` : sql``;
    const states = new Map<string, StateRow>();
    for (
      const r of await sql<StateRow[]>`
        select watchdog_id, device_guid, state, consecutive_matches, first_match_at, last_match_at,
          clear_since, last_action_at, held_until, xmin::text as version
        from watchdog_device_state where watchdog_id = any(${ids}::uuid[]) ${onlyGuids}`
    ) states.set(key(r.watchdog_id, r.device_guid.toUpperCase()), r);
    const incidents = new Map<
      string,
      ActiveIncident & { hostname: string; site_id: number | null; severity: Severity }
    >();
    for (
      const r of await sql<
        {
          id: string;
          watchdog_id: string;
          device_guid: string;
          state: "open" | "suppressed";
          hostname: string;
          site_id: number | null;
          severity: Severity;
        }[]
      >`
        select id, watchdog_id, device_guid, state, hostname, site_id, severity from watchdog_incidents
        where state <> 'resolved' and watchdog_id = any(${ids}::uuid[]) ${onlyGuids}`
    ) incidents.set(key(r.watchdog_id, r.device_guid.toUpperCase()), r);
    const overrides = new Map<string, Hold>();
    for (
      const r of await sql<
        {
          watchdog_id: string;
          device_guid: string;
          state: "suppressed" | "disabled";
          reason: string;
          expires_at: Date | null;
        }[]
      >`
        select watchdog_id, device_guid, state, reason, expires_at from watchdog_device_overrides
        where watchdog_id = any(${ids}::uuid[]) and (expires_at is null or expires_at > ${nowIso}::timestamptz)
          ${onlyGuids}`
    ) {
      overrides.set(
        key(r.watchdog_id, r.device_guid.toUpperCase()),
        r.state === "disabled"
          ? { kind: "disabled", reason: r.reason }
          : { kind: "suppressed", reason: r.reason, until: ms(r.expires_at) },
      );
    }
    const windows = await this.#windows(
      [...union].map((g) => ({ guid: g, siteId: devices.get(g)!.siteId })),
      now,
    );

    // ---- compute
    const computeStart = performance.now();
    stats.phases.read = computeStart - started;
    const upserts: Record<string, unknown>[] = [];
    const deletes: { watchdog_id: string; device_guid: string }[] = [];
    const opens: Record<string, unknown>[] = [];
    const refreshes: Record<string, unknown>[] = [];
    /** Pairs that open, retrigger or fire, with the state version this evaluation read. */
    const eventful = new Map<string, string | null>();
    const resolves: { id: string; reason: string }[] = [];
    /** Unresolved incidents whose policy's severity was changed since they opened. */
    const severities: { id: string; severity: Severity; previous: Severity; key: string }[] = [];
    const fires: { policy: Policy; key: string; guid: string; summary: string }[] = [];
    const changes: IncidentChange[] = [];
    const stateOf = new Map<string, Record<string, unknown>>();

    for (const p of policies) {
      const set = targeted.get(p.id)!;
      const offlineOnly = p.criteria.rules.every((r) => r.type === "device_offline");
      const settings = {
        intervalMs: p.evaluation_interval_seconds * 1000,
        cooldownMs: p.cooldown_seconds * 1000,
        autoResolveMs: p.auto_resolve_after_seconds * 1000,
        minConsecutive: p.min_consecutive_matches,
        bootGraceMs: p.boot_grace_seconds * 1000,
      };
      for (const guid of set) {
        stats.pairs++;
        const s = devices.get(guid)!;
        const k = key(p.id, guid);
        const row = states.get(k);
        const prev: StoredState | null = row
          ? {
            state: row.state,
            consecutive: row.consecutive_matches,
            firstMatchAt: ms(row.first_match_at),
            lastMatchAt: ms(row.last_match_at),
            clearSince: ms(row.clear_since),
            lastActionAt: ms(row.last_action_at),
            heldUntil: ms(row.held_until),
          }
          : null;
        const window = windows.get(guid);
        const hold: Hold | null = overrides.get(k) ??
          (window ? { kind: "window", name: window.name, until: window.endsAt } : null);
        const results = Evaluator.results(p, s, now, this.d.staleMs, prev?.heldUntil ?? null);
        const verdict = combine(p.criteria.match_mode, results);
        const incident = incidents.get(k) ?? null;
        const out = step({
          prev,
          incident,
          verdict,
          now,
          settings,
          lastReboot: s.lastReboot,
          hold,
          lastSeen: s.lastSeen,
          offlineOnly,
        });
        // Shaped only for the pairs that are written (most pairs of a steady fleet are not).
        const summaryOf = () =>
          results.filter((r) => r.matched || r.stale).map((r) => r.summary).join("; ") ||
          results.map((r) => r.summary).join("; ");
        const sampleOf = () => ({
          verdict,
          results: results.map((r) => ({
            type: r.type,
            matched: r.matched,
            stale: !!r.stale,
            summary: r.summary,
            sample: r.sample,
          })),
        });
        const rulesOf = () =>
          results.map((r) => ({ type: r.type, matched: r.matched, summary: r.summary }));
        if (out.next && row && same(prev!, out.next) && !out.open && !out.resolve) {
          // Unchanged: no write (a steady fleet costs reads only).
        } else if (out.next) {
          const rec = {
            watchdog_id: p.id,
            device_guid: guid,
            state: out.next.state,
            consecutive_matches: out.next.consecutive,
            first_match_at: iso(out.next.firstMatchAt),
            last_match_at: iso(out.next.lastMatchAt),
            clear_since: iso(out.next.clearSince),
            last_action_at: iso(out.next.lastActionAt),
            held_until: iso(out.next.heldUntil),
            last_sample_json: sampleOf(),
            current_incident_id: out.resolve ? null : incident?.id ?? null,
          };
          upserts.push({ ...rec, key: k });
          stateOf.set(k, rec);
        } else if (row) deletes.push({ watchdog_id: p.id, device_guid: guid });
        if (out.open || out.retrigger || out.fire) eventful.set(k, row?.version ?? null);
        if (out.open) {
          opens.push({
            key: k,
            id: crypto.randomUUID(),
            watchdog_id: p.id,
            device_guid: guid,
            hostname: s.hostname,
            site_id: s.siteId,
            severity: p.severity,
            title: `${p.name}: ${s.hostname}`,
            message: summaryOf(),
            sample_json: sampleOf(),
            rule_summary_json: rulesOf(),
            offline_only: offlineOnly,
          });
        }
        if (incident && out.retrigger) {
          refreshes.push({
            key: k,
            id: incident.id,
            inc: out.retrigger ? 1 : 0,
            message: summaryOf(),
            sample_json: sampleOf(),
            rule_summary_json: rulesOf(),
          });
          if (out.retrigger) {
            stats.retriggered++;
            changes.push({
              incident_id: incident.id,
              watchdog_id: p.id,
              device_guid: guid,
              hostname: s.hostname,
              site_id: s.siteId,
              change: "retriggered",
            });
          }
        }
        if (incident && out.resolve) {
          resolves.push({ id: incident.id, reason: out.resolve });
          changes.push({
            incident_id: incident.id,
            watchdog_id: p.id,
            device_guid: guid,
            hostname: s.hostname,
            site_id: s.siteId,
            change: "resolved",
            reason: out.resolve,
          });
        }
        if (out.fire) fires.push({ policy: p, key: k, guid, summary: summaryOf() });
        if (incident && !out.resolve && incident.severity !== p.severity) {
          severities.push({
            id: incident.id,
            severity: p.severity,
            previous: incident.severity,
            key: k,
          });
        }
      }
      // The target disappeared (left the filter, the site, or the device is no longer active).
      for (const [k, inc] of incidents) {
        if (!k.startsWith(`${p.id}|`)) continue;
        const guid = k.slice(p.id.length + 1);
        if (set.has(guid)) continue;
        resolves.push({ id: inc.id, reason: "target_removed" });
        changes.push({
          incident_id: inc.id,
          watchdog_id: p.id,
          device_guid: guid,
          hostname: inc.hostname,
          site_id: inc.site_id,
          change: "resolved",
          reason: "target_removed",
        });
      }
      for (const k of states.keys()) {
        if (!k.startsWith(`${p.id}|`)) continue;
        const guid = k.slice(p.id.length + 1);
        if (!set.has(guid)) deletes.push({ watchdog_id: p.id, device_guid: guid });
      }
    }

    // ---- persist (one transaction, set-based; nothing but SQL inside)
    const writeStart = performance.now();
    stats.phases.compute = writeStart - computeStart;
    const opened = new Map<string, string>();
    const stale = new Set<string>();
    const written: WrittenChange[] = [];
    if (
      eventful.size || upserts.length || deletes.length || opens.length || refreshes.length ||
      resolves.length || severities.length
    ) {
      await sql.begin(async (tx) => {
        // Another instance may judge the same pair at the same moment (telemetry lands on
        // any instance). Serialise the pairs that open, retrigger or fire, and drop this
        // evaluation's view of any pair whose state changed since it was read: the other
        // instance's decision (incident, trigger count, actions) stands, and runs once.
        if (eventful.size) {
          const keys = [...eventful.keys()].sort();
          await tx`select pg_advisory_xact_lock(hashtext('watchdogs:' || k))
                   from (select k from unnest(${keys}::text[]) as k order by k) s`;
          const now = new Map<string, string>();
          for (
            const r of await tx<{ k: string; version: string }[]>`
              select s.watchdog_id::text || '|' || upper(s.device_guid::text) as k,
                s.xmin::text as version
              from watchdog_device_state s
              join (select split_part(k, '|', 1)::uuid as w, split_part(k, '|', 2)::uuid as d
                    from unnest(${keys}::text[]) as k) v
                on s.watchdog_id = v.w and s.device_guid = v.d`
          ) now.set(r.k, r.version);
          for (const k of keys) {
            if ((now.get(k) ?? null) !== eventful.get(k)) stale.add(k);
          }
          if (stale.size) {
            const keep = (r: Record<string, unknown>) => !stale.has(r.key as string);
            upserts.splice(0, upserts.length, ...upserts.filter(keep));
            opens.splice(0, opens.length, ...opens.filter(keep));
            refreshes.splice(0, refreshes.length, ...refreshes.filter(keep));
          }
        }
        if (resolves.length) {
          const rows = await tx<{ id: string; reason: string }[]>`
            update watchdog_incidents i set state = 'resolved', resolved_at = ${nowIso}::timestamptz,
              resolution_reason = v.reason, updated_at = ${nowIso}::timestamptz
            from jsonb_to_recordset(${tx.json(resolves as never)}::jsonb) as v(id uuid, reason text)
            where i.id = v.id and i.state <> 'resolved'
            returning i.id, v.reason`;
          for (const r of rows) written.push({ id: r.id, change: "resolved", reason: r.reason });
        }
        if (opens.length) {
          const rows = await tx<
            { id: string; watchdog_id: string; device_guid: string; inserted: boolean }[]
          >`
            insert into watchdog_incidents (id, watchdog_id, device_guid, hostname, site_id, severity,
              state, title, message, sample_json, rule_summary_json, opened_at, updated_at,
              last_matched_at, offline_only)
            select v.id, v.watchdog_id, v.device_guid, v.hostname, v.site_id, v.severity, 'open',
              v.title, v.message, v.sample_json, v.rule_summary_json, ${nowIso}::timestamptz,
              ${nowIso}::timestamptz, ${nowIso}::timestamptz, v.offline_only
            from jsonb_to_recordset(${
            tx.json(opens as never)
          }::jsonb) as v(id uuid, watchdog_id uuid,
              device_guid uuid, hostname text, site_id integer, severity text, title text, message text,
              sample_json jsonb, rule_summary_json jsonb, offline_only boolean)
            on conflict (watchdog_id, device_guid) where state <> 'resolved'
            do update set updated_at = excluded.updated_at, last_matched_at = excluded.last_matched_at
            returning id, watchdog_id, device_guid, (xmax = 0) as inserted`;
          for (const r of rows) {
            const k = key(r.watchdog_id, r.device_guid.toUpperCase());
            // Another instance opened it a moment ago: point at that one; it announced it
            // and ran its actions.
            if (r.inserted) {
              opened.set(k, r.id);
              written.push({ id: r.id, change: "opened" });
            }
            const rec = stateOf.get(k);
            if (rec) rec.current_incident_id = r.id;
          }
        }
        if (refreshes.length) {
          await tx`
            update watchdog_incidents i set trigger_count = i.trigger_count + v.inc,
              message = v.message, sample_json = v.sample_json, rule_summary_json = v.rule_summary_json,
              last_matched_at = ${nowIso}::timestamptz, updated_at = ${nowIso}::timestamptz
            from jsonb_to_recordset(${tx.json(refreshes as never)}::jsonb)
              as v(id uuid, inc integer, message text, sample_json jsonb, rule_summary_json jsonb)
            where i.id = v.id`;
          for (const r of refreshes) {
            if (r.inc) written.push({ id: r.id as string, change: "retriggered" });
          }
        }
        const changedSeverity = severities.filter((v) => !stale.has(v.key));
        if (changedSeverity.length) {
          const rows = await tx<{ id: string; previous: Severity }[]>`
            update watchdog_incidents i set severity = v.severity, updated_at = ${nowIso}::timestamptz
            from jsonb_to_recordset(${
            tx.json(changedSeverity as never)
          }::jsonb) as v(id uuid, severity text, previous text)
            where i.id = v.id and i.state <> 'resolved' and i.severity <> v.severity
            returning i.id, v.previous`;
          for (const r of rows) {
            written.push({ id: r.id, change: "severity_changed", previous_severity: r.previous });
            const c = changedSeverity.find((v) => v.id === r.id)!;
            const [pid, guid] = c.key.split("|") as [string, string];
            const s = devices.get(guid);
            changes.push({
              incident_id: r.id,
              watchdog_id: pid,
              device_guid: guid,
              hostname: s?.hostname ?? "",
              site_id: s?.siteId ?? null,
              change: "severity_changed",
            });
          }
        }
        if (deletes.length) {
          await tx`
            delete from watchdog_device_state s
            using jsonb_to_recordset(${
            tx.json(deletes as never)
          }::jsonb) as v(watchdog_id uuid, device_guid uuid)
            where s.watchdog_id = v.watchdog_id and s.device_guid = v.device_guid`;
        }
        if (upserts.length) {
          await tx`
            insert into watchdog_device_state (watchdog_id, device_guid, state, consecutive_matches,
              first_match_at, last_match_at, clear_since, last_sample_json, current_incident_id,
              last_action_at, held_until, updated_at)
            select v.watchdog_id, v.device_guid, v.state, v.consecutive_matches, v.first_match_at,
              v.last_match_at, v.clear_since, v.last_sample_json, v.current_incident_id,
              v.last_action_at, v.held_until, ${nowIso}::timestamptz
            from jsonb_to_recordset(${tx.json(upserts as never)}::jsonb) as v(watchdog_id uuid,
              device_guid uuid, state text, consecutive_matches integer, first_match_at timestamptz,
              last_match_at timestamptz, clear_since timestamptz, last_sample_json jsonb,
              current_incident_id uuid, last_action_at timestamptz, held_until timestamptz)
            on conflict (watchdog_id, device_guid) do update set state = excluded.state,
              consecutive_matches = excluded.consecutive_matches, first_match_at = excluded.first_match_at,
              last_match_at = excluded.last_match_at, clear_since = excluded.clear_since,
              last_sample_json = excluded.last_sample_json,
              current_incident_id = excluded.current_incident_id,
              last_action_at = excluded.last_action_at, held_until = excluded.held_until,
              updated_at = excluded.updated_at`;
        }
        await this.d.hooks?.run(tx, written, now);
      });
    }
    if (stale.size) {
      stats.concurrent = stale.size;
      fires.splice(0, fires.length, ...fires.filter((f) => !stale.has(f.key)));
      changes.splice(
        0,
        changes.length,
        ...changes.filter((c) =>
          c.change !== "retriggered" ||
          !stale.has(key(c.watchdog_id, c.device_guid.toUpperCase()))
        ),
      );
    }
    stats.resolved = resolves.length;
    stats.phases.write = performance.now() - writeStart;
    for (const [k, id] of opened) {
      const [pid, guid] = k.split("|") as [string, string];
      const s = devices.get(guid)!;
      stats.opened++;
      changes.push({
        incident_id: id,
        watchdog_id: pid,
        device_guid: guid,
        hostname: s.hostname,
        site_id: s.siteId,
        change: "opened",
      });
    }

    // ---- actions, after the transaction (they talk to agents and the scheduler)
    for (const f of fires) {
      const incidentId = opened.get(f.key) ?? incidents.get(f.key)?.id;
      if (!incidentId) continue;
      const s = devices.get(f.guid)!;
      const outcomes = await this.d.actions.run(f.policy.actions.actions, {
        incidentId,
        watchdogId: f.policy.id,
        watchdogName: f.policy.name,
        severity: f.policy.severity,
        deviceGuid: f.guid,
        hostname: s.hostname,
        siteId: s.siteId,
        summary: f.summary,
      });
      stats.actions += outcomes.length;
      await this.recordActions(incidentId, outcomes);
    }
    // Opened inside a cooldown: say so on the incident.
    const fired = new Set(fires.map((f) => f.key));
    for (const [k, id] of opened) {
      if (fired.has(k)) continue;
      const p = policies.find((x) => k.startsWith(`${x.id}|`))!;
      if (!p.actions.actions.length) continue;
      await this.recordActions(id, [{
        type: p.actions.actions[0]!.type,
        status: "skipped",
        at: nowIso,
        detail: "cooldown",
      }]);
    }
    if (changes.length) await this.onChanges(changes);
    stats.ms = performance.now() - started;
    return stats;
  }

  /** Appends action outcomes to an incident. */
  async recordActions(incidentId: string, outcomes: ActionOutcome[]): Promise<void> {
    await this.d.sql`
      update watchdog_incidents set action_summary_json = action_summary_json || ${
      this.d.sql.json(outcomes as never)
    }::jsonb where id = ${incidentId}`;
  }

  async #windows(
    devices: { guid: string; siteId: number | null }[],
    now: number,
  ): Promise<Map<string, ActiveWindow>> {
    const scheduler = this.d.scheduler();
    if (!scheduler || !devices.length) return new Map();
    try {
      const found = await scheduler.devicesInWindow(devices, now);
      const out = new Map<string, ActiveWindow>();
      for (const [g, w] of found) out.set(g.toUpperCase(), w);
      return out;
    } catch (err) {
      this.d.log.warn(`maintenance windows unavailable: ${(err as Error).message}`);
      return new Map();
    }
  }

  /**
   * Resolves every unresolved incident of a policy and forgets its device states (the
   * policy was disabled, archived or re-targeted to nothing).
   */
  async retire(policyId: string, reason: string): Promise<IncidentChange[]> {
    return await this.serialize(async () => {
      const now = this.d.clock.now();
      const nowIso = new Date(now).toISOString();
      const rows = await this.d.sql.begin(async (tx) => {
        const rows = await tx<
          { id: string; device_guid: string; hostname: string; site_id: number | null }[]
        >`
          update watchdog_incidents set state = 'resolved', resolved_at = ${nowIso}::timestamptz,
            resolution_reason = ${reason}, updated_at = ${nowIso}::timestamptz
          where watchdog_id = ${policyId} and state <> 'resolved'
          returning id, device_guid, hostname, site_id`;
        await tx`delete from watchdog_device_state where watchdog_id = ${policyId}`;
        await this.d.hooks?.run(
          tx,
          rows.map((r) => ({ id: r.id, change: "resolved" as const, reason })),
          now,
        );
        return rows;
      });
      const changes = rows.map((r): IncidentChange => ({
        incident_id: r.id,
        watchdog_id: policyId,
        device_guid: r.device_guid.toUpperCase(),
        hostname: r.hostname,
        site_id: r.site_id,
        change: "resolved",
        reason,
      }));
      if (changes.length) await this.onChanges(changes);
      return changes;
    });
  }
}

/**
 * The watchdogs service: policy management with site scope, preview, incidents and
 * their operator actions, per-device overrides and the device view. Routes call this;
 * every method takes the caller's principal and enforces scope itself.
 *
 * @module
 */
import { canSeeSite, type Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, notFound } from "../../core/errors.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { AgentChannel } from "../realtime/mod.ts";
import { type EvalStats, Evaluator, type IncidentChange } from "./evaluator.ts";
import type { IncidentHooks } from "./incident_hooks.ts";
import { combine } from "./rules.ts";
import type { Policy, PolicyInput } from "./schemas.ts";
import type { PolicyStore } from "./store.ts";

/** An incident as the API shows it. */
export interface IncidentView {
  id: string;
  watchdog_id: string;
  watchdog_name: string;
  device_guid: string;
  hostname: string;
  site_id: number | null;
  severity: string;
  state: "open" | "suppressed" | "resolved";
  title: string;
  message: string;
  sample: unknown;
  rule_summary: unknown;
  action_summary: unknown;
  opened_at: string;
  updated_at: string;
  last_matched_at: string | null;
  resolved_at: string | null;
  resolution_reason: string | null;
  suppressed_reason: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  trigger_count: number;
}

interface IncidentRow {
  id: string;
  watchdog_id: string;
  watchdog_name: string;
  device_guid: string;
  hostname: string;
  site_id: number | null;
  severity: string;
  state: "open" | "suppressed" | "resolved";
  title: string;
  message: string;
  sample_json: unknown;
  rule_summary_json: unknown;
  action_summary_json: unknown;
  opened_at: Date;
  updated_at: Date;
  last_matched_at: Date | null;
  resolved_at: Date | null;
  resolution_reason: string | null;
  suppressed_reason: string | null;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  trigger_count: number;
}

const isoOrNull = (d: Date | null) => d?.toISOString() ?? null;

const toIncident = (r: IncidentRow): IncidentView => ({
  id: r.id,
  watchdog_id: r.watchdog_id,
  watchdog_name: r.watchdog_name,
  device_guid: r.device_guid.toUpperCase(),
  hostname: r.hostname,
  site_id: r.site_id,
  severity: r.severity,
  state: r.state,
  title: r.title,
  message: r.message,
  sample: r.sample_json,
  rule_summary: r.rule_summary_json,
  action_summary: r.action_summary_json,
  opened_at: r.opened_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
  last_matched_at: isoOrNull(r.last_matched_at),
  resolved_at: isoOrNull(r.resolved_at),
  resolution_reason: r.resolution_reason,
  suppressed_reason: r.suppressed_reason,
  acknowledged_at: isoOrNull(r.acknowledged_at),
  acknowledged_by: r.acknowledged_by,
  trigger_count: r.trigger_count,
});

/** Options of {@link WatchdogService}. */
export interface WatchdogServiceOptions {
  sql: Sql;
  clock: Clock;
  store: PolicyStore;
  evaluator: Evaluator;
  inventory: InventoryService;
  channel: AgentChannel;
  staleMs: number;
  /** Run in the transaction of an operator's incident change (acknowledge, suppress, re-open). */
  hooks?: IncidentHooks;
}

/** Policies, incidents, overrides. */
export class WatchdogService {
  readonly #o: WatchdogServiceOptions;

  constructor(o: WatchdogServiceOptions) {
    this.#o = o;
    o.evaluator.onChanges = (changes) => this.announce(changes);
  }

  get evaluator(): Evaluator {
    return this.#o.evaluator;
  }

  // ------------------------------------------------------------ scope

  /** A policy is visible when it is not bound to sites the principal cannot see. */
  visible(p: Principal, w: Pick<Policy, "site_mode" | "site_ids">): boolean {
    if (p.sites === "all" || w.site_mode !== "specific_sites") return true;
    return w.site_ids.every((id) => canSeeSite(p, id));
  }

  #assertSites(p: Principal, input: PolicyInput): void {
    if (input.site_mode === "specific_sites" && !input.site_ids.length) {
      throw badRequest("site_ids_required", "specific_sites needs at least one site id");
    }
    if (!input.site_ids.every((id) => canSeeSite(p, id))) {
      throw notFound("a listed site does not exist");
    }
  }

  // ------------------------------------------------------------ policies

  async list(p: Principal, archived: boolean): Promise<Policy[]> {
    return (await this.#o.store.list(archived)).filter((w) => this.visible(p, w));
  }

  async get(p: Principal, id: string): Promise<Policy> {
    const w = await this.#o.store.get(id);
    if (!this.visible(p, w)) throw notFound(`no watchdog ${id}`);
    return w;
  }

  /** Stores a policy and evaluates it at once (upstream: saving re-evaluates). */
  async create(p: Principal, input: PolicyInput): Promise<Policy> {
    this.#assertSites(p, input);
    const w = await this.#o.store.create(input, p.name);
    await this.#afterSave(w);
    return await this.#o.store.get(w.id);
  }

  async update(p: Principal, id: string, input: PolicyInput): Promise<Policy> {
    await this.get(p, id);
    this.#assertSites(p, input);
    const w = await this.#o.store.update(id, input, p.name);
    await this.#afterSave(w);
    return await this.#o.store.get(id);
  }

  async archive(p: Principal, id: string, archived: boolean): Promise<Policy> {
    await this.get(p, id);
    const w = await this.#o.store.archive(id, archived, p.name);
    await this.#afterSave(w);
    return w;
  }

  async remove(p: Principal, id: string): Promise<void> {
    await this.get(p, id);
    await this.#o.store.remove(id);
  }

  async #afterSave(w: Policy): Promise<void> {
    if (!w.enabled || w.archived) {
      await this.#o.evaluator.retire(w.id, w.archived ? "watchdog_archived" : "watchdog_disabled");
      return;
    }
    await this.#o.evaluator.evaluate([w]);
    await this.#o.store.evaluated([w.id], this.#o.clock.now());
  }

  /** Evaluates the policies whose interval has elapsed (the cluster loop). */
  async runDue(): Promise<EvalStats | null> {
    const now = this.#o.clock.now();
    const due = (await this.#o.store.active()).filter((w) =>
      !w.last_evaluated_at ||
      now - Date.parse(w.last_evaluated_at) >= w.evaluation_interval_seconds * 1000 - 1000
    );
    await this.#o.sql`delete from watchdog_device_overrides where expires_at <= ${new Date(now)}`;
    if (!due.length) return null;
    const stats = await this.#o.evaluator.evaluate(due);
    await this.#o.store.evaluated(due.map((w) => w.id), now);
    return stats;
  }

  /** Re-evaluates every active policy for these devices (telemetry arrived). */
  async runFor(guids: string[]): Promise<EvalStats> {
    return await this.#o.evaluator.evaluate(await this.#o.store.active(), guids);
  }

  /** Evaluates every active policy over every device now. */
  async runAll(): Promise<EvalStats> {
    const all = await this.#o.store.active();
    const stats = await this.#o.evaluator.evaluate(all);
    await this.#o.store.evaluated(all.map((w) => w.id), this.#o.clock.now());
    return stats;
  }

  /** Evaluates rules without touching state: what would match now. */
  async preview(p: Principal, input: PolicyInput) {
    this.#assertSites(p, input);
    const ev = this.#o.evaluator;
    const now = this.#o.clock.now();
    const devices = await ev.samples([input]);
    const policy: Policy = {
      ...input,
      id: "00000000-0000-0000-0000-000000000000",
      last_edited_by: null,
      created_at: new Date(now).toISOString(),
      updated_at: new Date(now).toISOString(),
      last_evaluated_at: null,
    };
    const targets = await ev.targets(input, devices.keys(), new Map(), p);
    const sites = new Map<number, string>();
    for (
      const r of await this.#o.sql<{ id: number; name: string }[]>`select id, name from sites`
    ) sites.set(r.id, r.name);
    const rows = [];
    let matched = 0;
    for (const g of targets) {
      const s = devices.get(g);
      if (!s || !canSeeSite(p, s.siteId) || !Evaluator.inSites(input, s.siteId)) continue;
      const results = Evaluator.results(policy, s, now, this.#o.staleMs, null);
      const verdict = combine(input.criteria.match_mode, results);
      if (verdict === "matched") matched++;
      rows.push({
        guid: g,
        hostname: s.hostname,
        site: s.siteId === null ? null : sites.get(s.siteId) ?? null,
        site_id: s.siteId,
        status: s.presence ?? this.#o.channel.state(g),
        state: verdict === "stale" ? "stale_data" : verdict === "matched" ? "triggered" : "normal",
        matched: verdict === "matched",
        sample: {
          results: results.map((r) => ({
            type: r.type,
            matched: r.matched,
            stale: !!r.stale,
            summary: r.summary,
            sample: r.sample,
          })),
        },
      });
    }
    rows.sort((a, b) => a.hostname.localeCompare(b.hostname));
    return { device_count: rows.length, matched_count: matched, devices: rows.slice(0, 1000) };
  }

  // ------------------------------------------------------------ incidents

  #incidentQuery(where: ReturnType<Sql["unsafe"]>, limit: number) {
    const sql = this.#o.sql;
    return sql<IncidentRow[]>`
      select i.*, w.name as watchdog_name from watchdog_incidents i
      join watchdogs w on w.id = i.watchdog_id
      where ${where} order by i.opened_at desc, i.resolved_at desc nulls first, i.id limit ${limit}`;
  }

  #scope(p: Principal) {
    const sql = this.#o.sql;
    return p.sites === "all" ? sql`true` : sql`i.site_id = any(${[...p.sites]}::int[])`;
  }

  /** Incidents in scope, filtered by state, with counts per state. */
  async incidents(
    p: Principal,
    q: {
      state: "open" | "suppressed" | "resolved" | "all";
      watchdog_id?: string;
      device_guid?: string;
      limit: number;
    },
  ) {
    const sql = this.#o.sql;
    const extra = sql`${this.#scope(p)}
      ${q.watchdog_id ? sql`and i.watchdog_id = ${q.watchdog_id}` : sql``}
      ${q.device_guid ? sql`and i.device_guid = ${q.device_guid}` : sql``}`;
    const rows = await this.#incidentQuery(
      q.state === "all" ? extra : sql`${extra} and i.state = ${q.state}`,
      q.limit,
    );
    const counts = { open: 0, suppressed: 0, resolved: 0 };
    for (
      const r of await sql<{ state: keyof typeof counts; n: number }[]>`
        select i.state, count(*)::int as n from watchdog_incidents i where ${extra} group by i.state`
    ) counts[r.state] = r.n;
    return { items: rows.map(toIncident), counts };
  }

  async #incident(p: Principal, id: string): Promise<IncidentView> {
    const [r] = await this.#incidentQuery(this.#o.sql`i.id = ${id}`, 1);
    if (!r || !canSeeSite(p, r.site_id)) throw notFound(`no incident ${id}`);
    return toIncident(r);
  }

  async acknowledge(p: Principal, id: string): Promise<IncidentView> {
    const i = await this.#incident(p, id);
    if (i.state === "resolved") throw conflict("incident_resolved", "the incident is resolved");
    const now = new Date(this.#o.clock.now());
    await this.#o.sql.begin(async (tx) => {
      // Only the first acknowledgement is news for the write hooks.
      const [r] = await tx<{ was: Date | null }[]>`
        select acknowledged_at as was from watchdog_incidents where id = ${id} for update`;
      await tx`
        update watchdog_incidents set acknowledged_at = ${now}, acknowledged_by = ${p.name},
          updated_at = ${now} where id = ${id}`;
      if (r && !r.was) await this.#o.hooks?.run(tx, [{ id, change: "acknowledged" }], +now);
    });
    await this.#announceOne(i, "acknowledged");
    return await this.#incident(p, id);
  }

  async setState(
    p: Principal,
    id: string,
    state: "open" | "suppressed",
    reason: string,
  ): Promise<IncidentView> {
    const i = await this.#incident(p, id);
    if (i.state === "resolved") throw conflict("incident_resolved", "the incident is resolved");
    if (state === "suppressed" && !reason) {
      throw badRequest("reason_required", "suppressing an incident needs a reason");
    }
    const now = new Date(this.#o.clock.now());
    await this.#o.sql.begin(async (tx) => {
      const [r] = await tx<{ was: string }[]>`
        select state as was from watchdog_incidents where id = ${id} for update`;
      await tx`
        update watchdog_incidents set state = ${state},
          suppressed_reason = ${state === "suppressed" ? reason : null}, updated_at = ${now}
        where id = ${id} and state <> 'resolved'`;
      if (r && r.was !== "resolved" && r.was !== state) {
        await this.#o.hooks?.run(tx, [{
          id,
          change: state === "suppressed" ? "suppressed" : "reopened",
          ...(state === "suppressed" ? { reason } : {}),
        }], +now);
      }
    });
    await this.#announceOne(i, state === "suppressed" ? "suppressed" : "reopened");
    return await this.#incident(p, id);
  }

  // ------------------------------------------------------------ devices

  /** Incidents, assignments (policies targeting the device) and overrides of one device. */
  async deviceView(p: Principal, guid: string) {
    const d = await this.#o.inventory.visibleDevice(p, guid);
    const g = d.guid.toUpperCase();
    const sql = this.#o.sql;
    const incidents = await this.#incidentQuery(sql`i.device_guid = ${g}`, 100);
    const assignments = [];
    const states = new Map<string, Record<string, unknown>>();
    for (
      const r of await sql<
        {
          watchdog_id: string;
          state: string;
          consecutive_matches: number;
          last_sample_json: unknown;
          current_incident_id: string | null;
          updated_at: Date;
        }[]
      >`
        select watchdog_id, state, consecutive_matches, last_sample_json, current_incident_id, updated_at
        from watchdog_device_state where device_guid = ${g}`
    ) states.set(r.watchdog_id, r);
    for (const w of await this.#o.store.active()) {
      if (!Evaluator.inSites(w, d.site_id)) continue;
      const targets = await this.#o.evaluator.targets(w, [g]);
      if (!targets.has(g)) continue;
      const s = states.get(w.id) as
        | {
          state: string;
          consecutive_matches: number;
          last_sample_json: unknown;
          current_incident_id: string | null;
        }
        | undefined;
      assignments.push({
        watchdog_id: w.id,
        name: w.name,
        severity: w.severity,
        state: s?.state ?? "normal",
        consecutive_matches: s?.consecutive_matches ?? 0,
        current_incident_id: s?.current_incident_id ?? null,
        last_sample: s?.last_sample_json ?? null,
      });
    }
    const overrides = await sql<
      {
        id: string;
        watchdog_id: string;
        state: string;
        reason: string;
        created_by: string | null;
        created_at: Date;
        expires_at: Date | null;
      }[]
    >`
      select id::text, watchdog_id, state, reason, created_by, created_at, expires_at
      from watchdog_device_overrides where device_guid = ${g}
        and (expires_at is null or expires_at > ${new Date(this.#o.clock.now())})
      order by created_at`;
    return {
      device_guid: g,
      hostname: d.hostname,
      site_id: d.site_id,
      incidents: incidents.map(toIncident),
      assignments,
      overrides: overrides.map((o) => ({
        id: o.id,
        watchdog_id: o.watchdog_id,
        state: o.state,
        reason: o.reason,
        created_by: o.created_by,
        created_at: o.created_at.toISOString(),
        expires_at: isoOrNull(o.expires_at),
      })),
    };
  }

  /** Sets or clears a device override, then re-evaluates the device. */
  async setOverride(
    p: Principal,
    guid: string,
    body: {
      watchdog_id: string;
      state: "suppressed" | "disabled" | "clear";
      reason: string;
      expires_at?: string | null;
    },
  ) {
    const d = await this.#o.inventory.visibleDevice(p, guid);
    const g = d.guid.toUpperCase();
    await this.get(p, body.watchdog_id);
    const now = new Date(this.#o.clock.now());
    const expires = body.expires_at ? new Date(body.expires_at) : null;
    if (expires && expires <= now) {
      throw badRequest("expires_in_past", "expires_at must be in the future");
    }
    const sql = this.#o.sql;
    if (body.state === "clear") {
      await sql`delete from watchdog_device_overrides where watchdog_id = ${body.watchdog_id} and device_guid = ${g}`;
    } else {
      await sql`
        insert into watchdog_device_overrides (watchdog_id, device_guid, hostname, site_id, state,
          reason, created_by, created_at, updated_at, expires_at)
        values (${body.watchdog_id}, ${g}, ${d.hostname}, ${d.site_id}, ${body.state}, ${body.reason},
          ${p.name}, ${now}, ${now}, ${expires})
        on conflict (watchdog_id, device_guid) do update set state = excluded.state,
          reason = excluded.reason, created_by = excluded.created_by, updated_at = excluded.updated_at,
          expires_at = excluded.expires_at, hostname = excluded.hostname, site_id = excluded.site_id`;
    }
    await this.runFor([g]);
    await this.#o.channel.emitToOperators("incidents", "device_watchdogs_changed", {
      device_guid: g,
      hostname: d.hostname,
      watchdog_id: body.watchdog_id,
      override: body.state,
    }, d.site_id);
    return await this.deviceView(p, g);
  }

  // ------------------------------------------------------------ events

  async #announceOne(i: IncidentView, change: string): Promise<void> {
    await this.#o.channel.emitToOperators("incidents", "watchdog_incidents_changed", {
      items: [{
        incident_id: i.id,
        watchdog_id: i.watchdog_id,
        device_guid: i.device_guid,
        hostname: i.hostname,
        site_id: i.site_id,
        change,
      }],
      count: 1,
    }, i.site_id);
  }

  /** One event per site with the changes of a run (at most 100 items each, plus a count). */
  async announce(changes: IncidentChange[]): Promise<void> {
    const bySite = new Map<number | null, IncidentChange[]>();
    for (const c of changes) {
      const list = bySite.get(c.site_id) ?? [];
      list.push(c);
      bySite.set(c.site_id, list);
    }
    for (const [site, list] of bySite) {
      await this.#o.channel.emitToOperators("incidents", "watchdog_incidents_changed", {
        items: list.slice(0, 100),
        count: list.length,
      }, site);
    }
  }
}

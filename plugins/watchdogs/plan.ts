/**
 * The plan of a watchdog evaluation: from what the read phase loaded (telemetry samples,
 * targets, stored states, unresolved incidents, overrides, maintenance windows) to what
 * the write phase stores and the act phase does. A pure function of its input, so every
 * decision of an evaluation can be tested without a database (plan_test.ts).
 *
 * @module
 */
import type { ActiveWindow } from "../scheduler/api.ts";
import type { Severity } from "./api.ts";
import type { IncidentChange } from "./evaluator.ts";
import { combine, type DeviceSample, evaluateRule, type RuleResult } from "./rules.ts";
import type { DeviceState, Policy } from "./schemas.ts";
import { type ActiveIncident, type Hold, step, type StoredState } from "./state.ts";

/** A stored per-device state as the read phase loads it. */
export interface StateRow {
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

/** An unresolved incident as the read phase loads it. */
export type LoadedIncident = ActiveIncident & {
  hostname: string;
  site_id: number | null;
  severity: Severity;
};

/** What the read phase loaded; maps are keyed by {@link key} (policy id | upper-case GUID). */
export interface PlanInput {
  policies: readonly Policy[];
  /** Policy id → the GUIDs it targets (active devices in its sites). */
  targeted: ReadonlyMap<string, ReadonlySet<string>>;
  devices: ReadonlyMap<string, DeviceSample>;
  states: ReadonlyMap<string, StateRow>;
  incidents: ReadonlyMap<string, LoadedIncident>;
  overrides: ReadonlyMap<string, Hold>;
  /** GUID → the maintenance window it is in. */
  windows: ReadonlyMap<string, ActiveWindow>;
  now: number;
  staleMs: number;
  /** Ids of incidents that open (default: random UUIDs). */
  newId?: () => string;
}

/** What an evaluation writes and does. */
export interface Plan {
  /** State rows to insert or update (with their pair key). */
  upserts: Record<string, unknown>[];
  /** State rows to delete. */
  deletes: { watchdog_id: string; device_guid: string }[];
  /** Incidents to open. */
  opens: Record<string, unknown>[];
  /** Incidents to refresh (retriggered). */
  refreshes: Record<string, unknown>[];
  /** Pairs that open, retrigger or fire, with the state version this evaluation read. */
  eventful: Map<string, string | null>;
  resolves: { id: string; reason: string }[];
  /** Unresolved incidents whose policy's severity was changed since they opened. */
  severities: { id: string; severity: Severity; previous: Severity; key: string }[];
  /** Pairs whose actions run after the write. */
  fires: { policy: Policy; key: string; guid: string; summary: string }[];
  changes: IncidentChange[];
  /** The state record written for a pair. */
  stateOf: Map<string, Record<string, unknown>>;
  /** Policy × device pairs judged. */
  pairs: number;
  retriggered: number;
}

export const ms = (d: Date | null): number | null => (d ? d.getTime() : null);
export const iso = (n: number | null): string | null =>
  n === null ? null : new Date(n).toISOString();
/** The key of a (policy, device) pair. */
export const key = (policyId: string, guid: string): string => `${policyId}|${guid}`;

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

/** Rule results of one device under one policy (the offline clock restarts after a hold). */
export function ruleResults(
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

/** Decides every (policy, device) pair of an evaluation: the plan phase. */
export function planEvaluation(input: PlanInput): Plan {
  const { policies, targeted, devices, states, incidents, overrides, windows, now, staleMs } =
    input;
  const newId = input.newId ?? (() => crypto.randomUUID());
  let pairs = 0;
  let retriggered = 0;
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
      pairs++;
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
      const results = ruleResults(p, s, now, staleMs, prev?.heldUntil ?? null);
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
          id: newId(),
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
          retriggered++;
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
  return {
    upserts,
    deletes,
    opens,
    refreshes,
    eventful,
    resolves,
    severities,
    fires,
    changes,
    stateOf,
    pairs,
    retriggered,
  };
}

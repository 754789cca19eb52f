/**
 * Liveness for many agents: `last_seen` lives in memory and reaches the database in one
 * statement per flush (`UPDATE … FROM jsonb_to_recordset`), together with the telemetry
 * fields heartbeats carry. Online / offline / overdue are inventory's derivation
 * (plugins/inventory/presence.ts) over what this instance knows: an open socket counts
 * as heard from now, and after a restart devices get a grace period. This class is that
 * derivation's live source, so the device list, filters and watchdogs see the same state
 * the operator socket announces. Transitions are found by a timer sweep (never by reading
 * rows) and announced at most once per device per throttle window.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import {
  type LiveSource,
  type Presence,
  presenceOf,
  type PresenceThresholds,
} from "../inventory/mod.ts";

/** Derived agent state (inventory's presence). */
export type AgentState = Presence;

/** Telemetry fields a heartbeat may update (columns of `devices`). */
export interface HeartbeatFields {
  operating_system?: string;
  last_user?: string;
  uptime?: number;
  domain?: string;
  last_reboot?: string;
  cpu_percent?: number;
  memory_percent?: number;
  external_ip?: string;
  internal_ip?: string;
  device_type?: string;
  agent_hash?: string;
  /** Merged (shallow, per key) into `devices.details`. */
  details?: Record<string, unknown>;
}

interface Pending extends HeartbeatFields {
  last_seen: number;
}

interface Known {
  lastSeen: number;
  /** Heard from through this instance since it started: its changes are ours to announce. */
  local?: boolean;
  siteId: number | null;
  hostname: string;
  state?: AgentState;
  announcedAt?: number;
}

/** A state change found by {@link Liveness.sweep}. */
export interface StateChange {
  guid: string;
  hostname: string;
  site_id: number | null;
  state: AgentState;
  previous: AgentState | null;
}

/** Options of {@link Liveness}. */
export interface LivenessOptions {
  sql: Sql;
  clock: Clock;
  /** Inventory's thresholds (BOREALIS_AGENT_OFFLINE_SECONDS, BOREALIS_AGENT_OVERDUE_SECONDS). */
  thresholds: PresenceThresholds;
  /** Minimum time between two announced changes of one device. */
  throttleMs: number;
  /** Is the agent's socket open on some instance? */
  connected: (guid: string) => boolean;
}

/** Tracks last_seen and derived state for every device this instance knows. */
export class Liveness implements LiveSource {
  readonly #o: LivenessOptions;
  #pending = new Map<string, Pending>();
  #known = new Map<string, Known>();
  /** Devices seen within this window before the cluster went down get a grace period. */
  #graceFrom = 0;
  #graceUntil = 0;
  /** Statements issued by flushes (for tests and metrics). */
  flushStatements = 0;
  flushedRows = 0;

  constructor(o: LivenessOptions) {
    this.#o = o;
  }

  /**
   * Loads every device's last_seen and sets the restart grace: devices that were online
   * when the cluster was last alive count as seen at start-up, so they have a full offline
   * threshold to reconnect.
   */
  async load(lastAliveAt: number | null, startedAt: number): Promise<void> {
    const rows = await this.#o.sql<
      { guid: string; hostname: string; site_id: number | null; last_seen: Date | null }[]
    >`
      select guid, hostname, site_id, last_seen from devices`;
    for (const r of rows) {
      this.#known.set(r.guid.toUpperCase(), {
        lastSeen: r.last_seen ? r.last_seen.getTime() : 0,
        siteId: r.site_id,
        hostname: r.hostname,
      });
    }
    if (lastAliveAt !== null && startedAt - lastAliveAt > 0) {
      this.#graceFrom = lastAliveAt - this.#o.thresholds.offlineMs;
      this.#graceUntil = startedAt;
    }
    for (const [guid, k] of this.#known) k.state = this.state(guid);
  }

  /** Records that a device was heard from now (with optional telemetry fields). */
  touch(
    guid: string,
    meta: { hostname: string; siteId: number | null },
    fields?: HeartbeatFields,
  ): void {
    const now = this.#o.clock.now();
    const prev = this.#pending.get(guid);
    const merged: Pending = prev
      ? { ...prev, ...fields, last_seen: now }
      : { ...fields, last_seen: now };
    if (prev?.details && fields?.details) merged.details = { ...prev.details, ...fields.details };
    this.#pending.set(guid, merged);
    const k = this.#known.get(guid);
    if (k) {
      k.lastSeen = now;
      k.hostname = meta.hostname;
      k.siteId = meta.siteId;
      k.local = true;
    } else {
      // Never heard from before: it was offline until now.
      this.#known.set(guid, {
        lastSeen: now,
        hostname: meta.hostname,
        siteId: meta.siteId,
        local: true,
        state: "offline",
      });
    }
  }

  /** Forgets a device (purged). */
  forget(guid: string): void {
    this.#known.delete(guid);
    this.#pending.delete(guid);
  }

  /** Last time the device was heard from (ms), or null. */
  lastSeen(guid: string): number | null {
    const k = this.#known.get(guid);
    return k && k.lastSeen ? k.lastSeen : null;
  }

  /**
   * The last sign of life of a device: the stored `last_seen` (if given), what this
   * instance heard since, now while its socket is open anywhere; a time inside the
   * restart grace counts as the end of the grace.
   */
  lastHeard(guid: string, stored: number | null = null): number | null {
    if (this.#o.connected(guid)) return this.#o.clock.now();
    const seen = Math.max(stored ?? 0, this.#known.get(guid)?.lastSeen ?? 0);
    if (!seen) return null;
    return seen >= this.#graceFrom && seen < this.#graceUntil ? this.#graceUntil : seen;
  }

  /** The restart grace window, if any (for SQL that judges presence). */
  grace(): { from: number; until: number } | null {
    return this.#graceUntil > this.#graceFrom
      ? { from: this.#graceFrom, until: this.#graceUntil }
      : null;
  }

  /** Writes pending signs of life (for SQL that judges presence). */
  async sync(): Promise<void> {
    if (this.#pending.size) await this.flush();
  }

  /** Derived state now. */
  state(guid: string): AgentState {
    return presenceOf(this.lastHeard(guid), this.#o.clock.now(), this.#o.thresholds);
  }

  /**
   * Refreshes last_seen of devices not heard from through this instance from the
   * database (other instances flush theirs), before a cluster-wide sweep of them.
   */
  async refreshRemote(): Promise<void> {
    const rows = await this.#o.sql<
      { guid: string; hostname: string; site_id: number | null; last_seen: Date | null }[]
    >`
      select guid, hostname, site_id, last_seen from devices`;
    const present = new Set<string>();
    for (const r of rows) {
      const guid = r.guid.toUpperCase();
      present.add(guid);
      const k = this.#known.get(guid);
      const seen = r.last_seen ? r.last_seen.getTime() : 0;
      if (!k) this.#known.set(guid, { lastSeen: seen, hostname: r.hostname, siteId: r.site_id });
      else if (!k.local) {
        k.lastSeen = Math.max(k.lastSeen, seen);
        k.hostname = r.hostname;
        k.siteId = r.site_id;
      }
    }
    for (const guid of this.#known.keys()) {
      if (!present.has(guid) && !this.#pending.has(guid)) this.#known.delete(guid);
    }
  }

  /**
   * Finds state changes since the last sweep, throttled per device: of the devices heard
   * through this instance (`"local"`), or of all the others (`"remote"`, run by one
   * instance of the cluster after {@link refreshRemote}).
   */
  sweep(which: "local" | "remote" = "local"): StateChange[] {
    const now = this.#o.clock.now();
    const changes: StateChange[] = [];
    for (const [guid, k] of this.#known) {
      if (!!k.local !== (which === "local")) continue;
      const state = this.state(guid);
      if (state === k.state) continue;
      if (k.announcedAt !== undefined && now - k.announcedAt < this.#o.throttleMs) continue;
      changes.push({
        guid,
        hostname: k.hostname,
        site_id: k.siteId,
        state,
        previous: k.state ?? null,
      });
      k.state = state;
      k.announcedAt = now;
    }
    return changes;
  }

  /** Pending rows waiting for the next flush. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Writes every pending last_seen and heartbeat field in one statement. */
  async flush(): Promise<number> {
    if (!this.#pending.size) return 0;
    const batch = this.#pending;
    this.#pending = new Map();
    const rows = [...batch].map(([guid, p]) => ({
      ...p,
      guid,
      last_seen: new Date(p.last_seen).toISOString(),
    }));
    try {
      this.flushStatements++;
      await this.#o.sql`
        update devices d set
          last_seen = greatest(d.last_seen, v.last_seen),
          operating_system = coalesce(v.operating_system, d.operating_system),
          last_user = coalesce(v.last_user, d.last_user),
          uptime = coalesce(v.uptime, d.uptime),
          domain = coalesce(v.domain, d.domain),
          last_reboot = coalesce(v.last_reboot, d.last_reboot),
          cpu_percent = coalesce(v.cpu_percent, d.cpu_percent),
          memory_percent = coalesce(v.memory_percent, d.memory_percent),
          external_ip = coalesce(v.external_ip, d.external_ip),
          internal_ip = coalesce(v.internal_ip, d.internal_ip),
          device_type = coalesce(v.device_type, d.device_type),
          agent_hash = coalesce(v.agent_hash, d.agent_hash),
          details = case when v.details is null then d.details else d.details || v.details end
        from jsonb_to_recordset(${this.#o.sql.json(rows as never)}::jsonb) as v(
          guid uuid, last_seen timestamptz, operating_system text, last_user text, uptime bigint,
          domain text, last_reboot timestamptz, cpu_percent real, memory_percent real,
          external_ip text, internal_ip text, device_type text, agent_hash text, details jsonb)
        where d.guid = v.guid`;
      this.flushedRows += rows.length;
      return rows.length;
    } catch (err) {
      // Keep what failed for the next flush, unless newer values arrived meanwhile.
      for (const [guid, p] of batch) if (!this.#pending.has(guid)) this.#pending.set(guid, p);
      throw err;
    }
  }
}

/**
 * The one truth for "online". A device is `online` while its last sign of life is
 * younger than `BOREALIS_AGENT_OFFLINE_SECONDS` (an open agent socket counts as a sign of
 * life now), `offline` after that, `overdue` after `BOREALIS_AGENT_OVERDUE_SECONDS`.
 * The device list and detail (`presence`, and `status` Online/Offline), the list's
 * `presence` filter and the sites' online/offline/overdue counts, filters, watchdogs,
 * quick runs and the operator socket all derive it here, from the same two thresholds.
 *
 * `devices.last_seen` alone would lag: realtime keeps liveness in memory and writes it in
 * batches, and knows which sockets are open. So realtime attaches itself as the
 * {@link LiveSource}; without it (realtime not loaded) the stored column is the truth.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";

/** The presence states, in the order lists show them. */
export const PRESENCE_STATES = ["online", "offline", "overdue"] as const;

/** A device's presence. */
export type Presence = typeof PRESENCE_STATES[number];

/** The two thresholds, in milliseconds. */
export interface PresenceThresholds {
  offlineMs: number;
  overdueMs: number;
}

/**
 * The derivation itself: presence from the last sign of life (epoch ms, or null when the
 * device was never heard from), now, and the thresholds.
 */
export function presenceOf(
  lastHeard: number | null,
  now: number,
  t: PresenceThresholds,
): Presence {
  if (!lastHeard) return "offline";
  const age = now - lastHeard;
  if (age < t.offlineMs) return "online";
  if (age < t.overdueMs) return "offline";
  return "overdue";
}

/** What realtime knows that the `devices` table does not (yet). */
export interface LiveSource {
  /**
   * The freshest sign of life of a device given the stored `last_seen` (ms or null): what
   * was heard since the last write, now for an open socket, and the restart grace.
   */
  lastHeard(guid: string, stored: number | null): number | null;
  /** Writes what is held in memory to `devices.last_seen` (before SQL judges it). */
  sync(): Promise<void>;
  /**
   * After an engine restart, devices last seen in `[from, until)` count as seen at
   * `until` (they get one offline threshold to reconnect); null when there is no grace.
   */
  grace(): { from: number; until: number } | null;
}

type Fragment = ReturnType<Sql["unsafe"]>;

/** Presence for every reader: in memory for one device, as SQL for many. */
export class PresenceService {
  #source?: LiveSource;

  constructor(
    private readonly clock: Clock,
    readonly thresholds: PresenceThresholds,
  ) {}

  /** Makes `source` (realtime) part of every answer. */
  attach(source: LiveSource): void {
    if (this.#source) throw new Error("a live presence source is already attached");
    this.#source = source;
  }

  /** The last sign of life of a device whose stored `last_seen` is `stored`. */
  lastHeard(guid: string, stored: Date | number | null): number | null {
    const ms = stored === null ? null : typeof stored === "number" ? stored : stored.getTime();
    return this.#source ? this.#source.lastHeard(guid.toUpperCase(), ms) : ms;
  }

  /** A device's presence now, given its stored `last_seen`. */
  state(guid: string, stored: Date | number | null): Presence {
    return presenceOf(this.lastHeard(guid, stored), this.clock.now(), this.thresholds);
  }

  /** Writes pending signs of life, so SQL that judges presence reads them. */
  async sync(): Promise<void> {
    await this.#source?.sync();
  }

  /**
   * The same derivation in SQL, for queries over many devices: `'online'`, `'offline'` or
   * `'overdue'` from the column `column` (default `d.last_seen`). Call {@link sync} first.
   * An agent with an open socket has a fresh `last_seen` (realtime refreshes it while the
   * socket is open), so this agrees with {@link state} within one liveness flush.
   */
  sql(sql: Sql, column = "d.last_seen"): Fragment {
    const now = this.clock.now();
    const col = sql.unsafe(column);
    const g = this.#source?.grace() ?? null;
    const heard = g
      ? sql`(case when ${col} >= ${new Date(g.from)} and ${col} < ${new Date(g.until)}
          then ${new Date(g.until)}::timestamptz else ${col} end)`
      : col;
    return sql`(case when ${col} is null then 'offline'
      when ${heard} > ${new Date(now - this.thresholds.offlineMs)}::timestamptz then 'online'
      when ${heard} > ${new Date(now - this.thresholds.overdueMs)}::timestamptz then 'offline'
      else 'overdue' end)`;
  }
}

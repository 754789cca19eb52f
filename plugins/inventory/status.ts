/**
 * The one rule that turns a device's `last_seen` into online / offline / overdue for the
 * inventory's reads: a device row's state, the `status` filter of the device list, and
 * the per-site counts all come from here, as a value in memory and as the equivalent SQL
 * condition, so they cannot disagree.
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";

/** How long ago a device was heard from, in three steps. */
export type DeviceState = "online" | "offline" | "overdue";

/** The states, in the order lists show them. */
export const DEVICE_STATES = ["online", "offline", "overdue"] as const;

/** Thresholds of {@link DeviceStatusRule}. */
export interface StatusThresholds {
  /** Seen within this many seconds: online. */
  onlineSeconds: number;
  /** Not seen for this many seconds or more: overdue (never seen: offline). */
  overdueSeconds: number;
}

/** Derives a device's state from `last_seen` at a given time. */
export class DeviceStatusRule {
  constructor(readonly thresholds: StatusThresholds) {}

  #cutoffs(now: number) {
    return {
      online: new Date(now - this.thresholds.onlineSeconds * 1000),
      overdue: new Date(
        now - Math.max(this.thresholds.overdueSeconds, this.thresholds.onlineSeconds) * 1000,
      ),
    };
  }

  /** The state of a device last seen at `lastSeen` (ms or Date; null = never). */
  state(lastSeen: Date | number | null, now: number): DeviceState {
    if (lastSeen === null) return "offline";
    const seen = typeof lastSeen === "number" ? lastSeen : lastSeen.getTime();
    const c = this.#cutoffs(now);
    if (seen >= c.online.getTime()) return "online";
    if (seen < c.overdue.getTime()) return "overdue";
    return "offline";
  }

  /** The SQL condition for `state` on a `last_seen` column (the same boundaries as state()). */
  condition(sql: Sql, state: DeviceState, now: number, column = "d.last_seen") {
    const c = this.#cutoffs(now);
    const col = sql.unsafe(column);
    if (state === "online") return sql`${col} >= ${c.online}`;
    if (state === "overdue") return sql`${col} < ${c.overdue}`;
    return sql`(${col} is null or (${col} < ${c.online} and ${col} >= ${c.overdue}))`;
  }
}

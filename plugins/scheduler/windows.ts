/**
 * Maintenance windows: a cron expression (in a time zone) marks when a window opens,
 * a duration how long it stays open. A window applies to one site, to the devices of
 * one filter, or (neither) to every device. Jobs can be held to windows; the watchdogs
 * plugin asks {@link WindowService.devicesInWindow} to hold incidents back.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { FilterService } from "../inventory/mod.ts";
import type { ActiveWindow } from "./api.ts";
import { cronOf } from "./schedule.ts";

/** A window row. */
export interface WindowRow {
  id: string | number;
  name: string;
  cron: string;
  timezone: string;
  duration_minutes: number;
  site_id: number | null;
  filter_id: number | null;
  enabled: boolean;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const SYSTEM: Principal = { kind: "system", id: "scheduler", name: "scheduler", sites: "all" };

/** When the window containing `at` ends (epoch ms), or null when `at` is outside it. */
export function windowEndAt(
  w: Pick<WindowRow, "cron" | "timezone" | "duration_minutes">,
  at: number,
): number | null {
  const dur = w.duration_minutes * 60_000;
  const cron = cronOf(w.cron, w.timezone);
  let end: number | null = null;
  // Openings in (at - duration, at]; the latest-ending one wins.
  let t = new Date(at - dur);
  for (let i = 0; i < 10_000; i++) {
    const open = cron.nextRun(t);
    if (!open || open.getTime() > at) break;
    end = open.getTime() + dur;
    t = open;
  }
  return end;
}

/** Window storage and membership. */
export class WindowService {
  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly filters: FilterService,
  ) {}

  /** Every window (enabled or not). */
  list(): Promise<WindowRow[]> {
    return this.sql<WindowRow[]>`select * from maintenance_windows order by lower(name), id`;
  }

  /**
   * Which devices are inside an open window at `at`: one query for the windows, and one
   * filter resolution per open filter window (never one query per device).
   */
  async devicesInWindow(
    devices: { guid: string; siteId: number | null }[],
    at: number,
  ): Promise<Map<string, ActiveWindow>> {
    const out = new Map<string, ActiveWindow>();
    if (!devices.length) return out;
    const windows = await this.sql<WindowRow[]>`
      select * from maintenance_windows where enabled order by id`;
    const put = (guid: string, w: WindowRow, endsAt: number) => {
      const prev = out.get(guid);
      if (!prev || prev.endsAt < endsAt) {
        out.set(guid, { windowId: String(w.id), name: w.name, endsAt });
      }
    };
    for (const w of windows) {
      let endsAt: number | null;
      try {
        endsAt = windowEndAt(w, at);
      } catch {
        continue; // a stored expression that no longer parses never opens
      }
      if (endsAt === null) continue;
      if (w.filter_id !== null) {
        let members: Set<string>;
        try {
          const resolved = await this.filters.resolveById(w.filter_id, SYSTEM);
          members = new Set(resolved.map((d) => d.guid.toUpperCase()));
        } catch {
          continue;
        }
        for (const d of devices) if (members.has(d.guid.toUpperCase())) put(d.guid, w, endsAt);
      } else {
        for (const d of devices) {
          if (w.site_id === null || d.siteId === w.site_id) put(d.guid, w, endsAt);
        }
      }
    }
    return out;
  }

  /** Windows open now (for the API). */
  openNow(rows: WindowRow[]): Map<string, number> {
    const now = this.clock.now();
    const open = new Map<string, number>();
    for (const w of rows) {
      try {
        const end = w.enabled ? windowEndAt(w, now) : null;
        if (end !== null) open.set(String(w.id), end);
      } catch { /* never opens */ }
    }
    return open;
  }
}

/**
 * The incident write hooks other plugins register (see api.ts). The evaluator and the
 * incident routes call {@link IncidentHooks.run} at the end of their write, inside the
 * open transaction; it reads the changed incidents once and hands every hook the same
 * list. Without hooks it costs nothing.
 *
 * @module
 */
import type { TransactionSql } from "postgres";
import type {
  IncidentChangeKind,
  IncidentEvent,
  IncidentSnapshot,
  IncidentWriteHook,
  Severity,
} from "./api.ts";

/** A change as the writer knows it: which incident, what happened. */
export interface WrittenChange {
  id: string;
  change: IncidentChangeKind;
  reason?: string;
  previous_severity?: Severity;
}

interface SnapshotRow
  extends Omit<IncidentSnapshot, "opened_at" | "resolved_at" | "acknowledged_at" | "device_guid"> {
  device_guid: string;
  opened_at: Date;
  resolved_at: Date | null;
  acknowledged_at: Date | null;
}

/** Registered hooks. */
export class IncidentHooks {
  #hooks: IncidentWriteHook[] = [];

  add(hook: IncidentWriteHook): void {
    this.#hooks.push(hook);
  }

  get size(): number {
    return this.#hooks.length;
  }

  /** Reads the changed incidents in `tx` and runs every hook with them. */
  async run(tx: TransactionSql, changes: readonly WrittenChange[], at: number): Promise<void> {
    if (!this.#hooks.length || !changes.length) return;
    const ids = [...new Set(changes.map((c) => c.id))];
    const rows = await tx<SnapshotRow[]>`
      select i.id, i.watchdog_id, w.name as watchdog_name, i.device_guid, i.hostname, i.site_id,
        i.severity, i.state, i.title, i.message, i.trigger_count, i.opened_at, i.resolved_at,
        i.resolution_reason, i.acknowledged_at, i.acknowledged_by
      from watchdog_incidents i join watchdogs w on w.id = i.watchdog_id
      where i.id = any(${ids}::uuid[])`;
    const byId = new Map<string, IncidentSnapshot>();
    for (const r of rows) {
      byId.set(r.id, {
        ...r,
        device_guid: r.device_guid.toUpperCase(),
        opened_at: r.opened_at.toISOString(),
        resolved_at: r.resolved_at?.toISOString() ?? null,
        acknowledged_at: r.acknowledged_at?.toISOString() ?? null,
      });
    }
    const iso = new Date(at).toISOString();
    const events: IncidentEvent[] = [];
    for (const c of changes) {
      const incident = byId.get(c.id);
      if (!incident) continue;
      events.push({
        change: c.change,
        at: iso,
        ...(c.reason !== undefined ? { reason: c.reason } : {}),
        ...(c.previous_severity ? { previous_severity: c.previous_severity } : {}),
        incident,
      });
    }
    if (!events.length) return;
    for (const hook of this.#hooks) await hook(tx, events);
  }
}

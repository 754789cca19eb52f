/**
 * The watchdogs plugin's public contract: its service key, and the incident write hook
 * through which another plugin (alerts) records its own rows in the same transaction
 * as an incident change. Kept apart from the implementation so plugins that require
 * watchdogs code against this file only.
 *
 * @module
 */
import type { TransactionSql } from "postgres";
import { serviceKey } from "../../core/plugin.ts";
import type { WatchdogService } from "./service.ts";

/** Incident severities, lowest first. */
export type Severity = "info" | "warning" | "error";

/** What changed about an incident. */
export type IncidentChangeKind =
  | "opened"
  /** The open incident matched again after a clear spell (trigger_count + 1). */
  | "retriggered"
  /** The policy's severity was changed while the incident was unresolved. */
  | "severity_changed"
  | "acknowledged"
  | "suppressed"
  | "reopened"
  | "resolved";

/** An incident as it stands after the change (read inside the writing transaction). */
export interface IncidentSnapshot {
  id: string;
  watchdog_id: string;
  watchdog_name: string;
  /** Upper case. */
  device_guid: string;
  hostname: string;
  site_id: number | null;
  severity: Severity;
  state: "open" | "suppressed" | "resolved";
  title: string;
  message: string;
  trigger_count: number;
  opened_at: string;
  resolved_at: string | null;
  resolution_reason: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
}

/** One written incident change. */
export interface IncidentEvent {
  change: IncidentChangeKind;
  /** When it was written (the engine clock), ISO 8601. */
  at: string;
  /** Resolution or suppression reason. */
  reason?: string;
  /** For `severity_changed`: the severity before. */
  previous_severity?: Severity;
  incident: IncidentSnapshot;
}

/**
 * Runs inside the transaction that writes incident changes, after the writes and before
 * the commit. Use only `tx`, and only for SQL (no network, no waiting on anything else):
 * the evaluation holds its transaction until this returns. Throwing rolls the changes
 * back, so what a hook writes exists exactly when the change does.
 */
export type IncidentWriteHook = (
  tx: TransactionSql,
  events: readonly IncidentEvent[],
) => Promise<void>;

/** What `ctx.use(watchdogsKey)` (and tests, benchmarks) get. */
export interface WatchdogsApi {
  service: WatchdogService;
  /** Evaluates devices marked dirty by telemetry now (the incremental task's body). */
  flushDirty(): Promise<number>;
  /** Devices waiting for incremental evaluation. */
  readonly dirtyCount: number;
  /** Registers a hook run in the transaction of every incident change (call in `setup`). */
  onIncidentWrite(hook: IncidentWriteHook): void;
}

/** Service key of the watchdogs plugin. */
export const watchdogsKey = serviceKey<WatchdogsApi>("watchdogs.service");

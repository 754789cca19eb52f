/**
 * The scheduler's public service contract, kept in its own file so that plugins
 * that `requires: ["scheduler"]` (watchdogs) can code against it without
 * importing the scheduler's implementation.
 *
 * @module
 */
import { serviceKey } from "../../core/plugin.ts";

/** A request to run one assembly on some devices right now. */
export interface QuickRunRequest {
  assemblyGuid: string;
  deviceGuids: string[];
  variableValues?: Record<string, unknown>;
  runMode?: string;
  /** Operator username or "watchdog:<policy id>". */
  requestedBy: string;
  /**
   * Only devices whose presence is `online` (plugins/inventory/presence.ts) get the
   * script; the others are reported `Skipped`. Default false: a device whose socket is
   * closed gets it when it reconnects within the hold window, else the run times out.
   */
  onlineOnly?: boolean;
  /**
   * Leave out revoked, decommissioned and unknown devices instead of refusing the run
   * (targets resolved from a filter, sites or "all devices"). Default false.
   */
  skipUnavailable?: boolean;
}

/** What a quick run dispatched: one activity row per target. */
export interface QuickRunResult {
  jobId: string;
  targets: {
    deviceGuid: string;
    hostname: string;
    /** The activity's id; empty for a skipped target. */
    activityId: string;
    /**
     * Running (sent), Pending (held until the agent reconnects), Skipped, or Failed (an
     * engine restart's clean-up marked it undelivered before it could be sent).
     */
    status: "Running" | "Pending" | "Skipped" | "Failed";
    /** The device list's presence when the run was made. */
    presence: "online" | "offline" | "overdue";
  }[];
}

/** A maintenance window a device is currently inside. */
export interface ActiveWindow {
  windowId: string;
  name: string;
  /** Epoch milliseconds. */
  endsAt: number;
}

/** Services the scheduler offers to other plugins. */
export interface SchedulerService {
  /** No scope checks: callers are trusted plugins; the HTTP route does scope checks. */
  quickRun(req: QuickRunRequest): Promise<QuickRunResult>;
  /** Which of these devices are inside a maintenance window at `at` (epoch ms); one query, not one per device. */
  devicesInWindow(
    devices: { guid: string; siteId: number | null }[],
    at: number,
  ): Promise<Map<string, ActiveWindow>>;
}

/** Service key under which the scheduler plugin provides {@link SchedulerService}. */
export const schedulerKey = serviceKey<SchedulerService>("scheduler.service");

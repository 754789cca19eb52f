/**
 * The anti-noise state machine of one (policy, device) pair, as a pure function: the
 * stored state, the verdict of this evaluation and the policy's settings in; the next
 * state and what to do with the incident out. Kept pure so timelines (flapping,
 * recurrence, windows) are tested step by step without a database.
 *
 * Rules of the machine:
 * - A match counts toward `min_consecutive_matches` at most once per evaluation
 *   interval, so telemetry arriving every few seconds does not reach N at once.
 * - A clear resets the count; an open incident resolves only after staying clear for
 *   `auto_resolve_after_seconds`. A device that flaps faster than that keeps ONE
 *   incident whose trigger count rises.
 * - Inside a maintenance window or under a `suppressed` override matches do not count
 *   and nothing opens or fires; the count starts from zero when the hold ends.
 * - Actions fire when an incident opens or re-triggers, at most once per cooldown
 *   (also across a resolution and a recurrence), never for an operator-suppressed one.
 *
 * @module
 */
import type { Verdict } from "./rules.ts";
import type { DeviceState } from "./schemas.ts";

/** The persisted per-device state (`watchdog_device_state`); absent = quiet normal. */
export interface StoredState {
  state: DeviceState;
  consecutive: number;
  firstMatchAt: number | null;
  lastMatchAt: number | null;
  clearSince: number | null;
  lastActionAt: number | null;
  /** End of the window or override that last held the device. */
  heldUntil: number | null;
}

/** The unresolved incident of the pair, if any. */
export interface ActiveIncident {
  id: string;
  state: "open" | "suppressed";
}

/** Anti-noise settings of a policy, in milliseconds. */
export interface NoiseSettings {
  intervalMs: number;
  cooldownMs: number;
  autoResolveMs: number;
  minConsecutive: number;
  bootGraceMs: number;
}

/** What holds a device back from new incidents. */
export type Hold =
  | { kind: "disabled"; reason: string }
  | { kind: "suppressed"; reason: string; until: number | null }
  | { kind: "window"; name: string; until: number };

/** One step's input. */
export interface StepInput {
  prev: StoredState | null;
  incident: ActiveIncident | null;
  verdict: Verdict;
  now: number;
  settings: NoiseSettings;
  lastReboot: number | null;
  hold: Hold | null;
  /** Last time the device was heard from (ms). */
  lastSeen: number | null;
  /** Every rule of the policy is `device_offline`. */
  offlineOnly: boolean;
}

/** One step's output. */
export interface StepOutput {
  /** Next stored state; null deletes the row (quiet normal). */
  next: StoredState | null;
  /** Open a new incident. */
  open?: boolean;
  /** The open incident triggered again (trigger_count + 1). */
  retrigger?: boolean;
  /** The open incident still matches (refresh its sample). */
  touch?: boolean;
  /** Resolve the open incident with this reason. */
  resolve?: string;
  /** Run the policy's actions. */
  fire?: boolean;
  /** The state label shown for the device. */
  label: DeviceState;
}

/** Clock skew tolerance when deciding whether an interval has passed. */
const SLACK_MS = 1000;

const quiet = (): StoredState => ({
  state: "normal",
  consecutive: 0,
  firstMatchAt: null,
  lastMatchAt: null,
  clearSince: null,
  lastActionAt: null,
  heldUntil: null,
});

/** Drops a state that carries nothing worth storing. */
function compact(s: StoredState, now: number, cooldownMs: number): StoredState | null {
  const actionMatters = s.lastActionAt !== null && now - s.lastActionAt < cooldownMs;
  const holdMatters = s.heldUntil !== null;
  if (
    s.state === "normal" && s.consecutive === 0 && s.clearSince === null && !actionMatters &&
    !holdMatters
  ) {
    return null;
  }
  return s;
}

/** Advances one (policy, device) pair by one evaluation. */
export function step(i: StepInput): StepOutput {
  const { now, settings: cfg, incident } = i;
  const prev = i.prev ?? quiet();

  if (i.hold?.kind === "disabled") {
    return {
      next: { ...quiet(), state: "disabled", lastActionAt: prev.lastActionAt },
      resolve: incident ? "device_disabled" : undefined,
      label: "disabled",
    };
  }
  const held = i.hold && (i.hold.kind === "window" || i.hold.kind === "suppressed") ? i.hold : null;
  // A hold that ended: forget when it ended once a match has been counted after it.
  const heldUntil = held ? (held.until ?? now) : prev.heldUntil;

  if (i.verdict === "stale") {
    // Old telemetry: no verdict, no count, no incident change.
    return { next: { ...prev, state: "stale_data", heldUntil }, label: "stale_data" };
  }

  if (i.verdict === "matched") {
    if (held) {
      return {
        next: {
          ...prev,
          state: "suppressed",
          consecutive: 0,
          firstMatchAt: null,
          lastMatchAt: null,
          clearSince: null,
          heldUntil,
        },
        label: "suppressed",
      };
    }
    if (i.lastReboot !== null && cfg.bootGraceMs > 0 && now - i.lastReboot < cfg.bootGraceMs) {
      // Just booted: services are still starting; the match does not count.
      const label: DeviceState = incident
        ? "triggered"
        : prev.consecutive > 0
        ? "pending"
        : "normal";
      return { next: compact({ ...prev, state: label }, now, cfg.cooldownMs), label };
    }
    const counted = prev.consecutive === 0 || prev.lastMatchAt === null ||
      now - prev.lastMatchAt >= cfg.intervalMs - SLACK_MS;
    const consecutive = counted ? prev.consecutive + 1 : prev.consecutive;
    const base: StoredState = {
      ...prev,
      consecutive,
      firstMatchAt: prev.firstMatchAt ?? now,
      lastMatchAt: counted ? now : prev.lastMatchAt,
      clearSince: null,
      heldUntil: null,
    };
    if (consecutive < cfg.minConsecutive) {
      return { next: { ...base, state: "pending" }, label: "pending" };
    }
    const cooled = prev.lastActionAt === null || now - prev.lastActionAt >= cfg.cooldownMs;
    if (!incident) {
      return {
        next: { ...base, state: "triggered", lastActionAt: cooled ? now : prev.lastActionAt },
        open: true,
        fire: cooled,
        label: "triggered",
      };
    }
    const retrigger = prev.state !== "triggered" || prev.clearSince !== null;
    if (!retrigger) {
      // Still matching, incident open: nothing changes (so nothing is written).
      return { next: prev, touch: true, label: "triggered" };
    }
    const fire = cooled && incident.state === "open";
    return {
      next: { ...base, state: "triggered", lastActionAt: fire ? now : prev.lastActionAt },
      retrigger,
      fire,
      label: "triggered",
    };
  }

  // Clear. The end of a past hold is remembered until the device is heard from after
  // it: until then an offline clock still has to restart there.
  const keepHold = held
    ? heldUntil
    : prev.heldUntil !== null && (i.lastSeen === null || i.lastSeen < prev.heldUntil)
    ? prev.heldUntil
    : null;
  const cleared: StoredState = {
    ...prev,
    consecutive: 0,
    firstMatchAt: null,
    lastMatchAt: null,
    heldUntil: keepHold,
  };
  if (incident) {
    if (i.offlineOnly) {
      return {
        next: compact({ ...cleared, state: "normal", clearSince: null }, now, cfg.cooldownMs),
        resolve: "device returned",
        label: "normal",
      };
    }
    const clearSince = prev.clearSince ?? now;
    if (now - clearSince >= cfg.autoResolveMs) {
      return {
        next: compact({ ...cleared, state: "normal", clearSince: null }, now, cfg.cooldownMs),
        resolve: "auto_resolved",
        label: "normal",
      };
    }
    return { next: { ...cleared, state: "triggered", clearSince }, label: "triggered" };
  }
  const label: DeviceState = held ? "suppressed" : "normal";
  return {
    next: compact({ ...cleared, state: label, clearSince: null }, now, cfg.cooldownMs),
    label,
  };
}

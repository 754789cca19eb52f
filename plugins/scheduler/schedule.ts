/**
 * Schedule arithmetic, pure and clock-free: which slots a schedule has, which slot is
 * due now under the firing window, and when the next one comes. Every time is epoch
 * milliseconds floored to the minute (upstream floors epoch seconds to the minute).
 *
 * @module
 */
import { Cron } from "croner";

/** Schedule types (upstream's, plus `cron`). */
export const SCHEDULE_TYPES = [
  "immediately",
  "once",
  "every_5_minutes",
  "every_10_minutes",
  "every_15_minutes",
  "every_30_minutes",
  "every_hour",
  "daily",
  "weekly",
  "monthly",
  "yearly",
  "cron",
] as const;
/** A schedule type. */
export type ScheduleType = typeof SCHEDULE_TYPES[number];

/** What the arithmetic needs of a job. */
export interface Schedule {
  type: ScheduleType;
  /** First slot (epoch ms; floored to the minute here). */
  start: number;
  /** Cron expression (type `cron`), five or six fields, croner syntax. */
  cron?: string | null;
  /** IANA time zone of the cron expression (default UTC). */
  timezone?: string | null;
}

const MINUTE = 60_000;
const PERIODS: Partial<Record<ScheduleType, number>> = {
  every_5_minutes: 5 * MINUTE,
  every_10_minutes: 10 * MINUTE,
  every_15_minutes: 15 * MINUTE,
  every_30_minutes: 30 * MINUTE,
  every_hour: 60 * MINUTE,
  daily: 1440 * MINUTE,
  weekly: 7 * 1440 * MINUTE,
};

/** Floors epoch ms to the minute. */
export const floorMinute = (ms: number): number => Math.floor(ms / MINUTE) * MINUTE;

function daysIn(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/**
 * The k-th calendar slot of a monthly (step 1) or yearly (step 12) schedule: same
 * day-of-month and time as the start, the day clamped to the month's end (so the 31st
 * runs on 30 April and 28/29 February, and 29 February runs on 28 February in common
 * years).
 */
function calendarSlot(start: number, k: number, monthsPerStep: number): number {
  const s = new Date(start);
  const months = s.getUTCMonth() + k * monthsPerStep;
  const year = s.getUTCFullYear() + Math.floor(months / 12);
  const month0 = ((months % 12) + 12) % 12;
  const day = Math.min(s.getUTCDate(), daysIn(year, month0));
  return Date.UTC(year, month0, day, s.getUTCHours(), s.getUTCMinutes());
}

const cronCache = new Map<string, Cron>();

/** A paused croner instance (cached); throws on a bad expression or time zone. */
export function cronOf(expression: string, timezone = "UTC"): Cron {
  const key = `${timezone}\u0000${expression}`;
  let c = cronCache.get(key);
  if (!c) {
    c = new Cron(expression, { paused: true, timezone });
    if (cronCache.size > 5000) cronCache.clear();
    cronCache.set(key, c);
  }
  return c;
}

/** Checks a cron expression and time zone; returns an error message or null. */
export function cronProblem(expression: string, timezone = "UTC"): string | null {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    return `unknown time zone ${timezone}`;
  }
  try {
    const c = new Cron(expression, { paused: true, timezone });
    if (!c.nextRun(new Date(Date.UTC(2000, 0, 1)))) return "the expression never fires";
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The first slot strictly after `t`, or null when the schedule has no more. */
export function slotAfter(s: Schedule, t: number): number | null {
  const start = floorMinute(s.start);
  switch (s.type) {
    case "immediately":
    case "once":
      return start > t ? start : null;
    case "monthly":
    case "yearly": {
      const step = s.type === "monthly" ? 1 : 12;
      if (t < start) return start;
      const a = new Date(start), b = new Date(t);
      const months = (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + b.getUTCMonth() -
        a.getUTCMonth();
      for (let k = Math.max(0, Math.floor(months / step) - 1);; k++) {
        const slot = calendarSlot(start, k, step);
        if (slot > t) return slot;
      }
    }
    case "cron": {
      if (!s.cron) return null;
      const from = Math.max(t, start - 1);
      const next = cronOf(s.cron, s.timezone ?? "UTC").nextRun(new Date(from));
      return next ? floorMinute(next.getTime()) : null;
    }
    default: {
      const p = PERIODS[s.type]!;
      if (t < start) return start;
      return start + (Math.floor((t - start) / p) + 1) * p;
    }
  }
}

/**
 * The slot to fire now, or null. A slot fires only while `now` is inside its window
 * (`slot <= now < slot + windowMs`) and after the last occurrence; of several such
 * slots (a window longer than the period) the latest fires. Slots whose window has
 * passed are never fired later: there is no backfill.
 */
export function dueSlot(
  s: Schedule,
  lastOccurrence: number | null,
  now: number,
  windowMs: number,
): number | null {
  let from = now - windowMs;
  if (lastOccurrence !== null && lastOccurrence > from) from = lastOccurrence;
  let due: number | null = null;
  for (let slot = slotAfter(s, from); slot !== null && slot <= now; slot = slotAfter(s, slot)) {
    due = slot;
  }
  return due;
}

/** The next slot a job will consider (for `next_run_ts`), or null. */
export function nextRun(s: Schedule, lastOccurrence: number | null, now: number): number | null {
  const from = Math.max(now - 1, lastOccurrence ?? -Infinity);
  return slotAfter(s, from);
}

/** Parses an expiration (`30m`, `2h`, `1d`, a bare number of minutes, `no_expire`) into ms. */
export function expirationMs(expiration: string | null | undefined): number | null {
  const e = (expiration ?? "no_expire").trim().toLowerCase();
  if (e === "" || e === "no_expire") return null;
  const m = /^(\d{1,6})\s*([mhd]?)$/.exec(e);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] === "h" ? 60 : m[2] === "d" ? 1440 : 1;
  return n * unit * MINUTE;
}

/** True when an expiration text is valid. */
export function validExpiration(e: string): boolean {
  return /^\s*(no_expire|\d{1,6}\s*[mhdMHD]?)\s*$/.test(e);
}

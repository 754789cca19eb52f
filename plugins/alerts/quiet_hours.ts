/**
 * Quiet hours of a channel: a daily period in an IANA time zone (optionally only on some
 * days, counted by the day the period starts) during which messages below a breakthrough
 * severity wait and go out together when it ends. Computed with croner's time-zone aware
 * schedules, so daylight-saving changes move the period with the wall clock: inside the
 * period exactly when the next end comes before the next start.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import { Cron } from "croner";

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** True when `tz` is a time zone this runtime knows. */
export function knownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** A channel's quiet hours. */
export const QuietHours = z.object({
  /** Local start, "HH:MM" (24-hour). */
  start: z.string().regex(HHMM, "HH:MM, 24-hour"),
  /** Local end, "HH:MM"; before the start means the next day. */
  end: z.string().regex(HHMM, "HH:MM, 24-hour"),
  time_zone: z.string().min(1).max(64).refine(
    knownTimeZone,
    "an IANA time zone such as Europe/Berlin",
  ),
  /** Days the period starts on, 0 = Sunday … 6 = Saturday; omitted: every day. */
  days: z.array(z.number().int().min(0).max(6)).min(1).max(7).optional(),
  /** Messages of this severity or above go out at once; null: none do. */
  breakthrough_severity: z.enum(["info", "warning", "error"]).nullable().default("error"),
}).strict().refine((q) => q.start !== q.end, {
  message: "start and end must differ",
  path: ["end"],
}).openapi("AlertQuietHours");
export type QuietHours = z.infer<typeof QuietHours>;

const cache = new Map<string, { start: Cron; end: Cron }>();

function schedules(q: QuietHours): { start: Cron; end: Cron } {
  const key = JSON.stringify([q.start, q.end, q.time_zone, q.days ?? null]);
  let s = cache.get(key);
  if (s) return s;
  const [sh, sm] = q.start.split(":").map(Number) as [number, number];
  const [eh, em] = q.end.split(":").map(Number) as [number, number];
  const days = q.days ? [...new Set(q.days)].sort() : null;
  // A period that crosses midnight ends on the day after the one it started on.
  const overnight = eh * 60 + em <= sh * 60 + sm;
  const endDays = days && overnight ? days.map((d) => (d + 1) % 7) : days;
  const dow = (list: number[] | null) => (list ? list.join(",") : "*");
  s = {
    start: new Cron(`${sm} ${sh} * * ${dow(days)}`, { paused: true, timezone: q.time_zone }),
    end: new Cron(`${em} ${eh} * * ${dow(endDays)}`, { paused: true, timezone: q.time_zone }),
  };
  if (cache.size > 1000) cache.clear();
  cache.set(key, s);
  return s;
}

/** The end of the quiet period `now` (epoch ms) falls in, or null when it is not quiet. */
export function quietUntil(q: QuietHours, now: number): number | null {
  const s = schedules(q);
  const at = new Date(now);
  const nextEnd = s.end.nextRun(at);
  if (!nextEnd) return null;
  const nextStart = s.start.nextRun(at);
  if (nextStart && nextStart.getTime() <= nextEnd.getTime()) return null;
  return nextEnd.getTime();
}

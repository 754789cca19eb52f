/**
 * A job's schedule and targets in words for lists ("Every day from 5 Jan 2026, 02:30",
 * "At 02:30, Monday through Friday (Europe/Berlin)"); cron expressions are described
 * by the `cronstrue` library. Start times are shown in the browser's zone with its name.
 *
 * @module
 */
import cronstrue from "cronstrue";
import type { JobSchedule, JobTarget } from "../api/types.ts";

/** Schedule types with their names, in the order the editor offers them. */
export const SCHEDULE_TYPES: Array<[string, string]> = [
  ["immediately", "Immediately (once, now)"],
  ["once", "Once"],
  ["every_5_minutes", "Every 5 minutes"],
  ["every_10_minutes", "Every 10 minutes"],
  ["every_15_minutes", "Every 15 minutes"],
  ["every_30_minutes", "Every 30 minutes"],
  ["every_hour", "Every hour"],
  ["daily", "Every day"],
  ["weekly", "Every week"],
  ["monthly", "Every month"],
  ["yearly", "Every year"],
  ["cron", "Cron expression"],
];

/** A cron expression in words, or null when it cannot be described. */
export function cronInWords(expression: string): string | null {
  try {
    return cronstrue.toString(expression, { use24HourTimeFormat: true, verbose: false });
  } catch {
    return null;
  }
}

function startDate(start: JobSchedule["start"]): Date | null {
  if (start === null || start === undefined || start === "") return null;
  const ms = typeof start === "number"
    ? (start < 1e11 ? start * 1000 : start)
    : /^\d+$/.test(start)
    ? Number(start) * 1000
    : Date.parse(start);
  return Number.isFinite(ms) ? new Date(ms) : null;
}

/** The schedule in words (`locale` and `timeZone` for tests; the browser's by default). */
export function scheduleInWords(
  s: JobSchedule,
  o: { locale?: string; timeZone?: string } = {},
): string {
  const fmt = new Intl.DateTimeFormat(o.locale, {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: o.timeZone,
  });
  const start = startDate(s.start);
  const from = start ? fmt.format(start) : null;
  if (s.type === "cron") {
    const words = s.cron ? cronInWords(s.cron) : null;
    return `${words ?? `Cron ${s.cron}`} (${s.timezone || "UTC"})`;
  }
  if (s.type === "immediately") return "Immediately, once";
  if (s.type === "once") return from ? `Once, ${from}` : "Once";
  const name = SCHEDULE_TYPES.find(([t]) => t === s.type)?.[1] ?? s.type;
  return from ? `${name} from ${from}` : name;
}

/** The targets in words ("2 devices, filter Web servers, site Lab"). */
export function targetsInWords(
  targets: JobTarget[],
  names: { filter: (id: number) => string; site: (id: number) => string },
): string {
  const devices = targets.filter((t) => t.kind === "device").length;
  const parts: string[] = [];
  if (targets.some((t) => t.kind === "all_devices")) parts.push("All devices");
  if (devices) parts.push(`${devices} device${devices === 1 ? "" : "s"}`);
  for (const t of targets) {
    if (t.kind === "filter") parts.push(`filter ${names.filter(t.filter_id)}`);
    if (t.kind === "sites") { for (const id of t.site_ids) parts.push(`site ${names.site(id)}`); }
  }
  return parts.join(", ") || "No targets";
}

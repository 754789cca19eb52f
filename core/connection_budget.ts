/**
 * The descriptor budget: how many connections the engine may hold. Every connection is
 * a file descriptor, and so are the database connections, log files, payload files and
 * outgoing requests; Deno panics in places (signal handlers, TLS roots) when it cannot
 * open one. So connections get the process's open-file limit minus a reserve, and the
 * connections that are not (yet) an authenticated socket get a quarter of that, so a
 * flood of them leaves room for agents and operators.
 *
 * @module
 */
import type { ConnectionLimits } from "./listener.ts";

/** The settings that shape the budget (0 = derive from the descriptor limit). */
export interface BudgetSettings {
  httpHeaderTimeoutMs: number;
  httpIdleTimeoutMs: number;
  httpMaxConnections: number;
  httpMaxPending: number;
  httpMaxPendingPerAddress: number;
  dbPoolSize: number;
}

/** A resolved budget and how it was derived (for the start-up log line). */
export interface ConnectionBudget {
  limits: ConnectionLimits;
  /** The soft open-file limit, when it could be read. */
  descriptorLimit: number | null;
  reserve: number;
  /** Set when a configured cap was above the budget and was lowered to it. */
  clamped?: string;
}

/** Most pending connections derived automatically (a flood needs no more to be absorbed). */
const PENDING_CEILING = 4096;

/** The soft `RLIMIT_NOFILE` of this process, or null where it cannot be read. */
export function descriptorLimit(): number | null {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (m) return m[1] === "unlimited" ? null : Number(m[1]);
  } catch { /* not Linux */ }
  try {
    const out = new Deno.Command("sh", { args: ["-c", "ulimit -n"], stdout: "piped" })
      .outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * The connection limits: `limit − reserve` connections (reserve: a tenth of the limit,
 * at least 64, plus the database pool) of which a quarter (at most 4,096) may be
 * pending; explicit settings win below that. A setting above the budget is lowered to
 * it: a process out of descriptors fails in places no listener can guard (Deno panics
 * when a new thread cannot read /proc/self/maps), so the caps must bite first. With an
 * unknown limit, 1,024 is assumed and settings are taken as given.
 */
export function connectionBudget(s: BudgetSettings, limit = descriptorLimit()): ConnectionBudget {
  const assumed = limit ?? 1024;
  const reserve = Math.max(64, Math.ceil(assumed / 10)) + s.dbPoolSize;
  const budget = Math.max(16, assumed - reserve);
  let clamped: string | undefined;
  let maxConnections = s.httpMaxConnections || budget;
  if (limit !== null && maxConnections > budget) {
    clamped = `BOREALIS_HTTP_MAX_CONNECTIONS=${maxConnections} is above the descriptor budget ` +
      `(open-file limit ${limit} minus ${reserve}); using ${budget}: raise the limit instead`;
    maxConnections = budget;
  }
  const maxPending = s.httpMaxPending ||
    Math.max(8, Math.min(PENDING_CEILING, Math.floor(maxConnections / 4)));
  return {
    limits: {
      headerTimeoutMs: s.httpHeaderTimeoutMs,
      idleTimeoutMs: s.httpIdleTimeoutMs,
      maxConnections,
      maxPending: Math.min(maxPending, maxConnections),
      maxPendingPerAddress: Math.min(s.httpMaxPendingPerAddress, maxPending),
    },
    descriptorLimit: limit,
    reserve,
    clamped,
  };
}

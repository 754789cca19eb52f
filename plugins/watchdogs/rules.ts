/**
 * Rule evaluation: pure functions from one device's telemetry sample to a verdict, so
 * each rule is tested against samples without a database. A rule that needs telemetry
 * reports `stale` when the device's telemetry is older than the stale limit; the policy
 * then takes the state `stale_data` and never opens an incident on old data.
 *
 * @module
 */
import type { Rule, RuleType } from "./schemas.ts";

/** One installed program (from `device_software_inventory`). */
export interface SoftwareEntry {
  name: string;
  /** Lower-cased, whitespace-collapsed name (as realtime stores it). */
  normalized: string;
  version: string;
  source: string;
}

/** What the evaluator knows about one device when it evaluates rules. */
export interface DeviceSample {
  guid: string;
  hostname: string;
  siteId: number | null;
  /** Enrollment time (ms): reboots before it are not "detected". */
  createdAt: number;
  /** Last time the device was heard from (ms), or null. */
  lastSeen: number | null;
  /** Its socket is open somewhere in the cluster. */
  connected: boolean;
  /**
   * The device list's presence (plugins/inventory/presence.ts); when given, a device is
   * offline for `device_offline` only when it is not `online` there.
   */
  presence?: "online" | "offline" | "overdue";
  lastReboot: number | null;
  /** Seconds, as of `lastSeen`. */
  uptime: number | null;
  cpuPercent: number | null;
  memoryPercent: number | null;
  /** `details.storage`: `[{drive, total, used, free, usage}]`. */
  storage?: unknown;
  /** `details.services`: `[{name, status}]` or `{name: status}`. */
  services?: unknown;
  /** `details.agent_role_health`: `{role: status}` or `{role: {status}}` or `[{role, status}]`. */
  roleHealth?: unknown;
  /** `details.processes`: `[{name}]` or `["name"]`. */
  processes?: unknown;
  /** Only the entries whose names a software rule asked for. */
  software?: SoftwareEntry[];
}

/** Inputs every rule sees besides the sample. */
export interface RuleContext {
  now: number;
  /** Telemetry older than this (ms) is stale. */
  staleMs: number;
  /** The policy's creation time (ms): the baseline of change rules. */
  baselineAt: number;
}

/** One rule's verdict. */
export interface RuleResult {
  type: RuleType;
  matched: boolean;
  /** Telemetry too old to judge. */
  stale?: boolean;
  /** Human-readable reason (goes into incident messages). */
  summary: string;
  /** The values the verdict was made from. */
  sample: Record<string, unknown>;
}

/** The combined verdict of a policy's rules for one device. */
export type Verdict = "matched" | "clear" | "stale";

/** Normalizes a name the way realtime normalizes software names. */
export function normalizeName(name: string): string {
  return name.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

/** Dotted version → numbers (like the `borealis_version_parts` SQL function). */
export function versionParts(v: string): number[] {
  return v.trim().split(".").map((p) => {
    const m = /^[0-9]{1,9}/.exec(p);
    return m ? Number(m[0]) : 0;
  });
}

/** Compares two dotted versions: <0, 0, >0. Missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const x = versionParts(a);
  const y = versionParts(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** `matches`: equal, case-insensitive, `*` as a wildcard; otherwise a numeric comparison. */
export function versionSatisfies(
  version: string,
  op: "matches" | "older_than" | "newer_than",
  value: string,
): boolean {
  if (op === "matches") {
    const pattern = value.trim().toLowerCase().split("*").map((s) =>
      s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
    ).join(".*");
    return new RegExp(`^${pattern}$`).test(version.trim().toLowerCase());
  }
  if (!version.trim()) return false;
  const c = compareVersions(version, value);
  return op === "older_than" ? c < 0 : c > 0;
}

const num = (v: unknown): number | null => {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^\s*-?[0-9]+(\.[0-9]+)?\s*%?\s*$/.test(v)) {
    return Number(v.replace("%", ""));
  }
  return null;
};
const str = (v: unknown): string => (typeof v === "string" ? v : v == null ? "" : String(v));
const record = (v: unknown): Record<string, unknown> =>
  v && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : {};

/** Drive letters and mount points compare without case and trailing separators. */
function driveKey(d: string): string {
  const t = d.trim().toLowerCase().replace(/[\\/]+$/, "");
  return t === "" ? "/" : t.replace(/:$/, ":");
}

/** Usage percent of one storage entry: `usage`, or computed from used/total or free/total. */
function drivesOf(storage: unknown): { drive: string; usage: number }[] {
  if (!Array.isArray(storage)) return [];
  const out: { drive: string; usage: number }[] = [];
  for (const e of storage) {
    const r = record(e);
    const drive = str(r.drive ?? r.mount ?? r.name);
    let usage = num(r.usage);
    const total = num(r.total);
    if (usage === null && total) {
      const used = num(r.used);
      const free = num(r.free);
      if (used !== null) usage = (used / total) * 100;
      else if (free !== null) usage = ((total - free) / total) * 100;
    }
    if (drive && usage !== null) out.push({ drive, usage: Math.round(usage * 100) / 100 });
  }
  return out;
}

/** Services as name → status (lower case). */
function servicesOf(services: unknown): Map<string, string> {
  const m = new Map<string, string>();
  if (Array.isArray(services)) {
    for (const e of services) {
      const r = record(e);
      const n = str(r.name ?? r.service_name ?? r.display_name);
      if (n) m.set(normalizeName(n), str(r.status ?? r.state).toLowerCase());
    }
  } else {
    for (const [k, v] of Object.entries(record(services))) {
      const status = typeof v === "string" ? v : str(record(v).status ?? record(v).state);
      m.set(normalizeName(k), status.toLowerCase());
    }
  }
  return m;
}

/** Role health as role → status (lower case). */
function rolesOf(health: unknown): Map<string, string> {
  const m = new Map<string, string>();
  const put = (role: string, v: unknown) => {
    const status = typeof v === "string" ? v : str(record(v).status ?? record(v).state);
    if (role) m.set(normalizeName(role), status.toLowerCase() || "unknown");
  };
  if (Array.isArray(health)) {
    for (const e of health) put(str(record(e).role ?? record(e).role_name ?? record(e).name), e);
  } else {
    const r = record(health);
    const roles = r.roles;
    if (Array.isArray(roles)) return rolesOf(roles);
    for (const [k, v] of Object.entries(roles && typeof roles === "object" ? roles : r)) put(k, v);
  }
  return m;
}

function processNames(processes: unknown): Set<string> {
  const s = new Set<string>();
  const list = Array.isArray(processes)
    ? processes
    : Array.isArray(record(processes).items)
    ? record(processes).items as unknown[]
    : [];
  for (const e of list) {
    const n = typeof e === "string" ? e : str(record(e).name ?? record(e).process_name);
    if (n) s.add(normalizeName(n));
  }
  return s;
}

/** `notepad.exe` and `notepad` name the same process. */
const bareProcess = (n: string) => n.replace(/\.exe$/, "");

/** Evaluates one rule against one sample. */
export function evaluateRule(rule: Rule, s: DeviceSample, ctx: RuleContext): RuleResult {
  const base = { type: rule.type };
  if (rule.type === "device_offline") {
    const age = s.lastSeen === null ? null : Math.max(0, Math.floor((ctx.now - s.lastSeen) / 1000));
    // Never offline here while the device list says online: the rule's own limit can only
    // wait longer than BOREALIS_AGENT_OFFLINE_SECONDS, not less.
    const online = s.presence ? s.presence === "online" : s.connected;
    const matched = !online && (age === null || age >= rule.offline_after_seconds);
    return {
      ...base,
      matched,
      summary: matched
        ? `offline for ${
          age === null ? "ever" : `${age} s`
        } (limit ${rule.offline_after_seconds} s)`
        : "online",
      sample: {
        connected: s.connected,
        seconds_since_seen: age,
        ...(s.presence ? { presence: s.presence } : {}),
      },
    };
  }
  if (s.lastSeen === null || ctx.now - s.lastSeen > ctx.staleMs) {
    return {
      ...base,
      matched: false,
      stale: true,
      summary: "telemetry is stale",
      sample: { last_seen: s.lastSeen === null ? null : new Date(s.lastSeen).toISOString() },
    };
  }
  switch (rule.type) {
    case "storage_usage_percent": {
      const drives = drivesOf(s.storage);
      if (rule.drive_mode === "specific") {
        // A specific drive never falls back to another one: missing means no verdict.
        const want = driveKey(rule.drive!);
        const d = drives.find((x) => driveKey(x.drive) === want);
        const matched = !!d && d.usage >= rule.threshold;
        return {
          ...base,
          matched,
          summary: d
            ? `${d.drive} at ${d.usage}% (threshold ${rule.threshold}%)`
            : `drive ${rule.drive} not reported`,
          sample: { drives: d ? [d] : [], drive: rule.drive, found: !!d },
        };
      }
      const over = drives.filter((d) => d.usage >= rule.threshold);
      return {
        ...base,
        matched: over.length > 0,
        summary: over.length
          ? `${
            over.map((d) => `${d.drive} at ${d.usage}%`).join(", ")
          } (threshold ${rule.threshold}%)`
          : `all drives below ${rule.threshold}%`,
        sample: { drives },
      };
    }
    case "service_state": {
      const status = servicesOf(s.services).get(normalizeName(rule.service_name)) ?? null;
      const running = status === "running" || status === "started";
      // A missing service is not running.
      const matched = rule.expected_status === "running" ? !running : running;
      return {
        ...base,
        matched,
        summary: matched
          ? `${rule.service_name} is ${status ?? "missing"} (expected ${rule.expected_status})`
          : `${rule.service_name} is ${status ?? "missing"}`,
        sample: { service_name: rule.service_name, status },
      };
    }
    case "agent_role_health": {
      const status = rolesOf(s.roleHealth).get(normalizeName(rule.role_name)) ?? "unknown";
      const matched = (rule.trigger_statuses as string[]).includes(status);
      return {
        ...base,
        matched,
        summary: `role ${rule.role_name} is ${status}`,
        sample: { role_name: rule.role_name, status },
      };
    }
    case "software_presence_or_version": {
      const want = normalizeName(rule.software_name);
      const source = rule.software_source ? normalizeName(rule.software_source) : null;
      const found = (s.software ?? []).filter((e) =>
        e.normalized.includes(want) && (!source || normalizeName(e.source) === source)
      );
      const op = rule.version_operator;
      const hits = op
        ? found.filter((e) => versionSatisfies(e.version, op, rule.version_value!))
        : found;
      const matched = rule.require_present
        ? found.length === 0 || (!!op && hits.length > 0)
        : hits.length > 0;
      const versions = found.map((e) => e.version);
      return {
        ...base,
        matched,
        summary: found.length === 0
          ? `${rule.software_name} is not installed`
          : `${rule.software_name} ${versions.join(", ")}${
            op
              ? ` (${op.replace("_", " ")} ${rule.version_value}: ${hits.length ? "yes" : "no"})`
              : ""
          }`,
        sample: { software_name: rule.software_name, installed: found.length > 0, versions },
      };
    }
    case "cpu_percent":
    case "memory_percent": {
      const v = rule.type === "cpu_percent" ? s.cpuPercent : s.memoryPercent;
      const label = rule.type === "cpu_percent" ? "CPU" : "memory";
      const matched = v !== null && v >= rule.threshold;
      return {
        ...base,
        matched,
        summary: v === null
          ? `${label} not reported`
          : `${label} at ${v}% (threshold ${rule.threshold}%)`,
        sample: { value: v, threshold: rule.threshold },
      };
    }
    case "uptime_above_seconds": {
      // Uptime was reported at lastSeen; it has grown since while the device stays up.
      const up = s.uptime === null
        ? null
        : s.uptime + (s.connected ? Math.max(0, Math.floor((ctx.now - s.lastSeen) / 1000)) : 0);
      const matched = up !== null && up > rule.seconds;
      return {
        ...base,
        matched,
        summary: up === null ? "uptime not reported" : `up for ${up} s (limit ${rule.seconds} s)`,
        sample: { uptime_seconds: up },
      };
    }
    case "reboot_detected": {
      // Baseline: reboots before the policy existed or before enrollment are not news.
      const at = s.lastReboot;
      const matched = at !== null && at > ctx.baselineAt && at > s.createdAt &&
        ctx.now - at <= rule.within_seconds * 1000;
      return {
        ...base,
        matched,
        summary: at === null
          ? "last reboot not reported"
          : `last reboot ${new Date(at).toISOString()}`,
        sample: { last_reboot: at === null ? null : new Date(at).toISOString() },
      };
    }
    case "process_presence": {
      const names = processNames(s.processes);
      const want = bareProcess(normalizeName(rule.process_name));
      const running = [...names].some((n) => bareProcess(n) === want);
      const matched = rule.require_running ? !running : running;
      return {
        ...base,
        matched,
        summary: `${rule.process_name} is ${running ? "running" : "not running"}`,
        sample: { process_name: rule.process_name, running },
      };
    }
  }
}

/** Combines rule results: `all` needs every rule, `any` one; stale wins over clear. */
export function combine(mode: "all" | "any", results: RuleResult[]): Verdict {
  const stale = results.some((r) => r.stale);
  if (mode === "all") {
    if (results.some((r) => !r.stale && !r.matched)) return "clear";
    return stale ? "stale" : "matched";
  }
  if (results.some((r) => r.matched)) return "matched";
  return stale ? "stale" : "clear";
}

/** Which parts of `details` the rules need (so a full evaluation reads only those). */
export function neededParts(rules: Iterable<Rule>): Set<string> {
  const parts = new Set<string>();
  for (const r of rules) {
    if (r.type === "storage_usage_percent") parts.add("storage");
    if (r.type === "service_state") parts.add("services");
    if (r.type === "agent_role_health") parts.add("agent_role_health");
    if (r.type === "process_presence") parts.add("processes");
    if (r.type === "software_presence_or_version") parts.add("software");
  }
  return parts;
}

/**
 * Watchdog policies as the editor shows them: each rule and action type with its fields
 * (label, kind, default — the engine's defaults), a one-line summary per rule for lists,
 * a new policy, and the body of create, update and preview.
 *
 * @module
 */
import type { Watchdog } from "../api/types.ts";

/** One field of a rule or action. */
export interface FieldSpec {
  key: string;
  label: string;
  kind: "number" | "text" | "bool" | "select" | "multi" | "assembly";
  options?: Array<[string, string]>;
  default?: unknown;
  optional?: boolean;
  help?: string;
}

/** A rule or action type. */
export interface TypeSpec {
  label: string;
  fields: FieldSpec[];
}

const STATUSES: Array<[string, string]> = [
  ["healthy", "healthy"],
  ["recovering", "recovering"],
  ["unhealthy", "unhealthy"],
  ["pending", "pending"],
  ["unsupported", "unsupported"],
  ["unknown", "unknown"],
];

/** Rule types and their fields. */
export const RULES: Record<string, TypeSpec> = {
  device_offline: {
    label: "Device offline",
    fields: [{
      key: "offline_after_seconds",
      label: "Offline for (seconds)",
      kind: "number",
      default: 300,
    }],
  },
  storage_usage_percent: {
    label: "Disk usage",
    fields: [
      { key: "threshold", label: "At or above (%)", kind: "number", default: 90 },
      {
        key: "drive_mode",
        label: "Drives",
        kind: "select",
        options: [["all", "Any drive"], ["specific", "One drive"]],
        default: "all",
      },
      { key: "drive", label: "Drive (C:, /var)", kind: "text", optional: true },
    ],
  },
  service_state: {
    label: "Service state",
    fields: [
      { key: "service_name", label: "Service name", kind: "text" },
      {
        key: "expected_status",
        label: "Should be",
        kind: "select",
        options: [["running", "running"], ["stopped", "stopped"]],
        default: "running",
      },
    ],
  },
  agent_role_health: {
    label: "Agent role health",
    fields: [
      { key: "role_name", label: "Role", kind: "text" },
      {
        key: "trigger_statuses",
        label: "Alert when",
        kind: "multi",
        options: STATUSES,
        default: ["unhealthy"],
      },
    ],
  },
  software_presence_or_version: {
    label: "Software present or version",
    fields: [
      { key: "software_name", label: "Software name", kind: "text" },
      { key: "require_present", label: "Must be installed", kind: "bool", default: true },
      {
        key: "version_operator",
        label: "Version",
        kind: "select",
        options: [["", "any"], ["matches", "matches"], ["older_than", "older than"], [
          "newer_than",
          "newer than",
        ]],
        optional: true,
      },
      { key: "version_value", label: "Version value", kind: "text", optional: true },
    ],
  },
  cpu_percent: {
    label: "CPU usage",
    fields: [{ key: "threshold", label: "At or above (%)", kind: "number", default: 90 }],
  },
  memory_percent: {
    label: "Memory usage",
    fields: [{ key: "threshold", label: "At or above (%)", kind: "number", default: 90 }],
  },
  uptime_above_seconds: {
    label: "Up too long",
    fields: [{
      key: "seconds",
      label: "Up for more than (seconds)",
      kind: "number",
      default: 2_592_000,
    }],
  },
  reboot_detected: {
    label: "Rebooted",
    fields: [{ key: "within_seconds", label: "Within (seconds)", kind: "number", default: 3600 }],
  },
  process_presence: {
    label: "Process running",
    fields: [
      { key: "process_name", label: "Process name", kind: "text" },
      { key: "require_running", label: "Must be running", kind: "bool", default: true },
    ],
  },
};

/** Action types and their fields. */
export const ACTIONS: Record<string, TypeSpec> = {
  do_nothing: { label: "Incident only", fields: [] },
  notification: {
    label: "Notification to operators",
    fields: [
      {
        key: "variant",
        label: "Kind",
        kind: "select",
        options: [["info", "info"], ["success", "success"], ["warning", "warning"], [
          "error",
          "error",
        ]],
        default: "warning",
      },
      { key: "title", label: "Title", kind: "text", default: "{{watchdog}}: {{hostname}}" },
      {
        key: "message_template",
        label: "Message",
        kind: "text",
        default: "{{hostname}}: {{summary}}",
        help: "{{hostname}}, {{watchdog}}, {{severity}}, {{summary}}",
      },
    ],
  },
  service_control: {
    label: "Service control",
    fields: [
      {
        key: "action",
        label: "Action",
        kind: "select",
        options: [["restart", "restart"], ["start", "start"], ["stop", "stop"]],
        default: "restart",
      },
      { key: "service_name", label: "Service name", kind: "text" },
    ],
  },
  assembly: {
    label: "Run a script",
    fields: [
      { key: "assembly_guid", label: "Script", kind: "assembly" },
      {
        key: "run_mode",
        label: "Runs as",
        kind: "select",
        options: [["system", "system"], ["currentuser", "the signed-in user"]],
        default: "system",
      },
    ],
  },
};

/** A rule or action of a type with its defaults filled in. */
export function withDefaults(
  type: string,
  specs: Record<string, TypeSpec>,
): Record<string, unknown> & { type: string } {
  const out: Record<string, unknown> & { type: string } = { type };
  for (const f of specs[type]?.fields ?? []) {
    if (f.default !== undefined) out[f.key] = f.default;
    else if (!f.optional) out[f.key] = f.kind === "number" ? 0 : "";
  }
  return out;
}

const dur = (s: unknown) => {
  const n = Number(s);
  return n % 86_400 === 0
    ? `${n / 86_400} d`
    : n % 3600 === 0
    ? `${n / 3600} h`
    : n % 60 === 0
    ? `${n / 60} min`
    : `${n} s`;
};

/** A rule in words. */
export function ruleSummary(r: Record<string, unknown> & { type: string }): string {
  switch (r.type) {
    case "device_offline":
      return `offline for ${dur(r.offline_after_seconds ?? 300)}`;
    case "storage_usage_percent":
      return `${r.drive_mode === "specific" ? `drive ${r.drive}` : "a drive"} ≥ ${
        r.threshold ?? 90
      }% full`;
    case "service_state":
      return `service ${r.service_name} not ${r.expected_status ?? "running"}`;
    case "agent_role_health":
      return `role ${r.role_name} ${((r.trigger_statuses as string[]) ?? ["unhealthy"]).join("/")}`;
    case "software_presence_or_version":
      return `${r.software_name} ${r.require_present === false ? "installed" : "missing"}` +
        (r.version_operator && r.version_value
          ? ` (version ${String(r.version_operator).replace("_", " ")} ${r.version_value})`
          : "");
    case "cpu_percent":
      return `CPU ≥ ${r.threshold ?? 90}%`;
    case "memory_percent":
      return `memory ≥ ${r.threshold ?? 90}%`;
    case "uptime_above_seconds":
      return `up longer than ${dur(r.seconds)}`;
    case "reboot_detected":
      return `rebooted within ${dur(r.within_seconds ?? 3600)}`;
    case "process_presence":
      return `process ${r.process_name} ${r.require_running === false ? "running" : "not running"}`;
    default:
      return r.type;
  }
}

/** All rules of a policy in words. */
export function criteriaSummary(w: Pick<Watchdog, "criteria">): string {
  const parts = w.criteria.rules.map(ruleSummary);
  return parts.join(w.criteria.match_mode === "any" ? " or " : " and ") || "no rule";
}

/** The editable part of a policy. */
export type PolicyForm = Omit<
  Watchdog,
  "id" | "last_edited_by" | "created_at" | "updated_at" | "last_evaluated_at"
>;

/** A new policy: warn when a device is offline for five minutes, an incident only. */
export function emptyPolicy(): PolicyForm {
  return {
    name: "",
    description: "",
    enabled: true,
    archived: false,
    severity: "warning",
    site_mode: "global",
    site_ids: [],
    targets: [{ kind: "all_devices" }],
    criteria: { match_mode: "all", rules: [withDefaults("device_offline", RULES)] },
    actions: { actions: [] },
    evaluation_interval_seconds: 60,
    cooldown_seconds: 900,
    auto_resolve_after_seconds: 300,
    min_consecutive_matches: 1,
    boot_grace_seconds: 0,
  };
}

function clean(
  item: Record<string, unknown> & { type: string },
  specs: Record<string, TypeSpec>,
): Record<string, unknown> & { type: string } {
  const out: Record<string, unknown> & { type: string } = { type: item.type };
  for (const f of specs[item.type]?.fields ?? []) {
    const v = item[f.key];
    if (v === undefined || v === null || v === "") {
      if (!f.optional && f.kind !== "text") out[f.key] = f.default;
      else if (!f.optional) out[f.key] = v ?? "";
      continue;
    }
    out[f.key] = f.kind === "number" ? Number(v) : v;
  }
  if (item.type === "storage_usage_percent" && out.drive_mode !== "specific") delete out.drive;
  if (item.type === "software_presence_or_version" && !out.version_operator) {
    delete out.version_operator;
    delete out.version_value;
  }
  return out;
}

/** The body of create, update and preview. */
export function toPolicyBody(f: PolicyForm): PolicyForm {
  return {
    ...f,
    name: f.name.trim() || "preview",
    site_ids: f.site_mode === "global" ? [] : f.site_ids,
    criteria: {
      match_mode: f.criteria.match_mode,
      rules: f.criteria.rules.map((r) => clean(r, RULES)),
    },
    actions: { actions: f.actions.actions.map((a) => clean(a, ACTIONS)) },
  };
}

/** Problems by field (`name`, `rules.0.service_name`, `actions.1.title`, …). */
export function validatePolicy(f: PolicyForm): Record<string, string> {
  const e: Record<string, string> = {};
  if (!f.name.trim()) e.name = "Give it a name";
  if (!f.criteria.rules.length) e.rules = "Add at least one rule";
  if (!f.targets.length) e.targets = "Pick what it watches";
  if (f.site_mode === "specific_sites" && !f.site_ids.length) e.site_ids = "Pick at least one site";
  const check = (
    prefix: string,
    item: Record<string, unknown> & { type: string },
    specs: Record<string, TypeSpec>,
  ) => {
    for (const field of specs[item.type]?.fields ?? []) {
      const v = item[field.key];
      if (field.kind === "number" && (v === "" || !Number.isFinite(Number(v)))) {
        e[`${prefix}.${field.key}`] = "A number";
      }
      if (
        (field.kind === "text" || field.kind === "assembly") && !field.optional &&
        !String(v ?? "").trim()
      ) {
        e[`${prefix}.${field.key}`] = "Required";
      }
    }
    if (
      item.type === "storage_usage_percent" && item.drive_mode === "specific" &&
      !String(item.drive ?? "").trim()
    ) {
      e[`${prefix}.drive`] = "Name the drive";
    }
  };
  f.criteria.rules.forEach((r, i) => check(`rules.${i}`, r, RULES));
  f.actions.actions.forEach((a, i) => check(`actions.${i}`, a, ACTIONS));
  return e;
}

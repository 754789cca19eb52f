/**
 * What a watchdog policy is made of (upstream §5): rules, actions, targets, anti-noise
 * settings, and the request bodies of the routes. Every input goes through these zod
 * schemas; defaults are upstream's.
 *
 * @module
 */
import { id } from "../../core/fields.ts";
import { z } from "@hono/zod-openapi";

/** Most rules one policy may hold (upstream: a flat list of at most 24). */
export const MAX_RULES = 24;

const name = z.string().trim().min(1).max(256);

/** `device_offline`: not heard from for `offline_after_seconds`. */
export const DeviceOfflineRule = z.object({
  type: z.literal("device_offline"),
  offline_after_seconds: z.number().int().min(60).max(30 * 86_400).default(300),
}).strict();

/** `storage_usage_percent`: a drive (all, or one named drive) at or above a threshold. */
export const StorageRule = z.object({
  type: z.literal("storage_usage_percent"),
  threshold: z.number().min(1).max(100).default(90),
  drive_mode: z.enum(["all", "specific"]).default("all"),
  drive: z.string().trim().max(256).optional(),
}).strict().refine((r) => r.drive_mode === "all" || !!r.drive, {
  message: "drive_mode specific needs a drive",
  path: ["drive"],
});

/** `service_state`: a service is not in the expected state. */
export const ServiceStateRule = z.object({
  type: z.literal("service_state"),
  service_name: name,
  expected_status: z.enum(["running", "stopped"]).default("running"),
}).strict();

/** Agent role health statuses. */
export const ROLE_STATUSES = [
  "healthy",
  "recovering",
  "unhealthy",
  "pending",
  "unsupported",
  "unknown",
] as const;

/** `agent_role_health`: an agent role reports one of the trigger statuses. */
export const RoleHealthRule = z.object({
  type: z.literal("agent_role_health"),
  role_name: name,
  trigger_statuses: z.array(z.enum(ROLE_STATUSES)).min(1).max(6).default(["unhealthy"]),
}).strict();

/** Version operators shared with device filters. */
export const VERSION_OPERATORS = ["matches", "older_than", "newer_than"] as const;

/** `software_presence_or_version`: missing (or present), optionally at a version. */
export const SoftwareRule = z.object({
  type: z.literal("software_presence_or_version"),
  software_name: name,
  software_source: z.string().trim().max(128).optional(),
  require_present: z.boolean().default(true),
  version_operator: z.enum(VERSION_OPERATORS).optional(),
  version_value: z.string().trim().min(1).max(128).optional(),
}).strict().refine((r) => !r.version_operator || !!r.version_value, {
  message: "version_operator needs a version_value",
  path: ["version_value"],
});

/** `cpu_percent` / `memory_percent`: a usage at or above a threshold. */
export const CpuRule = z.object({
  type: z.literal("cpu_percent"),
  threshold: z.number().min(1).max(100).default(90),
}).strict();
export const MemoryRule = z.object({
  type: z.literal("memory_percent"),
  threshold: z.number().min(1).max(100).default(90),
}).strict();

/** `uptime_above_seconds`: up for longer than this (a reboot is overdue). */
export const UptimeRule = z.object({
  type: z.literal("uptime_above_seconds"),
  seconds: z.number().int().min(60).max(10 * 365 * 86_400),
}).strict();

/** `reboot_detected`: the device rebooted within the last `within_seconds`. */
export const RebootRule = z.object({
  type: z.literal("reboot_detected"),
  within_seconds: z.number().int().min(60).max(30 * 86_400).default(3600),
}).strict();

/** `process_presence`: a process is not running (or is running when it must not). */
export const ProcessRule = z.object({
  type: z.literal("process_presence"),
  process_name: name,
  require_running: z.boolean().default(true),
}).strict();

/** Every rule. */
export const Rule = z.union([
  DeviceOfflineRule,
  StorageRule,
  ServiceStateRule,
  RoleHealthRule,
  SoftwareRule,
  CpuRule,
  MemoryRule,
  UptimeRule,
  RebootRule,
  ProcessRule,
]).openapi("WatchdogRule");
export type Rule = z.infer<typeof Rule>;
export type RuleType = Rule["type"];

/** Rule types, in the order the metadata route lists them. */
export const RULE_TYPES: readonly RuleType[] = [
  "device_offline",
  "storage_usage_percent",
  "service_state",
  "agent_role_health",
  "software_presence_or_version",
  "cpu_percent",
  "memory_percent",
  "uptime_above_seconds",
  "reboot_detected",
  "process_presence",
];

/** `criteria`: all rules, or any rule, must match. */
export const Criteria = z.object({
  match_mode: z.enum(["all", "any"]).default("all"),
  rules: z.array(Rule).min(1).max(MAX_RULES),
}).strict();

/** Actions run when an incident opens (and again on a re-trigger after the cooldown). */
export const Action = z.discriminatedUnion("type", [
  z.object({ type: z.literal("do_nothing") }).strict(),
  z.object({
    type: z.literal("notification"),
    variant: z.enum(["info", "success", "warning", "error"]).default("warning"),
    title: z.string().trim().min(1).max(200),
    message_template: z.string().trim().min(1).max(2000),
  }).strict(),
  z.object({
    type: z.literal("service_control"),
    action: z.enum(["start", "stop", "restart"]),
    service_name: name,
  }).strict(),
  z.object({
    type: z.literal("assembly"),
    assembly_guid: z.string().trim().regex(
      /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
      "assembly_guid must be a GUID",
    ).transform((g) => g.toLowerCase()),
    run_mode: z.enum(["system", "currentuser"]).default("system"),
    execution_context: z.enum(["local", "ssh", "winrm"]).default("local"),
    variable_values: z.record(z.string(), z.unknown()).default({}),
  }).strict(),
]).openapi("WatchdogAction");
export type Action = z.infer<typeof Action>;

/** A target: every device, one device, or a device filter (resolved when evaluated). */
export const Target = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("all_devices") }).strict(),
  z.object({
    kind: z.literal("device"),
    device_guid: z.string().regex(
      /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    ).transform((g) => g.toUpperCase()),
  }).strict(),
  z.object({ kind: z.literal("filter"), filter_id: id() }).strict(),
]).openapi("WatchdogTarget");
export type Target = z.infer<typeof Target>;

/** Body of create, update and preview. */
export const PolicyInput = z.object({
  name: z.string().trim().min(1).max(200),
  description: z.string().max(4000).default(""),
  enabled: z.boolean().default(true),
  archived: z.boolean().default(false),
  severity: z.enum(["info", "warning", "error"]).default("warning"),
  site_mode: z.enum(["global", "specific_sites", "global_exclusions"]).default("global"),
  site_ids: z.array(id()).max(1000).default([]),
  targets: z.array(Target).min(1).max(500).default([{ kind: "all_devices" }]),
  criteria: Criteria,
  actions: z.object({ actions: z.array(Action).max(10).default([]) }).strict()
    .default({ actions: [] }),
  evaluation_interval_seconds: z.number().int().min(30).max(86_400).default(60),
  cooldown_seconds: z.number().int().min(0).max(604_800).default(900),
  auto_resolve_after_seconds: z.number().int().min(0).max(604_800).default(300),
  min_consecutive_matches: z.number().int().min(1).max(100).default(1),
  boot_grace_seconds: z.number().int().min(0).max(86_400).default(0),
}).strict().openapi("WatchdogInput");
export type PolicyInput = z.infer<typeof PolicyInput>;

/** A stored policy. */
export interface Policy extends PolicyInput {
  id: string;
  last_edited_by: string | null;
  created_at: string;
  updated_at: string;
  last_evaluated_at: string | null;
}

/** Body of `POST /api/devices/{guid}/watchdogs/overrides`. */
export const OverrideInput = z.object({
  watchdog_id: z.string().uuid(),
  state: z.enum(["suppressed", "disabled", "clear"]),
  reason: z.string().trim().max(1000).default(""),
  expires_at: z.string().datetime({ offset: true }).nullable().optional(),
}).strict().openapi("WatchdogOverrideInput");

/** Body of `POST /api/watchdogs/incidents/{id}/state`. */
export const IncidentStateInput = z.object({
  state: z.enum(["open", "suppressed"]),
  reason: z.string().trim().max(1000).default(""),
}).strict();

/** Per-device evaluation states (upstream §5 runtime). */
export type DeviceState =
  | "normal"
  | "pending"
  | "triggered"
  | "suppressed"
  | "disabled"
  | "stale_data";

/**
 * Schemas of the realtime plugin: socket frames and telemetry bodies (upstream §3.4).
 * Telemetry accepts the upstream fields and drops unknown ones.
 *
 * @module
 */
import { id } from "../../core/fields.ts";
import { z } from "@hono/zod-openapi";
import { cleanText } from "../../core/text.ts";

/**
 * What agents report about their machines is cleaned, not refused: NUL characters are
 * removed and unpaired surrogates become U+FFFD (a Windows registry value can hold a
 * NUL; PostgreSQL stores neither), and the rest of the report is kept.
 */
const cleaned = <T extends z.ZodType>(schema: T) => z.preprocess((v) => cleanText(v), schema);

/** Every socket frame: `{type, id?, data}`. */
export const Frame = z.object({
  type: z.string().min(1).max(64).regex(/^[a-z][a-z0-9_]*$/),
  id: z.string().min(1).max(64).optional(),
  data: z.unknown().optional(),
});

const shortText = z.string().max(512);
const json = z.record(z.string(), z.unknown());

/** `metrics` of a heartbeat. */
export const Metrics = z.object({
  last_user: shortText.optional(),
  operating_system: shortText.optional(),
  uptime: z.number().int().min(0).max(10 * 365 * 86_400).optional(),
  domain: shortText.optional(),
  last_reboot: z.string().datetime({ offset: true }).optional(),
  cpu_percent: z.number().min(0).max(100).optional(),
  memory_percent: z.number().min(0).max(100).optional(),
  service_mode: z.enum(["system", "currentuser"]).optional(),
}).strip();

/** Body of `POST /api/agent/heartbeat` and data of a socket `heartbeat`. */
export const Heartbeat = cleaned(
  z.object({
    hostname: z.string().min(1).max(255).optional(),
    inventory: z.object({
      memory: z.unknown().optional(),
      network: z.unknown().optional(),
      software: z.unknown().optional(),
      storage: z.unknown().optional(),
      cpu: z.unknown().optional(),
    }).strip().optional(),
    metrics: Metrics.optional(),
    external_ip: z.string().max(64).optional(),
    internal_ip: z.string().max(64).optional(),
    device_type: z.string().max(64).optional(),
    agent_build_id: z.string().max(128).optional(),
    installed_build_id: z.string().max(128).optional(),
    agent_hash: z.string().max(128).optional(),
    agent_role_health: json.optional(),
  }).strip(),
).openapi("AgentHeartbeat");

/** Body of `POST /api/agent/status`. */
export const Status = cleaned(
  z.object({
    hostname: z.string().min(1).max(255).optional(),
    status: z.string().max(64).optional(),
    service_mode: z.enum(["system", "currentuser"]).optional(),
    agent_hash: z.string().max(128).optional(),
  }).strip(),
).openapi("AgentStatus");

const Software = z.object({
  name: z.string().min(1).max(512),
  version: z.string().max(256).optional().default(""),
  source: z.string().max(128).optional().default(""),
}).strip();

/** Body of `POST /api/agent/details`. */
export const Details = cleaned(
  z.object({
    hostname: z.string().min(1).max(255).optional(),
    agent_hash: z.string().max(128).optional(),
    guid: z.string().max(64).optional(),
    details: z.object({
      summary: json.optional(),
      memory: z.array(z.unknown()).max(10_000).optional(),
      network: z.array(z.unknown()).max(10_000).optional(),
      software: z.array(Software).max(50_000).optional(),
      storage: z.array(z.unknown()).max(10_000).optional(),
      cpu: json.optional(),
      services: z.unknown().optional(),
      sessions: z.unknown().optional(),
      processes: z.unknown().optional(),
      patches: z.unknown().optional(),
    }).strip(),
  }).strip(),
).openapi("AgentDetails");

/** `connect_agent` frame data. */
/** An agent's `error` frame: it could not handle an engine message (`id` echoes it). */
export const AgentError = z.object({
  code: z.string().min(1).max(64),
  message: z.string().max(2000).optional(),
}).passthrough();

export const ConnectAgent = z.object({
  agent_id: z.string().min(1).max(300),
  service_mode: z.enum(["system", "currentuser"]).default("system"),
  hostname: z.string().max(255).optional(),
  helper_contexts: z.array(z.string().max(64)).max(16).optional(),
});

/** Topics an operator socket may subscribe to. */
export const TOPICS = [
  "device_status",
  "inventory",
  "activity",
  "approvals",
  "incidents",
  "notifications",
  "presence",
] as const;
export type Topic = typeof TOPICS[number];

/** Frames an operator sends. */
export const OperatorFrame = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("subscribe"),
    id: z.string().max(64).optional(),
    data: z.object({ topics: z.array(z.enum(TOPICS)).min(1).max(TOPICS.length) }),
  }),
  z.object({
    type: z.literal("unsubscribe"),
    id: z.string().max(64).optional(),
    data: z.object({ topics: z.array(z.enum(TOPICS)).min(1).max(TOPICS.length) }),
  }),
  z.object({
    type: z.literal("operator_presence_sync"),
    id: z.string().max(64).optional(),
    data: z.object({ current_page: z.string().max(300) }),
  }),
  z.object({
    type: z.literal("operator_presence_clear"),
    id: z.string().max(64).optional(),
    data: z.unknown().optional(),
  }),
  z.object({
    type: z.literal("ping"),
    id: z.string().max(64).optional(),
    data: z.unknown().optional(),
  }),
]);

/** Body of `POST /api/notifications/notify`. */
export const Notify = z.object({
  title: z.string().trim().min(1).max(200),
  message: z.string().trim().min(1).max(4000),
  icon: z.string().max(64).optional(),
  variant: z.enum(["info", "success", "warning", "error"]).default("info"),
  site_id: id().optional(),
}).strict().openapi("Notification");

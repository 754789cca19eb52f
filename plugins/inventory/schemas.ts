/**
 * Shared zod schemas of the inventory routes (OpenAPI components).
 *
 * @module
 */
import { z } from "@hono/zod-openapi";

/** The one error body. */
export const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
}).openapi("Error");

/** JSON error response entry for createRoute. */
export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorBody } },
});

/** JSON success response entry for createRoute. */
export const jsonResponse = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { "application/json": { schema } },
});

/** JSON request body entry for createRoute. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});

export const Site = z.object({
  id: z.number().int(),
  name: z.string(),
  description: z.string(),
  created_at: z.string(),
  device_count: z.number().int(),
  online_count: z.number().int().describe("Devices whose presence is online"),
  offline_count: z.number().int().describe("Devices whose presence is offline (or never heard)"),
  overdue_count: z.number().int().describe("Devices whose presence is overdue"),
  enrollment_code: z.string().nullable(),
  auto_approve_until: z.string().nullable(),
  install_commands: z.record(z.string(), z.unknown()).nullable().optional().describe(
    "added by the agent_updates plugin (Admins): the site's current install commands",
  ),
}).openapi("Site");

export const Device = z.object({
  guid: z.string(),
  hostname: z.string(),
  description: z.string(),
  site_id: z.number().int().nullable(),
  site_name: z.string().nullable(),
  status: z.enum(["Online", "Offline"]).openapi({
    description:
      "Online while presence is online; Offline when offline or overdue (upstream's two states)",
  }),
  presence: z.enum(["online", "offline", "overdue"]).openapi({
    description:
      "online: heard from within BOREALIS_AGENT_OFFLINE_SECONDS (an open agent socket counts); " +
      "offline after that; overdue after BOREALIS_AGENT_OVERDUE_SECONDS",
  }),
  containment_status: z.enum(["active", "quarantined", "revoked", "decommissioned"]),
  token_version: z.number().int(),
  ssl_key_fingerprint: z.string().nullable(),
  last_seen: z.string().nullable(),
  created_at: z.string(),
  last_enrollment_at: z.string().nullable(),
  agent_hash: z.string().nullable(),
  agent_version: z.string().nullable().describe("details.summary.agent_version, when reported"),
  cpu: z.string().nullable().describe("CPU name from the details document"),
  inventory_counts: z.object({
    memory_modules: z.number().int().nullable(),
    volumes: z.number().int().nullable(),
    network_adapters: z.number().int().nullable(),
    software_items: z.number().int().nullable(),
  }).describe("Sizes of the inventory lists (null: not reported)"),
  summary: z.record(z.string(), z.unknown()),
  agent: z.record(z.string(), z.unknown()).nullable().optional().describe(
    "added by the agent_updates plugin: agent version, platform, channel and update state",
  ),
}).openapi("Device");

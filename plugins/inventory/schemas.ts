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
  status: z.enum(["Online", "Offline"]),
  containment_status: z.enum(["active", "quarantined", "revoked", "decommissioned"]),
  token_version: z.number().int(),
  ssl_key_fingerprint: z.string().nullable(),
  last_seen: z.string().nullable(),
  created_at: z.string(),
  last_enrollment_at: z.string().nullable(),
  agent_hash: z.string().nullable(),
  summary: z.record(z.string(), z.unknown()),
  agent: z.record(z.string(), z.unknown()).nullable().optional().describe(
    "added by the agent_updates plugin: agent version, platform, channel and update state",
  ),
}).openapi("Device");

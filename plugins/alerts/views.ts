/**
 * Response schemas of the alerts routes (they also document the API in
 * `GET /api/openapi.json`).
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import { ALERT_EVENTS, CHANNEL_KINDS, DELIVERY_STATUSES } from "./api.ts";
import { QuietHours } from "./quiet_hours.ts";

/** A channel (secrets only as flags). */
export const ChannelView = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(CHANNEL_KINDS),
  enabled: z.boolean(),
  config: z.record(z.string(), z.unknown()),
  secrets: z.object({ url: z.boolean(), signing_secret: z.boolean(), password: z.boolean() }),
  needs_secrets: z.boolean(),
  rate_per_minute: z.number(),
  digest_minutes: z.number(),
  quiet_hours: QuietHours.nullable(),
  operator_mail: z.boolean(),
  created_by: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  stats: z.object({
    held: z.number(),
    queued: z.number(),
    sending: z.number(),
    delivered: z.number(),
    dead: z.number(),
    last_delivered_at: z.string().nullable(),
    last_error: z.string().nullable(),
    last_error_at: z.string().nullable(),
  }),
}).openapi("AlertChannel");

/** A create or replace answer: the channel, and a generated signing secret (shown once). */
export const ChannelSaved = z.object({
  channel: ChannelView,
  signing_secret: z.string().nullable(),
}).openapi("AlertChannelSaved");

/** What "send test" got back. */
export const TestResult = z.object({
  delivery_id: z.string(),
  ok: z.boolean(),
  status: z.number().nullable(),
  response: z.string(),
  error: z.string().nullable(),
  permanent: z.boolean(),
  retryAfterMs: z.number().nullable(),
  durationMs: z.number(),
}).openapi("AlertTestResult");

/** A route. */
export const RouteView = z.object({
  id: z.string(),
  name: z.string(),
  enabled: z.boolean(),
  watchdog_id: z.string().nullable(),
  min_severity: z.string(),
  site_ids: z.array(z.number()),
  events: z.array(z.string()),
  channel_ids: z.array(z.string()),
  created_by: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
}).openapi("AlertRoute");

/** One entry of the delivery log. */
export const DeliveryView = z.object({
  id: z.string(),
  /** Log position (newer is larger); `before` pages with it. */
  seq: z.string(),
  channel_id: z.string(),
  channel_name: z.string(),
  channel_kind: z.string(),
  kind: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  incident_id: z.string().nullable(),
  severity: z.string().nullable(),
  title: z.string().nullable(),
  hostname: z.string().nullable(),
  recipient: z.string().nullable(),
  attempts: z.number(),
  next_attempt_at: z.string().nullable(),
  last_attempt_at: z.string().nullable(),
  delivered_at: z.string().nullable(),
  last_error: z.string().nullable(),
  response_status: z.number().nullable(),
  response_excerpt: z.string().nullable(),
  held_reason: z.string().nullable(),
  hold_until: z.string().nullable(),
  digest_id: z.string().nullable(),
  digest_count: z.number(),
  created_at: z.string(),
}).openapi("AlertDelivery");

/** The signed-in operator's subscription. */
export const SubscriptionView = z.object({
  enabled: z.boolean(),
  min_severity: z.enum(["info", "warning", "error"]),
  events: z.array(z.enum(ALERT_EVENTS)),
  email: z.string().nullable(),
  operator_mail_channel: z.boolean(),
}).openapi("AlertSubscription");

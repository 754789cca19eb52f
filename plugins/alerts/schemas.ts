/**
 * Request bodies of the alerts routes: channels (one shape per kind), routes and
 * operators' subscriptions. Secrets (webhook URLs, signing secrets, SMTP passwords) are
 * write-only: an update that omits one keeps the stored value.
 *
 * @module
 */
import { id } from "../../core/fields.ts";
import { z } from "@hono/zod-openapi";
import { ALERT_EVENTS } from "./api.ts";
import { QuietHours } from "./quiet_hours.ts";

// deno-lint-ignore no-control-regex -- refusing control characters is the point
const plain = (max: number) => z.string().trim().max(max).regex(/^[^\u0000-\u001f\u007f]*$/);

const Severity = z.enum(["info", "warning", "error"]);
const Events = z.array(z.enum(ALERT_EVENTS)).min(1).max(4).transform((e) => [...new Set(e)]);
const Pem = z.string().max(20_000).regex(/-----BEGIN CERTIFICATE-----/, "a PEM certificate");
const Url = z.string().trim().min(1).max(2000);

const common = {
  name: plain(200).min(1),
  enabled: z.boolean().default(true),
  rate_per_minute: z.number().int().min(1).max(10_000).optional(),
  digest_minutes: z.number().int().min(0).max(1440).default(0),
  quiet_hours: QuietHours.nullable().default(null),
};

const webhook = z.object({
  ...common,
  kind: z.literal("webhook"),
  url: Url.optional(),
  /** Omitted on create: the engine makes one and answers it once. */
  signing_secret: z.string().min(16).max(200).optional(),
  ca_pem: Pem.nullable().optional(),
}).strict();

const chat = (kind: "slack" | "discord" | "teams") =>
  z.object({ ...common, kind: z.literal(kind), url: Url.optional() }).strict();

const email = z.object({
  ...common,
  kind: z.literal("email"),
  host: z.string().trim().min(1).max(253).regex(/^[A-Za-z0-9.:\-\[\]]+$/, "a host name or address"),
  port: z.number().int().min(1).max(65_535).optional(),
  security: z.enum(["starttls", "tls"]).default("starttls"),
  username: plain(256).min(1).nullable().default(null),
  password: z.string().min(1).max(1024).nullable().optional(),
  from: z.email().max(254),
  to: z.array(z.email().max(254)).max(50).default([]),
  ca_pem: Pem.nullable().optional(),
  /** This channel also carries operators' own alert mail (at most one channel). */
  operator_mail: z.boolean().default(false),
}).strict();

/** Body of create and replace. */
export const ChannelInput = z.discriminatedUnion("kind", [
  webhook,
  chat("slack"),
  chat("discord"),
  chat("teams"),
  email,
]).openapi("AlertChannelInput");
export type ChannelInput = z.infer<typeof ChannelInput>;

/** Body of create and replace of a route. */
export const RouteInput = z.object({
  name: plain(200).min(1),
  enabled: z.boolean().default(true),
  /** The watchdog this route is for; null: a default route. */
  watchdog_id: z.uuid().nullable().default(null),
  min_severity: Severity.default("info"),
  /** Only incidents of these sites; empty: every site. */
  site_ids: z.array(id()).max(1000).default([])
    .transform((s) => [...new Set(s)].sort((a, b) => a - b)),
  events: Events.default(["opened", "escalated", "acknowledged", "resolved"]),
  channel_ids: z.array(z.uuid()).min(1).max(50).transform((c) => [...new Set(c)]),
}).strict().openapi("AlertRouteInput");
export type RouteInput = z.infer<typeof RouteInput>;

/** Body of `PUT /api/alerts/subscription`. */
export const SubscriptionInput = z.object({
  enabled: z.boolean(),
  min_severity: Severity.default("error"),
  events: Events.default(["opened", "escalated", "resolved"]),
}).strict().openapi("AlertSubscriptionInput");
export type SubscriptionInput = z.infer<typeof SubscriptionInput>;

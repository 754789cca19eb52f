/**
 * The alerts plugin's public contract: its service key, event key and the types of the
 * messages it sends (the versioned webhook body is documented in docs/alerts.md).
 *
 * @module
 */
import { eventKey } from "../../core/events.ts";
import { serviceKey } from "../../core/plugin.ts";
import type { Severity } from "../watchdogs/api.ts";

/** Channel kinds. */
export const CHANNEL_KINDS = ["webhook", "slack", "discord", "teams", "email"] as const;
export type ChannelKind = typeof CHANNEL_KINDS[number];

/** Incident events a route or a subscription can ask for. */
export const ALERT_EVENTS = ["opened", "escalated", "acknowledged", "resolved"] as const;
export type AlertEventKind = typeof ALERT_EVENTS[number];

/** What a delivery carries. */
export type DeliveryKind = AlertEventKind | "digest" | "test";

/** Where a delivery stands. */
export const DELIVERY_STATUSES = [
  "held",
  "queued",
  "sending",
  "delivered",
  "dead",
  "digested",
] as const;
export type DeliveryStatus = typeof DELIVERY_STATUSES[number];

/** Severities, lowest first. */
export const SEVERITIES: readonly Severity[] = ["info", "warning", "error"];

/** Rank of a severity (info 0, warning 1, error 2). */
export const severityRank = (s: string): number => SEVERITIES.indexOf(s as Severity);

/** An incident as messages show it. */
export interface IncidentPayload {
  id: string;
  /** The incident in the console: `<public base URL>/alerts?incident=<id>`. */
  url: string;
  watchdog_id: string;
  watchdog_name: string;
  device_guid: string;
  /** The device in the console: `<public base URL>/devices/<guid>`. */
  device_url: string;
  hostname: string;
  site_id: number | null;
  severity: Severity;
  state: "open" | "suppressed" | "resolved";
  title: string;
  message: string;
  trigger_count: number;
  opened_at: string;
  resolved_at: string | null;
  resolution_reason: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
}

/** One incident event in a message. */
export interface EventItem {
  /** `incident.opened`, `incident.escalated`, `incident.acknowledged`, `incident.resolved`. */
  type: `incident.${AlertEventKind}`;
  occurred_at: string;
  /** Why: the resolution reason, or what escalated (`trigger_count`, `severity`). */
  reason: string | null;
  previous_severity: Severity | null;
  incident: IncidentPayload;
}

/** A message, before a channel kind shapes it. */
export type AlertMessage =
  | { type: "incident"; deliveryId: string; sentAt: string; item: EventItem }
  | {
    type: "digest";
    deliveryId: string;
    sentAt: string;
    /** Every event of the digest, oldest first (bodies list at most a few dozen). */
    items: EventItem[];
    reason: "quiet_hours" | "digest";
  }
  | { type: "test"; deliveryId: string; sentAt: string; channel: { id: string; name: string } };

/** What one send attempt got back. */
export interface SendResult {
  ok: boolean;
  /** HTTP status, or the SMTP reply code. */
  status: number | null;
  /** The start of the remote answer (secrets never appear in it). */
  response: string;
  error: string | null;
  /** No retry can help (4xx, refused address, bad configuration). */
  permanent: boolean;
  /** The remote asked to wait this long (429 Retry-After). */
  retryAfterMs: number | null;
  durationMs: number;
}

/** Published when a delivery gives up (dead letter). */
export interface DeliveryDead {
  delivery_id: string;
  channel_id: string;
  kind: DeliveryKind;
  incident_id: string | null;
  attempts: number;
  last_error: string | null;
}

/** `alerts.delivery_dead`: a delivery reached the dead-letter state. */
export const deliveryDead = eventKey<DeliveryDead>("alerts.delivery_dead");

/** Counters of one worker cycle. */
export interface CycleStats {
  /** Outbox events fanned out. */
  dispatched: number;
  /** Deliveries created by the fan-out. */
  created: number;
  /** Held deliveries released (as themselves or as a digest). */
  released: number;
  /** Deliveries claimed for sending. */
  claimed: number;
}

/** What `ctx.use(alertsKey)` (and tests, benchmarks) get. */
export interface AlertsApi {
  /** One worker cycle: fan out the outbox, release held messages, claim and start sends. */
  cycle(): Promise<CycleStats>;
  /** Resolves when every send this instance started has finished. */
  drain(): Promise<void>;
  /** Sends in flight on this instance. */
  readonly inFlight: number;
}

/** Service key of the alerts plugin. */
export const alertsKey = serviceKey<AlertsApi>("alerts.service");

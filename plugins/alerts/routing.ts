/**
 * Routing: which channels (and which operators' mailboxes) an incident event goes to,
 * and whether each message goes out now or is held for quiet hours or a digest. A pure
 * function of the event and the configuration, so the rules are tested without a
 * database:
 *
 * - A watchdog with at least one enabled route of its own uses only its own routes;
 *   every other watchdog uses the default routes (routes without a watchdog).
 * - A route matches an event when the event kind is in its `events`, the incident's
 *   severity is at least its `min_severity`, and its `site_ids` are empty or hold the
 *   incident's site. Each channel gets one message per event, however many routes match.
 * - Operators who opted in get mail at their own address through the operator-mail
 *   channel, for incidents on sites they can see, by their own severity and events.
 * - Quiet hours hold a message below the channel's breakthrough severity until the
 *   quiet period ends; a digest channel holds every message until its window closes. Held
 *   messages of one channel (and one recipient) go out together.
 *
 * @module
 */
import { type AlertEventKind, severityRank } from "./api.ts";
import { quietUntil } from "./quiet_hours.ts";
import type { ChannelRow, RouteRow, SubscriptionRow } from "./store.ts";

/** An outbox event as the dispatcher reads it. */
export interface OutboxEvent {
  id: string;
  kind: AlertEventKind;
  incident_id: string;
  watchdog_id: string;
  site_id: number | null;
  severity: string;
}

/** An operator who may get mail, with what they may see. */
export interface Recipient {
  userId: string;
  email: string;
  sites: "all" | readonly number[];
  subscription: Pick<SubscriptionRow, "min_severity" | "events">;
}

/** A delivery to create. */
export interface PlannedDelivery {
  id: string;
  channel_id: string;
  event_id: string;
  recipient_user_id: string | null;
  recipient: string | null;
  kind: AlertEventKind;
  incident_id: string;
  severity: string;
  status: "queued" | "held";
  held_reason: "quiet_hours" | "digest" | null;
  hold_until: string | null;
}

/** The configuration a plan is made from. */
export interface RoutingConfig {
  routes: readonly RouteRow[];
  /** Enabled channels that can send (secrets present). */
  channels: ReadonlyMap<string, ChannelRow>;
  /** Opted-in operators (already filtered to an address and an enabled account). */
  recipients: readonly Recipient[];
  /** Earliest hold_until of messages already held, by `<channel>|<recipient or ''>`. */
  heldUntil: Map<string, number>;
}

const groupKey = (channelId: string, userId: string | null) => `${channelId}|${userId ?? ""}`;

/** Whether and until when a new message to `channel` is held. */
export function holdOf(
  channel: Pick<ChannelRow, "quiet_hours_json" | "digest_minutes">,
  severity: string,
  now: number,
  groupUntil: number | undefined,
): { held_reason: "quiet_hours" | "digest"; hold_until: number } | null {
  const q = channel.quiet_hours_json;
  const quietEnd = q ? quietUntil(q, now) : null;
  const breaks = q?.breakthrough_severity != null &&
    severityRank(severity) >= severityRank(q.breakthrough_severity);
  if (quietEnd !== null && !breaks) {
    return { held_reason: "quiet_hours", hold_until: Math.max(quietEnd, groupUntil ?? 0) };
  }
  if (channel.digest_minutes > 0) {
    return {
      held_reason: "digest",
      hold_until: groupUntil ?? now + channel.digest_minutes * 60_000,
    };
  }
  return null;
}

const matches = (
  r: Pick<RouteRow, "events" | "min_severity" | "site_ids">,
  e: OutboxEvent,
) =>
  r.events.includes(e.kind) && severityRank(e.severity) >= severityRank(r.min_severity) &&
  (!r.site_ids.length || (e.site_id !== null && r.site_ids.includes(e.site_id)));

/** The channel ids one event goes to. */
export function channelsFor(e: OutboxEvent, routes: readonly RouteRow[]): Set<string> {
  const own = routes.filter((r) => r.enabled && r.watchdog_id === e.watchdog_id);
  const candidates = own.length ? own : routes.filter((r) => r.enabled && r.watchdog_id === null);
  const out = new Set<string>();
  for (const r of candidates) {
    if (matches(r, e)) { for (const c of r.channel_ids) out.add(c); }
  }
  return out;
}

/** Plans the deliveries of a batch of events (mutates `cfg.heldUntil` for new groups). */
export function plan(
  events: readonly OutboxEvent[],
  cfg: RoutingConfig,
  now: number,
): PlannedDelivery[] {
  const out: PlannedDelivery[] = [];
  const operatorChannel = [...cfg.channels.values()].find((c) => c.operator_mail);
  const add = (e: OutboxEvent, channel: ChannelRow, recipient: Recipient | null) => {
    const key = groupKey(channel.id, recipient?.userId ?? null);
    const hold = holdOf(channel, e.severity, now, cfg.heldUntil.get(key));
    if (hold && !cfg.heldUntil.has(key)) cfg.heldUntil.set(key, hold.hold_until);
    out.push({
      id: crypto.randomUUID(),
      channel_id: channel.id,
      event_id: e.id,
      recipient_user_id: recipient?.userId ?? null,
      recipient: recipient?.email ?? null,
      kind: e.kind,
      incident_id: e.incident_id,
      severity: e.severity,
      status: hold ? "held" : "queued",
      held_reason: hold?.held_reason ?? null,
      hold_until: hold ? new Date(hold.hold_until).toISOString() : null,
    });
  };
  for (const e of events) {
    for (const id of channelsFor(e, cfg.routes)) {
      const channel = cfg.channels.get(id);
      if (channel) add(e, channel, null);
    }
    if (!operatorChannel) continue;
    for (const r of cfg.recipients) {
      const visible = r.sites === "all" || (e.site_id !== null && r.sites.includes(e.site_id));
      if (
        visible && r.subscription.events.includes(e.kind) &&
        severityRank(e.severity) >= severityRank(r.subscription.min_severity)
      ) add(e, operatorChannel, r);
    }
  }
  return out;
}

/**
 * SQL of the outbox and the delivery log. Events are inserted by the watchdogs write
 * hook in the incident's own transaction ({@link Outbox.record}); the worker claims
 * them, fans them out into deliveries, releases held deliveries (quiet hours, digests),
 * claims due deliveries per channel within the channel's rate and records each attempt.
 * Every claim is `FOR UPDATE SKIP LOCKED` with a lease and a token, so two instances
 * never take the same row, and only the claimant can record its outcome.
 *
 * @module
 */
import type { TransactionSql } from "postgres";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { IncidentEvent } from "../watchdogs/api.ts";
import { type AlertEventKind, type DeliveryKind, type EventItem, severityRank } from "./api.ts";
import type { OutboxEvent, PlannedDelivery } from "./routing.ts";

/** An event's stored payload (links are added when a message is shaped). */
export type StoredItem = Omit<EventItem, "incident"> & {
  incident: Omit<EventItem["incident"], "url" | "device_url">;
};

/** A claimed delivery. */
export interface ClaimedDelivery {
  id: string;
  channel_id: string;
  event_id: string | null;
  recipient_user_id: string | null;
  recipient: string | null;
  kind: DeliveryKind;
  incident_id: string | null;
  attempts: number;
  payload_json: { reason: "quiet_hours" | "digest"; event_ids: string[] } | null;
}

/** What an attempt ended in. */
export type Outcome =
  | { status: "delivered"; responseStatus: number | null; response: string }
  | {
    status: "queued" | "dead";
    nextAttemptAt: number;
    error: string;
    responseStatus: number | null;
    response: string;
  };

/** Maps an incident change to the alert event it is, if any. */
export function alertEventOf(
  e: IncidentEvent,
): { kind: AlertEventKind; reason: string | null } | null {
  switch (e.change) {
    case "opened":
      return { kind: "opened", reason: null };
    case "retriggered":
      // A suppressed incident still counts re-triggers; its operators asked for quiet.
      return e.incident.state === "suppressed"
        ? null
        : { kind: "escalated", reason: "trigger_count" };
    case "severity_changed":
      return e.incident.state !== "suppressed" && e.previous_severity &&
          severityRank(e.incident.severity) > severityRank(e.previous_severity)
        ? { kind: "escalated", reason: "severity" }
        : null;
    case "acknowledged":
      return { kind: "acknowledged", reason: null };
    case "resolved":
      return { kind: "resolved", reason: e.reason ?? e.incident.resolution_reason };
    default:
      return null;
  }
}

/** Outcomes written in one statement at most, and how long the first one waits for others. */
const FINISH_BATCH = 64;
const FINISH_WAIT_MS = 5;

interface FinishRow {
  id: string;
  token: string;
  status: "delivered" | "queued" | "dead";
  next_attempt_at: string;
  delivered_at: string | null;
  last_error: string | null;
  response_status: number | null;
  response_excerpt: string;
}

/** The outbox and delivery tables. */
export class Outbox {
  constructor(private readonly sql: Sql, private readonly clock: Clock) {}

  /** The write hook: one outbox row per alert-worthy change, in the caller's transaction. */
  async record(tx: TransactionSql, events: readonly IncidentEvent[]): Promise<void> {
    const rows = [];
    for (const e of events) {
      const a = alertEventOf(e);
      if (!a) continue;
      const item: StoredItem = {
        type: `incident.${a.kind}`,
        occurred_at: e.at,
        reason: a.reason,
        previous_severity: a.reason === "severity" ? e.previous_severity ?? null : null,
        incident: e.incident,
      };
      rows.push({
        kind: a.kind,
        incident_id: e.incident.id,
        watchdog_id: e.incident.watchdog_id,
        site_id: e.incident.site_id,
        severity: e.incident.severity,
        payload: item,
        at: e.at,
      });
    }
    if (!rows.length) return;
    await tx`
      insert into alert_events (kind, incident_id, watchdog_id, site_id, severity, payload_json,
        occurred_at)
      select v.kind, v.incident_id, v.watchdog_id, v.site_id, v.severity, v.payload, v.at
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as v(kind text, incident_id uuid,
        watchdog_id uuid, site_id integer, severity text, payload jsonb, at timestamptz)`;
  }

  /** Claims up to `limit` events not yet fanned out, for `leaseMs`. */
  async claimEvents(limit: number, leaseMs: number): Promise<OutboxEvent[]> {
    const now = this.clock.now();
    return await this.sql<OutboxEvent[]>`
      update alert_events e set claimed_until = ${new Date(now + leaseMs)}
      where e.id in (
        select id from alert_events
        where dispatched_at is null and (claimed_until is null or claimed_until < ${new Date(now)})
        order by id limit ${limit} for update skip locked)
      returning e.id::text, e.kind, e.incident_id, e.watchdog_id, e.site_id, e.severity`;
  }

  /** Earliest hold of the messages already held, by channel and recipient. */
  async heldGroups(): Promise<Map<string, number>> {
    const rows = await this.sql<{ k: string; until: Date }[]>`
      select channel_id::text || '|' || coalesce(recipient_user_id::text, '') as k,
        min(hold_until) as until
      from alert_deliveries where status = 'held' group by 1`;
    return new Map(rows.map((r) => [r.k, r.until.getTime()]));
  }

  /** Stores planned deliveries and marks their events fanned out, together. */
  async writeDeliveries(eventIds: string[], planned: PlannedDelivery[]): Promise<number> {
    const now = new Date(this.clock.now());
    return await this.sql.begin(async (tx) => {
      let created = 0;
      if (planned.length) {
        const r = await tx`
          insert into alert_deliveries (id, channel_id, event_id, recipient_user_id, recipient, kind,
            incident_id, severity, status, held_reason, hold_until, next_attempt_at, created_at)
          select v.id, v.channel_id, v.event_id, v.recipient_user_id, v.recipient, v.kind,
            v.incident_id, v.severity, v.status, v.held_reason, v.hold_until, ${now}, ${now}
          from jsonb_to_recordset(${
          tx.json(planned as never)
        }::jsonb) as v(id uuid, channel_id uuid,
            event_id bigint, recipient_user_id uuid, recipient text, kind text, incident_id uuid,
            severity text, status text, held_reason text, hold_until timestamptz)
          on conflict do nothing`;
        created = r.count;
      }
      await tx`update alert_events set dispatched_at = ${now}, claimed_until = null
               where id = any(${eventIds}::bigint[])`;
      return created;
    });
  }

  /**
   * Releases held messages whose time has come: per channel and recipient, one due
   * message goes out as itself, several as one digest. Returns how many were released.
   */
  async release(): Promise<number> {
    const now = new Date(this.clock.now());
    const groups = await this.sql<{ channel_id: string; recipient_user_id: string | null }[]>`
      select channel_id, recipient_user_id from alert_deliveries
      where status = 'held' and hold_until <= ${now}
      group by channel_id, recipient_user_id`;
    let released = 0;
    for (const g of groups) {
      released += await this.sql.begin(async (tx) => {
        const rows = await tx<
          {
            id: string;
            event_id: string | null;
            severity: string | null;
            held_reason: string;
            recipient: string | null;
          }[]
        >`
          select id, event_id::text, severity, held_reason, recipient from alert_deliveries
          where status = 'held' and hold_until <= ${now} and channel_id = ${g.channel_id}
            and recipient_user_id is not distinct from ${g.recipient_user_id}
          order by event_id, created_at for update skip locked`;
        if (!rows.length) return 0;
        if (rows.length === 1) {
          await tx`update alert_deliveries set status = 'queued', next_attempt_at = ${now}
                   where id = ${rows[0]!.id}`;
          return 1;
        }
        const id = crypto.randomUUID();
        const severity = rows.map((r) => r.severity ?? "info")
          .sort((a, b) => severityRank(b) - severityRank(a))[0]!;
        const reason = rows.some((r) => r.held_reason === "quiet_hours") ? "quiet_hours" : "digest";
        const payload = {
          reason,
          event_ids: rows.flatMap((r) => (r.event_id ? [r.event_id] : [])),
        };
        await tx`
          insert into alert_deliveries (id, channel_id, recipient_user_id, recipient, kind, severity,
            status, next_attempt_at, payload_json, created_at)
          values (${id}, ${g.channel_id}, ${g.recipient_user_id}, ${rows[0]!.recipient}, 'digest',
            ${severity}, 'queued', ${now}, ${tx.json(payload)}, ${now})`;
        await tx`update alert_deliveries set status = 'digested', digest_id = ${id}
                 where id = any(${rows.map((r) => r.id)}::uuid[])`;
        return rows.length;
      });
    }
    return released;
  }

  /** Puts back deliveries whose sender's claim ran out (it stopped or died mid-send). */
  async recoverExpired(): Promise<number> {
    const now = new Date(this.clock.now());
    const r = await this.sql`
      update alert_deliveries set status = 'queued', claim_token = null, claimed_until = null,
        next_attempt_at = ${now}
      where status = 'sending' and claimed_until < ${now}`;
    return r.count;
  }

  /**
   * Channels (or the one channel) with a due delivery, with their attempts in the last
   * minute. Due messages are not counted: a claim takes what there is, and a dead
   * channel's backlog may be long.
   */
  async load(channelId?: string): Promise<Map<string, { recent: number }>> {
    const now = this.clock.now();
    const out = new Map<string, { recent: number }>();
    const rows = channelId
      ? await this.sql<{ channel_id: string }[]>`
        select ${channelId}::uuid as channel_id where exists (
          select 1 from alert_deliveries
          where channel_id = ${channelId} and status = 'queued' and next_attempt_at <= ${new Date(
        now,
      )})`
      : await this.sql<{ channel_id: string }[]>`
        select distinct channel_id from alert_deliveries
        where status = 'queued' and next_attempt_at <= ${new Date(now)}`;
    for (const r of rows) out.set(r.channel_id, { recent: 0 });
    if (!out.size) return out;
    // Bounded by the rate limits: never more rows than the channels' rates allow per minute.
    for (
      const r of await this.sql<{ channel_id: string; n: number }[]>`
        select channel_id, count(*)::int as n from alert_deliveries
        where last_attempt_at > ${new Date(now - 60_000)}
          and channel_id = any(${[...out.keys()]}::uuid[])
        group by channel_id`
    ) out.get(r.channel_id)!.recent = r.n;
    return out;
  }

  /** Claims up to `n` due deliveries of one channel for `leaseMs`, counting the attempt. */
  async claim(
    channelId: string,
    n: number,
    token: string,
    leaseMs: number,
  ): Promise<ClaimedDelivery[]> {
    const now = this.clock.now();
    return await this.sql<ClaimedDelivery[]>`
      update alert_deliveries d set status = 'sending', claim_token = ${token},
        claimed_until = ${new Date(now + leaseMs)}, attempts = d.attempts + 1,
        last_attempt_at = ${new Date(now)}
      where d.id in (
        select id from alert_deliveries
        where channel_id = ${channelId} and status = 'queued' and next_attempt_at <= ${new Date(
      now,
    )}
        order by next_attempt_at, id limit ${n} for update skip locked)
      returning d.id, d.channel_id, d.event_id::text, d.recipient_user_id, d.recipient, d.kind,
        d.incident_id, d.attempts, d.payload_json`;
  }

  /** Gives claimed, never attempted deliveries back (the attempt is not counted). */
  async unclaim(rows: Array<{ id: string; token: string }>): Promise<void> {
    await this.sql`
      update alert_deliveries d set status = 'queued', claim_token = null, claimed_until = null,
        attempts = d.attempts - 1
      from jsonb_to_recordset(${this.sql.json(rows as never)}::jsonb) as v(id uuid, token uuid)
      where d.id = v.id and d.claim_token = v.token and d.status = 'sending'`;
  }

  /** Stored payloads of events, by id. */
  async payloads(ids: string[]): Promise<Map<string, StoredItem>> {
    if (!ids.length) return new Map();
    const rows = await this.sql<{ id: string; payload_json: StoredItem }[]>`
      select id::text, payload_json from alert_events where id = any(${ids}::bigint[])`;
    return new Map(rows.map((r) => [r.id, r.payload_json]));
  }

  /**
   * Records an attempt's outcome; resolves false when the claim was lost (nothing
   * written). Outcomes that arrive together are written in one statement: a backlog
   * drains with one round trip per batch of answers, not one per message.
   */
  finish(id: string, token: string, o: Outcome): Promise<boolean> {
    const now = this.clock.now();
    const row: FinishRow = {
      id,
      token,
      status: o.status,
      next_attempt_at: new Date(o.status === "delivered" ? now : o.nextAttemptAt).toISOString(),
      delivered_at: o.status === "delivered" ? new Date(now).toISOString() : null,
      last_error: o.status === "delivered" ? null : o.error.slice(0, 1000),
      response_status: o.responseStatus,
      response_excerpt: o.response.slice(0, 500),
    };
    return new Promise<boolean>((resolve, reject) => {
      this.#finishing.push({ row, resolve, reject });
      if (this.#finishing.length >= FINISH_BATCH) {
        clearTimeout(this.#finishTimer);
        this.#finishTimer = undefined;
        void this.#flushFinished();
      } else if (this.#finishTimer === undefined) {
        // Real time, not the engine clock: this only coalesces writes, it decides nothing.
        this.#finishTimer = setTimeout(() => {
          this.#finishTimer = undefined;
          void this.#flushFinished();
        }, FINISH_WAIT_MS);
      }
    });
  }

  #finishTimer: ReturnType<typeof setTimeout> | undefined;

  #finishing: Array<
    { row: FinishRow; resolve: (kept: boolean) => void; reject: (e: unknown) => void }
  > = [];

  async #flushFinished(): Promise<void> {
    const batch = this.#finishing.splice(0);
    if (!batch.length) return;
    try {
      const rows = await this.sql<{ id: string }[]>`
        update alert_deliveries d set status = v.status, next_attempt_at = v.next_attempt_at,
          delivered_at = v.delivered_at, last_error = v.last_error,
          response_status = v.response_status, response_excerpt = v.response_excerpt,
          claim_token = null, claimed_until = null
        from jsonb_to_recordset(${this.sql.json(batch.map((b) => b.row) as never)}::jsonb)
          as v(id uuid, token uuid, status text, next_attempt_at timestamptz,
            delivered_at timestamptz, last_error text, response_status integer,
            response_excerpt text)
        where d.id = v.id and d.claim_token = v.token
        returning d.id`;
      const kept = new Set(rows.map((r) => r.id));
      for (const b of batch) b.resolve(kept.has(b.row.id));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /** Writes a test delivery already attempted once ("send test"). */
  async recordTest(
    id: string,
    channelId: string,
    recipient: string | null,
    o: Outcome,
  ): Promise<void> {
    const now = new Date(this.clock.now());
    const failed = o.status !== "delivered";
    await this.sql`
      insert into alert_deliveries (id, channel_id, recipient, kind, status, attempts, next_attempt_at,
        last_attempt_at, last_error, response_status, response_excerpt, created_at, delivered_at)
      values (${id}, ${channelId}, ${recipient}, 'test', ${
      failed ? "dead" : "delivered"
    }, 1, ${now},
        ${now}, ${failed ? o.error.slice(0, 1000) : null}, ${o.responseStatus},
        ${o.response.slice(0, 500)}, ${now}, ${failed ? null : now})`;
  }

  /** Deletes finished deliveries and fanned-out events older than `before`. */
  async prune(before: number): Promise<{ deliveries: number; events: number }> {
    const cutoff = new Date(before);
    const d = await this.sql`
      delete from alert_deliveries
      where status in ('delivered', 'dead', 'digested') and created_at < ${cutoff}`;
    const e = await this.sql`
      delete from alert_events ev where ev.dispatched_at is not null and ev.occurred_at < ${cutoff}
        and not exists (select 1 from alert_deliveries x
                        where x.event_id = ev.id and x.status not in ('delivered', 'dead', 'digested'))`;
    return { deliveries: d.count, events: e.count };
  }
}

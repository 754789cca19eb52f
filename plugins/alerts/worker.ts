/**
 * The delivery worker, run as a cluster-singleton task: each cycle fans new outbox
 * events out into deliveries, releases held ones whose quiet hours or digest window
 * ended, and claims due deliveries per channel within the channel's rate (attempts in
 * the last minute) and a cap of messages in flight. Sends are started, not awaited: a
 * hung endpoint occupies its own channel's slots until the timeout and never holds up
 * the next cycle, another channel or the evaluation that wrote the incident.
 *
 * A failed attempt is retried with exponential backoff and full jitter (or after the
 * receiver's Retry-After); a permanent failure or the last allowed attempt
 * dead-letters the message and publishes {@link deliveryDead}.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Logger } from "../../core/log.ts";
import type { OperatorContact } from "../operators/mod.ts";
import {
  type AlertMessage,
  type CycleStats,
  type DeliveryDead,
  type EventItem,
  type SendResult,
} from "./api.ts";
import type { ClaimedDelivery, Outbox, Outcome, StoredItem } from "./outbox.ts";
import { plan, type Recipient, type RoutingConfig } from "./routing.ts";
import type { AlertStore, ChannelRow } from "./store.ts";
import { type ChannelSecrets, send, type SendOptions } from "./transports.ts";

/** Messages one channel may have in flight at once. */
export const PER_CHANNEL_IN_FLIGHT = 4;
/** Messages of one channel claimed at once (sent at most PER_CHANNEL_IN_FLIGHT at a time). */
const CLAIM_BATCH = 16;
/** Events fanned out per batch. */
const DISPATCH_BATCH = 500;
/** Longest retry delay. */
const MAX_DELAY_MS = 3_600_000;

/** Settings the worker runs with. */
export interface WorkerSettings {
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  concurrency: number;
  allowPrivate: boolean;
}

/** Dependencies of {@link DeliveryWorker}. */
export interface WorkerDeps {
  outbox: Outbox;
  store: AlertStore;
  clock: Clock;
  log: Logger;
  settings: WorkerSettings;
  /** Opens a channel's secrets; null while the vault is locked or they were reset. */
  secrets(ch: ChannelRow): Promise<ChannelSecrets | null>;
  contacts(userIds: readonly string[]): Promise<OperatorContact[]>;
  /** Console links: `<base>/alerts?incident=<id>`, `<base>/devices/<guid>`. */
  linkBase: string;
  dead(d: DeliveryDead): Promise<void>;
  /** Only for tests of the transports (a resolver other than the system's). */
  sendOptions?: Partial<SendOptions>;
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (1 = the first retry): `base · 2^(attempt-1)`
 * capped at an hour, then drawn uniformly from its upper half, so a burst of failures
 * does not come back as a burst.
 */
export function retryDelayMs(attempt: number, baseMs: number, random: () => number): number {
  const exp = Math.min(MAX_DELAY_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Adds console links to a stored event. */
export function withLinks(item: StoredItem, base: string): EventItem {
  return {
    ...item,
    incident: {
      ...item.incident,
      url: `${base}/alerts?incident=${encodeURIComponent(item.incident.id)}`,
      device_url: `${base}/devices/${encodeURIComponent(item.incident.device_guid)}`,
    },
  };
}

interface Job {
  ch: ChannelRow;
  secrets: ChannelSecrets;
  row: ClaimedDelivery;
  token: string;
  payloads: Map<string, StoredItem>;
  contacts: Map<string, OperatorContact>;
}

/** The delivery worker of one engine instance. */
export class DeliveryWorker {
  /** Sends and refills in progress (what drain waits for). */
  #inflight = new Set<Promise<void>>();
  #sending = 0;
  #perChannel = new Map<string, number>();
  #refilling = new Set<string>();
  /** Claimed messages waiting for a free slot, per channel. */
  #queues = new Map<string, Job[]>();
  #channels = new Map<string, ChannelRow>();
  #stopping = false;
  #lockedNoticed = false;
  #unopened = new Set<string>();

  constructor(private readonly d: WorkerDeps) {}

  get inFlight(): number {
    return this.#sending;
  }

  /** One cycle (the task's body). */
  async cycle(): Promise<CycleStats> {
    const stats: CycleStats = { dispatched: 0, created: 0, released: 0, claimed: 0 };
    if (this.#stopping) return stats;
    await this.d.outbox.recoverExpired();
    await this.#dispatch(stats);
    stats.released = await this.d.outbox.release();
    stats.claimed = await this.#claimAndSend();
    return stats;
  }

  /** Resolves when every started send has recorded its outcome. */
  async drain(): Promise<void> {
    while (this.#inflight.size) await Promise.allSettled([...this.#inflight]);
  }

  /** Stops claiming and waits for sends in flight (each is bounded by the timeout). */
  async stop(): Promise<void> {
    this.#stopping = true;
    // Claimed but not started: back to the queue at once rather than after the lease.
    const waiting = [...this.#queues.values()].flat();
    this.#queues.clear();
    await this.drain();
    if (waiting.length) {
      await this.d.outbox.unclaim(waiting.map((j) => ({ id: j.row.id, token: j.token })));
    }
  }

  async #dispatch(stats: CycleStats): Promise<void> {
    let cfg: RoutingConfig | undefined;
    for (let i = 0; i < 20; i++) {
      const events = await this.d.outbox.claimEvents(DISPATCH_BATCH, 60_000);
      if (!events.length) return;
      cfg ??= await this.#routing();
      const planned = plan(events, cfg, this.d.clock.now());
      stats.created += await this.d.outbox.writeDeliveries(events.map((e) => e.id), planned);
      stats.dispatched += events.length;
      if (events.length < DISPATCH_BATCH) return;
    }
  }

  async #routing(): Promise<RoutingConfig> {
    const [routes, channels, subscriptions, heldUntil] = await Promise.all([
      this.d.store.enabledRoutes(),
      this.d.store.channels(),
      this.d.store.subscriptions(),
      this.d.outbox.heldGroups(),
    ]);
    const enabled = subscriptions.filter((s) => s.enabled);
    const contacts = new Map(
      (await this.d.contacts(enabled.map((s) => s.user_id))).map((c) => [c.id, c]),
    );
    const recipients: Recipient[] = [];
    for (const s of enabled) {
      const c = contacts.get(s.user_id);
      if (!c?.email || c.disabled) continue;
      recipients.push({ userId: c.id, email: c.email, sites: c.sites, subscription: s });
    }
    return {
      routes,
      channels: new Map(
        channels.filter((c) => c.enabled && c.secrets_sealed).map((c) => [c.id, c]),
      ),
      recipients,
      heldUntil,
    };
  }

  async #claimAndSend(): Promise<number> {
    const load = await this.d.outbox.load();
    if (!load.size) return 0;
    this.#channels = new Map((await this.d.store.channels()).map((c) => [c.id, c]));
    let claimed = 0;
    for (const [channelId, l] of load) claimed += await this.#claimFor(channelId, l);
    return claimed;
  }

  /**
   * Claims a batch of one channel's due messages (within its rate) into a local queue and
   * starts as many as its free slots allow; each finished send starts the next, and an
   * empty queue claims the next batch, so a backlog drains at the channel's pace rather
   * than the worker's interval. Returns how many it claimed.
   */
  async #claimFor(channelId: string, l: { recent: number }): Promise<number> {
    const ch = this.#channels.get(channelId);
    if (this.#stopping || !ch || !ch.enabled || !ch.secrets_sealed) return 0;
    if (this.#queues.get(channelId)?.length) {
      this.#pump(channelId);
      return 0;
    }
    if ((this.#perChannel.get(channelId) ?? 0) >= PER_CHANNEL_IN_FLIGHT) return 0;
    const n = Math.min(CLAIM_BATCH, ch.rate_per_minute - l.recent);
    if (n <= 0) return 0;
    let secrets: ChannelSecrets | null;
    try {
      secrets = await this.d.secrets(ch);
    } catch (err) {
      // A sealed value that does not open (tampered, or sealed under a lost key): the
      // channel waits for an admin; the others go on.
      if (!this.#unopened.has(ch.id)) {
        this.d.log.error(
          `alerts: the secrets of channel "${ch.name}" do not open: ${(err as Error).message}`,
        );
        this.#unopened.add(ch.id);
      }
      return 0;
    }
    this.#unopened.delete(ch.id);
    if (!secrets) {
      if (!this.#lockedNoticed) {
        this.d.log.warn("alerts: messages wait while the vault is locked");
        this.#lockedNoticed = true;
      }
      return 0;
    }
    this.#lockedNoticed = false;
    // Long enough for the whole batch at the slowest (mail has three timeouts per attempt).
    const lease = Math.ceil(n / PER_CHANNEL_IN_FLIGHT) * this.d.settings.timeoutMs * 3 + 60_000;
    const token = crypto.randomUUID();
    const rows = await this.d.outbox.claim(channelId, n, token, lease);
    if (!rows.length) return 0;
    const eventIds = rows.flatMap((r) => [
      ...(r.event_id ? [r.event_id] : []),
      ...(r.payload_json?.event_ids ?? []),
    ]);
    const [payloads, contacts] = await Promise.all([
      this.d.outbox.payloads([...new Set(eventIds)]),
      this.d.contacts([...new Set(rows.flatMap((r) => r.recipient_user_id ?? []))]),
    ]);
    const byUser = new Map(contacts.map((c) => [c.id, c]));
    const queue = this.#queues.get(channelId) ?? [];
    for (const row of rows) queue.push({ ch, secrets, row, token, payloads, contacts: byUser });
    this.#queues.set(channelId, queue);
    this.#pump(channelId);
    return rows.length;
  }

  /** Starts queued sends of a channel while it has free slots. */
  #pump(channelId: string): void {
    const queue = this.#queues.get(channelId);
    while (
      queue?.length && !this.#stopping &&
      (this.#perChannel.get(channelId) ?? 0) < PER_CHANNEL_IN_FLIGHT &&
      this.#sending < this.d.settings.concurrency
    ) {
      const job = queue.shift()!;
      this.#perChannel.set(channelId, (this.#perChannel.get(channelId) ?? 0) + 1);
      this.#sending++;
      this.#track(
        this.#deliver(job.ch, job.secrets, job.row, job.token, job.payloads, job.contacts)
          .finally(() => {
            this.#sending--;
            const n = (this.#perChannel.get(channelId) ?? 1) - 1;
            if (n > 0) this.#perChannel.set(channelId, n);
            else this.#perChannel.delete(channelId);
            if (queue.length) this.#pump(channelId);
            else this.#refill(channelId);
            // A slot freed under the global cap may let another channel go on.
            for (const other of this.#queues.keys()) if (other !== channelId) this.#pump(other);
          }),
      );
    }
  }

  #refill(channelId: string): void {
    if (this.#stopping || this.#refilling.has(channelId)) return;
    this.#refilling.add(channelId);
    this.#track(
      (async () => {
        const l = await this.d.outbox.load(channelId);
        const one = l.get(channelId);
        if (one) await this.#claimFor(channelId, one);
      })().finally(() => this.#refilling.delete(channelId)),
    );
  }

  /** Keeps a send or refill in the set {@link drain} waits for. */
  #track(p: Promise<unknown>): void {
    const done: Promise<void> = p.then(() => {}, (err) => {
      this.d.log.error(`alerts: delivery failed unexpectedly: ${(err as Error).message}`);
    }).finally(() => this.#inflight.delete(done));
    this.#inflight.add(done);
  }

  #message(row: ClaimedDelivery, payloads: Map<string, StoredItem>): AlertMessage | null {
    const sentAt = new Date(this.d.clock.now()).toISOString();
    if (row.kind === "digest") {
      const items = (row.payload_json?.event_ids ?? []).flatMap((id) => {
        const p = payloads.get(id);
        return p ? [withLinks(p, this.d.linkBase)] : [];
      });
      if (!items.length) return null;
      return {
        type: "digest",
        deliveryId: row.id,
        sentAt,
        items,
        reason: row.payload_json?.reason ?? "digest",
      };
    }
    const p = row.event_id ? payloads.get(row.event_id) : undefined;
    if (!p) return null;
    return { type: "incident", deliveryId: row.id, sentAt, item: withLinks(p, this.d.linkBase) };
  }

  async #deliver(
    ch: ChannelRow,
    secrets: ChannelSecrets,
    row: ClaimedDelivery,
    token: string,
    payloads: Map<string, StoredItem>,
    contacts: Map<string, OperatorContact>,
  ): Promise<void> {
    const message = this.#message(row, payloads);
    let result: SendResult;
    if (!message) {
      result = failure("the incident event of this message no longer exists");
    } else if (row.recipient_user_id) {
      const c = contacts.get(row.recipient_user_id);
      result = !c?.email || c.disabled
        ? failure("the operator has no email address any more or is disabled")
        : await this.send(ch, secrets, message, [c.email]);
    } else {
      result = await this.send(ch, secrets, message);
    }
    const outcome = this.outcome(result, row.attempts);
    // The slot is free once the answer is in; the outcome is written with others nearby.
    this.#track(this.#record(ch, row, token, outcome));
  }

  async #record(ch: ChannelRow, row: ClaimedDelivery, token: string, outcome: Outcome) {
    const kept = await this.d.outbox.finish(row.id, token, outcome);
    if (!kept) {
      this.d.log.warn(`alerts: delivery ${row.id} was reclaimed while it was being sent`);
      return;
    }
    if (outcome.status === "dead") {
      this.d.log.warn(
        `alerts: message ${row.id} to channel "${ch.name}" dead after ${row.attempts} attempt(s): ${outcome.error}`,
      );
      await this.d.dead({
        delivery_id: row.id,
        channel_id: ch.id,
        kind: row.kind,
        incident_id: row.incident_id,
        attempts: row.attempts,
        last_error: outcome.error,
      });
    }
  }

  /** Sends one message over a channel (also used by "send test"). */
  send(
    ch: ChannelRow,
    secrets: ChannelSecrets,
    message: AlertMessage,
    to?: string[],
  ): Promise<SendResult> {
    return send({ kind: ch.kind, config: ch.config_json, secrets }, message, {
      timeoutMs: this.d.settings.timeoutMs,
      allowPrivate: this.d.settings.allowPrivate,
      ...this.d.sendOptions,
      ...(to ? { to } : {}),
    });
  }

  /** What an attempt's result means for the delivery. */
  outcome(r: SendResult, attempts: number): Outcome {
    if (r.ok) return { status: "delivered", responseStatus: r.status, response: r.response };
    const now = this.d.clock.now();
    const last = r.permanent || attempts >= this.d.settings.maxAttempts;
    const delay = r.retryAfterMs !== null
      ? Math.min(MAX_DELAY_MS, Math.max(1000, r.retryAfterMs))
      : retryDelayMs(attempts, this.d.settings.retryBaseMs, this.d.random ?? Math.random);
    return {
      status: last ? "dead" : "queued",
      nextAttemptAt: last ? now : now + delay,
      error: r.error ?? "failed",
      responseStatus: r.status,
      response: r.response,
    };
  }
}

function failure(error: string): SendResult {
  return {
    ok: false,
    status: null,
    response: "",
    error,
    permanent: true,
    retryAfterMs: null,
    durationMs: 0,
  };
}

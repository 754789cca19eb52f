/**
 * The alerts service the routes call: channels (secrets sealed by the vault, checked
 * against the SSRF rules when saved, shown only as hints), "send test" with the remote
 * answer, routes, operators' own subscriptions, and the delivery log.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, notFound } from "../../core/errors.ts";
import type { Vault } from "../aegis/mod.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { OperatorContact } from "../operators/mod.ts";
import type { DeliveryStatus, SendResult } from "./api.ts";
import type { Outbox } from "./outbox.ts";
import type { ChannelInput, RouteInput, SubscriptionInput } from "./schemas.ts";
import { newSigningSecret } from "./signature.ts";
import type { AlertStore, ChannelRow, ChannelWrite, RouteRow } from "./store.ts";
import { assertTarget, webhookUrl } from "./targets.ts";
import type { ChannelSecrets } from "./transports.ts";
import type { DeliveryWorker } from "./worker.ts";

/** Default rate per kind: what each service tolerates from one webhook. */
const DEFAULT_RATE: Record<ChannelRow["kind"], number> = {
  webhook: 600,
  slack: 60,
  discord: 30,
  teams: 30,
  email: 30,
};

/** A channel as the API shows it (never a secret). */
export interface ChannelView {
  id: string;
  name: string;
  kind: ChannelRow["kind"];
  enabled: boolean;
  config: Record<string, unknown>;
  /** Which secrets are stored. */
  secrets: { url: boolean; signing_secret: boolean; password: boolean };
  /** The secrets were destroyed by a vault reset: re-enter them. */
  needs_secrets: boolean;
  rate_per_minute: number;
  digest_minutes: number;
  quiet_hours: ChannelRow["quiet_hours_json"];
  operator_mail: boolean;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  stats: ChannelStats;
}

/** Delivery figures of one channel. */
export interface ChannelStats {
  held: number;
  queued: number;
  sending: number;
  delivered: number;
  dead: number;
  last_delivered_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
}

const noStats = (): ChannelStats => ({
  held: 0,
  queued: 0,
  sending: 0,
  delivered: 0,
  dead: 0,
  last_delivered_at: null,
  last_error: null,
  last_error_at: null,
});

/** A route as the API shows it. */
export interface RouteView {
  id: string;
  name: string;
  enabled: boolean;
  watchdog_id: string | null;
  min_severity: string;
  site_ids: number[];
  events: string[];
  channel_ids: string[];
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

const routeView = (r: RouteRow): RouteView => ({
  id: r.id,
  name: r.name,
  enabled: r.enabled,
  watchdog_id: r.watchdog_id,
  min_severity: r.min_severity,
  site_ids: r.site_ids,
  events: r.events,
  channel_ids: r.channel_ids,
  created_by: r.created_by,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

/** The visible part of a URL: scheme, host and port, never the path or query (tokens). */
export function urlHint(url: URL): string {
  return `${url.protocol}//${url.host}/…`;
}

/** Options of {@link AlertsService}. */
export interface AlertsServiceOptions {
  sql: Sql;
  clock: Clock;
  store: AlertStore;
  outbox: Outbox;
  worker: DeliveryWorker;
  vault: Vault;
  inventory: InventoryService;
  contacts(userIds: readonly string[]): Promise<OperatorContact[]>;
  allowPrivate: boolean;
}

/** Channels, routes, subscriptions and the delivery log. */
export class AlertsService {
  #secretCache = new Map<string, ChannelSecrets>();

  constructor(private readonly o: AlertsServiceOptions) {}

  // ---------------------------------------------------------------- secrets

  #place(id: string) {
    return { table: "alert_channels", column: "secrets_sealed", row: id };
  }

  /** Opens a channel's secrets; null while the vault is locked or after a reset. */
  async secrets(ch: ChannelRow): Promise<ChannelSecrets | null> {
    if (!ch.secrets_sealed || this.o.vault.state() !== "unlocked") return null;
    // Keyed by the sealed value itself: any change of the secrets is a new value.
    const key = `${ch.id}:${ch.secrets_sealed}`;
    let s = this.#secretCache.get(key);
    if (!s) {
      s = JSON.parse(
        await this.o.vault.open(ch.secrets_sealed, this.#place(ch.id)),
      ) as ChannelSecrets;
      if (this.#secretCache.size > 500) this.#secretCache.clear();
      this.#secretCache.set(key, s);
    }
    return s;
  }

  // ---------------------------------------------------------------- channels

  async #stats(ids?: string[]): Promise<Map<string, ChannelStats>> {
    const sql = this.o.sql;
    const rows = await sql<(ChannelStats & { channel_id: string })[]>`
      select channel_id,
        count(*) filter (where status = 'held')::int as held,
        count(*) filter (where status = 'queued')::int as queued,
        count(*) filter (where status = 'sending')::int as sending,
        count(*) filter (where status = 'delivered')::int as delivered,
        count(*) filter (where status = 'dead')::int as dead,
        max(delivered_at) as last_delivered_at,
        (array_agg(last_error order by last_attempt_at desc)
          filter (where last_error is not null))[1] as last_error,
        max(last_attempt_at) filter (where last_error is not null) as last_error_at
      from alert_deliveries ${ids ? sql`where channel_id = any(${ids}::uuid[])` : sql``}
      group by channel_id`;
    const iso = (d: unknown) => (d instanceof Date ? d.toISOString() : null);
    return new Map(rows.map(({ channel_id, ...s }) => [channel_id, {
      ...s,
      last_delivered_at: iso(s.last_delivered_at),
      last_error_at: iso(s.last_error_at),
    }]));
  }

  async #view(ch: ChannelRow, stats?: ChannelStats): Promise<ChannelView> {
    let secrets = { url: false, signing_secret: false, password: false };
    if (ch.secrets_sealed) {
      const open = await this.secrets(ch).catch(() => null);
      secrets = open
        ? { url: !!open.url, signing_secret: !!open.signing_secret, password: !!open.password }
        // Locked vault: say what the kind always stores.
        : { url: ch.kind !== "email", signing_secret: ch.kind === "webhook", password: false };
    }
    return {
      id: ch.id,
      name: ch.name,
      kind: ch.kind,
      enabled: ch.enabled,
      config: ch.config_json,
      secrets,
      needs_secrets: !ch.secrets_sealed,
      rate_per_minute: ch.rate_per_minute,
      digest_minutes: ch.digest_minutes,
      quiet_hours: ch.quiet_hours_json,
      operator_mail: ch.operator_mail,
      created_by: ch.created_by,
      created_at: ch.created_at.toISOString(),
      updated_at: ch.updated_at.toISOString(),
      stats: stats ?? (await this.#stats([ch.id])).get(ch.id) ?? noStats(),
    };
  }

  async listChannels(): Promise<ChannelView[]> {
    const [rows, stats] = await Promise.all([this.o.store.channels(), this.#stats()]);
    return await Promise.all(rows.map((r) => this.#view(r, stats.get(r.id) ?? noStats())));
  }

  async getChannel(id: string): Promise<ChannelView> {
    return await this.#view(await this.o.store.channel(id));
  }

  /** Validates an input and works out what to store; `prev` when replacing. */
  async #write(
    input: ChannelInput,
    prev: { row: ChannelRow; secrets: ChannelSecrets | null } | null,
  ): Promise<{ write: ChannelWrite; generatedSecret: string | null }> {
    const secrets: ChannelSecrets = { ...(prev?.secrets ?? {}) };
    let config: Record<string, unknown>;
    let generatedSecret: string | null = null;
    if (input.kind === "email") {
      await assertTarget(input.host, this.o.allowPrivate);
      if (!input.to.length && !input.operator_mail) {
        throw badRequest("recipients_required", "an email channel needs recipients in `to`");
      }
      if (input.password !== undefined) {
        if (input.password === null) delete secrets.password;
        else secrets.password = input.password;
      }
      if (input.username && !secrets.password) {
        throw badRequest("password_required", "a username needs a password");
      }
      if (!input.username) delete secrets.password;
      config = {
        host: input.host,
        port: input.port ?? (input.security === "tls" ? 465 : 587),
        security: input.security,
        username: input.username,
        from: input.from,
        to: input.to,
        ca_pem: input.ca_pem ?? (prev?.row.config_json.ca_pem as string | undefined) ?? null,
      };
    } else {
      if (input.url !== undefined) {
        const url = webhookUrl(input.url);
        await assertTarget(url.hostname, this.o.allowPrivate);
        secrets.url = url.toString();
      }
      if (!secrets.url) throw badRequest("url_required", "the channel needs its webhook URL");
      const url = new URL(secrets.url);
      config = { url_hint: urlHint(url) };
      if (input.kind === "webhook") {
        if (input.signing_secret) secrets.signing_secret = input.signing_secret;
        if (!secrets.signing_secret) {
          secrets.signing_secret = generatedSecret = newSigningSecret();
        }
        config.ca_pem = input.ca_pem === undefined
          ? (prev?.row.config_json.ca_pem ?? null)
          : input.ca_pem;
      }
    }
    const plaintext = JSON.stringify(secrets);
    return {
      generatedSecret,
      write: {
        name: input.name,
        kind: input.kind,
        enabled: input.enabled,
        config,
        seal: (id) => this.o.vault.seal(plaintext, this.#place(id)),
        rate_per_minute: input.rate_per_minute ?? prev?.row.rate_per_minute ??
          DEFAULT_RATE[input.kind],
        digest_minutes: input.digest_minutes,
        quiet_hours: input.quiet_hours,
        operator_mail: input.kind === "email" ? input.operator_mail : false,
      },
    };
  }

  /** Creates a channel; a generated signing secret is answered this once. */
  async createChannel(p: Principal, input: ChannelInput) {
    const { write, generatedSecret } = await this.#write(input, null);
    const row = await this.o.store.saveChannel(null, write, p.name);
    return { channel: await this.#view(row), signing_secret: generatedSecret };
  }

  /** Replaces a channel; omitted secrets are kept. */
  async updateChannel(p: Principal, id: string, input: ChannelInput) {
    const row = await this.o.store.channel(id);
    if (row.kind !== input.kind) {
      throw badRequest("kind_immutable", `this is a ${row.kind} channel; create a new one instead`);
    }
    const secrets = row.secrets_sealed ? await this.secrets(row) : null;
    if (row.secrets_sealed && !secrets) {
      // Locked vault: the stored secrets cannot be carried over.
      await this.o.vault.open(row.secrets_sealed, this.#place(id));
    }
    const { write, generatedSecret } = await this.#write(input, { row, secrets });
    const saved = await this.o.store.saveChannel(id, write, p.name);
    return { channel: await this.#view(saved), signing_secret: generatedSecret };
  }

  /** A new signing secret for a generic webhook, answered this once. */
  async rotateSecret(id: string): Promise<{ signing_secret: string }> {
    const row = await this.o.store.channel(id);
    if (row.kind !== "webhook") {
      throw badRequest("not_a_webhook", "only generic webhooks sign their messages");
    }
    const secrets = await this.secrets(row);
    if (!secrets?.url) {
      if (row.secrets_sealed) await this.o.vault.open(row.secrets_sealed, this.#place(id));
      throw badRequest("url_required", "re-enter the webhook URL first");
    }
    const signing_secret = newSigningSecret();
    const sealed = await this.o.vault.seal(
      JSON.stringify({ ...secrets, signing_secret }),
      this.#place(id),
    );
    await this.o.store.setSecrets(id, sealed);
    return { signing_secret };
  }

  async removeChannel(id: string): Promise<void> {
    await this.o.store.removeChannel(id);
  }

  /** Sends a test message now and reports the remote answer (recorded in the log). */
  async testChannel(p: Principal, id: string): Promise<SendResult & { delivery_id: string }> {
    const row = await this.o.store.channel(id);
    const secrets = row.secrets_sealed ? await this.secrets(row) : null;
    if (!secrets) {
      if (row.secrets_sealed) await this.o.vault.open(row.secrets_sealed, this.#place(id));
      throw conflict("secrets_missing", "re-enter the channel's secrets first");
    }
    let to: string[] | undefined;
    if (row.kind === "email" && !(row.config_json.to as string[]).length) {
      const [me] = await this.o.contacts([p.id]);
      if (!me?.email) {
        throw badRequest(
          "no_recipient",
          "this channel has no recipients of its own; set your email address to test it",
        );
      }
      to = [me.email];
    }
    const deliveryId = crypto.randomUUID();
    const r = await this.o.worker.send(row, secrets, {
      type: "test",
      deliveryId,
      sentAt: new Date(this.o.clock.now()).toISOString(),
      channel: { id: row.id, name: row.name },
    }, to);
    await this.o.outbox.recordTest(
      deliveryId,
      row.id,
      to?.[0] ?? null,
      r.ok ? { status: "delivered", responseStatus: r.status, response: r.response } : {
        status: "dead",
        nextAttemptAt: this.o.clock.now(),
        error: r.error ?? "failed",
        responseStatus: r.status,
        response: r.response,
      },
    );
    return { ...r, delivery_id: deliveryId };
  }

  // ---------------------------------------------------------------- routes

  async listRoutes(watchdogId?: string): Promise<RouteView[]> {
    return (await this.o.store.routes(watchdogId)).map(routeView);
  }

  async getRoute(id: string): Promise<RouteView> {
    return routeView(await this.o.store.route(id));
  }

  async #checkSites(ids: number[]): Promise<void> {
    for (const id of ids) {
      if (!(await this.o.inventory.site(id, false))) throw notFound(`no site ${id}`);
    }
  }

  async saveRoute(p: Principal, id: string | null, input: RouteInput): Promise<RouteView> {
    await this.#checkSites(input.site_ids);
    return routeView(await this.o.store.saveRoute(id, input, p.name));
  }

  async removeRoute(id: string): Promise<void> {
    await this.o.store.removeRoute(id);
  }

  // ---------------------------------------------------------------- subscriptions

  async #operatorChannel(): Promise<boolean> {
    const [r] = await this.o.sql<{ n: number }[]>`
      select count(*)::int as n from alert_channels where operator_mail and enabled`;
    return (r?.n ?? 0) > 0;
  }

  async subscription(p: Principal) {
    const [s, [me], channel] = await Promise.all([
      this.o.store.subscription(p.id),
      this.o.contacts([p.id]),
      this.#operatorChannel(),
    ]);
    return {
      enabled: s?.enabled ?? false,
      min_severity: s?.min_severity ?? "error",
      events: s?.events ?? ["opened", "escalated", "resolved"],
      email: me?.email ?? null,
      operator_mail_channel: channel,
    };
  }

  async setSubscription(p: Principal, input: SubscriptionInput) {
    if (input.enabled) {
      const [me] = await this.o.contacts([p.id]);
      if (!me?.email) {
        throw badRequest(
          "email_required",
          "set your email address first (PUT /api/auth/email)",
        );
      }
    }
    await this.o.store.saveSubscription(p.id, input);
    return await this.subscription(p);
  }

  async listSubscriptions() {
    const subs = await this.o.store.subscriptions();
    const contacts = new Map(
      (await this.o.contacts(subs.map((s) => s.user_id))).map((c) => [c.id, c]),
    );
    return subs.map((s) => {
      const c = contacts.get(s.user_id);
      return {
        user_id: s.user_id,
        username: c?.username ?? null,
        email: c?.email ?? null,
        disabled: c?.disabled ?? true,
        enabled: s.enabled,
        min_severity: s.min_severity,
        events: s.events,
        updated_at: s.updated_at.toISOString(),
      };
    });
  }

  // ---------------------------------------------------------------- delivery log

  async deliveries(q: {
    channel_id?: string;
    status?: DeliveryStatus;
    kind?: string;
    incident_id?: string;
    before?: string;
    limit: number;
  }) {
    const sql = this.o.sql;
    if (q.before !== undefined && !/^\d{1,18}$/.test(q.before)) {
      throw badRequest("invalid_cursor", "before is not a cursor (next_before of a page)");
    }
    const scope = sql`true
      ${q.channel_id ? sql`and d.channel_id = ${q.channel_id}` : sql``}
      ${q.kind ? sql`and d.kind = ${q.kind}` : sql``}
      ${q.incident_id ? sql`and d.incident_id = ${q.incident_id}` : sql``}`;
    const rows = await sql<DeliveryRow[]>`
      select d.*, c.name as channel_name, c.kind as channel_kind,
        e.payload_json->'incident'->>'title' as title,
        e.payload_json->'incident'->>'hostname' as hostname,
        (select count(*)::int from alert_deliveries x where x.digest_id = d.id) as digest_count
      from alert_deliveries d
      join alert_channels c on c.id = d.channel_id
      left join alert_events e on e.id = d.event_id
      where ${scope}
        ${q.status ? sql`and d.status = ${q.status}` : sql``}
        ${q.before ? sql`and d.seq < ${q.before}::bigint` : sql``}
      order by d.seq desc limit ${q.limit + 1}`;
    const counts: Record<DeliveryStatus, number> = {
      held: 0,
      queued: 0,
      sending: 0,
      delivered: 0,
      dead: 0,
      digested: 0,
    };
    for (
      const r of await sql<{ status: DeliveryStatus; n: number }[]>`
        select d.status, count(*)::int as n from alert_deliveries d where ${scope}
        group by d.status`
    ) counts[r.status] = r.n;
    const more = rows.length > q.limit;
    const items = rows.slice(0, q.limit).map(deliveryView);
    const last = items.at(-1);
    return {
      items,
      counts,
      next_before: more && last ? String(last.seq) : null,
    };
  }

  async delivery(id: string) {
    const [r] = await this.o.sql<DeliveryRow[]>`
      select d.*, c.name as channel_name, c.kind as channel_kind,
        e.payload_json->'incident'->>'title' as title,
        e.payload_json->'incident'->>'hostname' as hostname,
        (select count(*)::int from alert_deliveries x where x.digest_id = d.id) as digest_count
      from alert_deliveries d join alert_channels c on c.id = d.channel_id
      left join alert_events e on e.id = d.event_id
      where d.id = ${id}`;
    if (!r) throw notFound(`no delivery ${id}`);
    return deliveryView(r);
  }

  /** Puts a dead-lettered message back in the queue with a fresh set of attempts. */
  async retry(id: string) {
    const now = new Date(this.o.clock.now());
    const r = await this.o.sql`
      update alert_deliveries set status = 'queued', attempts = 0, next_attempt_at = ${now},
        last_error = null
      where id = ${id} and status = 'dead' and kind <> 'test'`;
    if (!r.count) {
      await this.delivery(id);
      throw conflict("not_dead", "only a dead-lettered message (not a test) can be retried");
    }
    return await this.delivery(id);
  }
}

interface DeliveryRow {
  id: string;
  seq: string;
  channel_id: string;
  channel_name: string;
  channel_kind: string;
  event_id: string | null;
  recipient_user_id: string | null;
  recipient: string | null;
  kind: string;
  incident_id: string | null;
  severity: string | null;
  status: DeliveryStatus;
  held_reason: string | null;
  hold_until: Date | null;
  digest_id: string | null;
  digest_count: number;
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_error: string | null;
  response_status: number | null;
  response_excerpt: string | null;
  title: string | null;
  hostname: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

const isoOrNull = (d: Date | null) => d?.toISOString() ?? null;

function deliveryView(r: DeliveryRow) {
  return {
    id: r.id,
    seq: String(r.seq),
    channel_id: r.channel_id,
    channel_name: r.channel_name,
    channel_kind: r.channel_kind,
    kind: r.kind,
    status: r.status,
    incident_id: r.incident_id,
    severity: r.severity,
    title: r.title,
    hostname: r.hostname,
    recipient: r.recipient,
    attempts: r.attempts,
    next_attempt_at: r.status === "queued" ? r.next_attempt_at.toISOString() : null,
    last_attempt_at: isoOrNull(r.last_attempt_at),
    delivered_at: isoOrNull(r.delivered_at),
    last_error: r.last_error,
    response_status: r.response_status,
    response_excerpt: r.response_excerpt,
    held_reason: r.held_reason,
    hold_until: isoOrNull(r.hold_until),
    digest_id: r.digest_id,
    digest_count: r.digest_count,
    created_at: r.created_at.toISOString(),
  };
}

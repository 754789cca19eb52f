/**
 * SQL of the alerts configuration: channels, routes (with their channels) and
 * operators' subscriptions. Only the plugin's own tables; secrets arrive sealed.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, notFound } from "../../core/errors.ts";
import type { AlertEventKind, ChannelKind } from "./api.ts";
import type { QuietHours } from "./quiet_hours.ts";
import type { RouteInput, SubscriptionInput } from "./schemas.ts";

/** A stored channel (secrets still sealed). */
export interface ChannelRow {
  id: string;
  name: string;
  kind: ChannelKind;
  enabled: boolean;
  config_json: Record<string, unknown>;
  secrets_sealed: string | null;
  rate_per_minute: number;
  digest_minutes: number;
  quiet_hours_json: QuietHours | null;
  operator_mail: boolean;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** What a channel write stores. */
export interface ChannelWrite {
  name: string;
  kind: ChannelKind;
  enabled: boolean;
  config: Record<string, unknown>;
  /** A function of the row id: the secrets are sealed for their place. */
  seal: (id: string) => Promise<string | null>;
  rate_per_minute: number;
  digest_minutes: number;
  quiet_hours: QuietHours | null;
  operator_mail: boolean;
}

/** A stored route with its channels. */
export interface RouteRow {
  id: string;
  name: string;
  enabled: boolean;
  watchdog_id: string | null;
  min_severity: "info" | "warning" | "error";
  site_ids: number[];
  events: AlertEventKind[];
  channel_ids: string[];
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** An operator's subscription. */
export interface SubscriptionRow {
  user_id: string;
  enabled: boolean;
  min_severity: "info" | "warning" | "error";
  events: AlertEventKind[];
  created_at: Date;
  updated_at: Date;
}

const code = (e: unknown) => (e as { code?: string }).code;
const constraint = (e: unknown) => (e as { constraint_name?: string }).constraint_name ?? "";

/** Channels, routes and subscriptions in the database. */
export class AlertStore {
  constructor(private readonly sql: Sql, private readonly clock: Clock) {}

  // ---------------------------------------------------------------- channels

  async channels(): Promise<ChannelRow[]> {
    return await this.sql<ChannelRow[]>`select * from alert_channels order by lower(name)`;
  }

  async channel(id: string): Promise<ChannelRow> {
    const [row] = await this.sql<ChannelRow[]>`select * from alert_channels where id = ${id}`;
    if (!row) throw notFound(`no alert channel ${id}`);
    return row;
  }

  /** Inserts (id unknown yet) or replaces a channel. */
  async saveChannel(id: string | null, w: ChannelWrite, by: string): Promise<ChannelRow> {
    const now = new Date(this.clock.now());
    const rowId = id ?? crypto.randomUUID();
    const sealed = await w.seal(rowId);
    try {
      if (!id) {
        await this.sql`
          insert into alert_channels (id, name, kind, enabled, config_json, secrets_sealed,
            rate_per_minute, digest_minutes, quiet_hours_json, operator_mail, created_by,
            created_at, updated_at)
          values (${rowId}, ${w.name}, ${w.kind}, ${w.enabled}, ${this.sql.json(w.config as never)},
            ${sealed}, ${w.rate_per_minute}, ${w.digest_minutes},
            ${w.quiet_hours ? this.sql.json(w.quiet_hours as never) : null}, ${w.operator_mail},
            ${by}, ${now}, ${now})`;
      } else {
        const r = await this.sql`
          update alert_channels set name = ${w.name}, enabled = ${w.enabled},
            config_json = ${this.sql.json(w.config as never)}, secrets_sealed = ${sealed},
            rate_per_minute = ${w.rate_per_minute}, digest_minutes = ${w.digest_minutes},
            quiet_hours_json = ${w.quiet_hours ? this.sql.json(w.quiet_hours as never) : null},
            operator_mail = ${w.operator_mail}, updated_at = ${now}
          where id = ${id}`;
        if (!r.count) throw notFound(`no alert channel ${id}`);
      }
    } catch (e) {
      if (code(e) === "23505" && constraint(e).includes("operator_mail")) {
        throw conflict(
          "operator_mail_taken",
          "another email channel already carries operators' mail",
        );
      }
      if (code(e) === "23505") {
        throw conflict("channel_name_taken", "a channel with this name exists");
      }
      throw e;
    }
    return await this.channel(rowId);
  }

  /** Replaces only the sealed secrets. */
  async setSecrets(id: string, sealed: string): Promise<void> {
    await this.sql`update alert_channels set secrets_sealed = ${sealed},
      updated_at = ${new Date(this.clock.now())} where id = ${id}`;
  }

  async removeChannel(id: string): Promise<void> {
    const r = await this.sql`delete from alert_channels where id = ${id}`;
    if (!r.count) throw notFound(`no alert channel ${id}`);
  }

  // ---------------------------------------------------------------- routes

  #routes(where: ReturnType<Sql["unsafe"]>) {
    return this.sql<RouteRow[]>`
      select r.*, coalesce((select array_agg(c.channel_id order by c.channel_id)
        from alert_route_channels c where c.route_id = r.id), '{}') as channel_ids
      from alert_routes r where ${where}
      order by r.watchdog_id nulls first, lower(r.name), r.id`;
  }

  routes(watchdogId?: string): Promise<RouteRow[]> {
    return this.#routes(watchdogId ? this.sql`r.watchdog_id = ${watchdogId}` : this.sql`true`);
  }

  /** Enabled routes (what the dispatcher routes by). */
  enabledRoutes(): Promise<RouteRow[]> {
    return this.#routes(this.sql`r.enabled`);
  }

  async route(id: string): Promise<RouteRow> {
    const [row] = await this.#routes(this.sql`r.id = ${id}`);
    if (!row) throw notFound(`no alert route ${id}`);
    return row;
  }

  async saveRoute(id: string | null, input: RouteInput, by: string): Promise<RouteRow> {
    const now = new Date(this.clock.now());
    const rowId = id ?? crypto.randomUUID();
    try {
      await this.sql.begin(async (tx) => {
        if (!id) {
          await tx`
            insert into alert_routes (id, name, enabled, watchdog_id, min_severity, site_ids, events,
              created_by, created_at, updated_at)
            values (${rowId}, ${input.name}, ${input.enabled}, ${input.watchdog_id},
              ${input.min_severity}, ${input.site_ids}::int[], ${input.events}::text[], ${by}, ${now},
              ${now})`;
        } else {
          const r = await tx`
            update alert_routes set name = ${input.name}, enabled = ${input.enabled},
              watchdog_id = ${input.watchdog_id}, min_severity = ${input.min_severity},
              site_ids = ${input.site_ids}::int[], events = ${input.events}::text[],
              updated_at = ${now}
            where id = ${id}`;
          if (!r.count) throw notFound(`no alert route ${id}`);
          await tx`delete from alert_route_channels where route_id = ${id}`;
        }
        await tx`
          insert into alert_route_channels (route_id, channel_id)
          select ${rowId}::uuid, unnest(${input.channel_ids}::uuid[])`;
      });
    } catch (e) {
      if (code(e) === "23503" && constraint(e).includes("watchdog")) {
        throw notFound(`no watchdog ${input.watchdog_id}`);
      }
      if (code(e) === "23503") {
        throw badRequest("unknown_channel", "a listed channel does not exist");
      }
      throw e;
    }
    return await this.route(rowId);
  }

  async removeRoute(id: string): Promise<void> {
    const r = await this.sql`delete from alert_routes where id = ${id}`;
    if (!r.count) throw notFound(`no alert route ${id}`);
  }

  // ---------------------------------------------------------------- subscriptions

  async subscription(userId: string): Promise<SubscriptionRow | undefined> {
    const [row] = await this.sql<SubscriptionRow[]>`
      select * from alert_subscriptions where user_id = ${userId}`;
    return row;
  }

  async subscriptions(): Promise<SubscriptionRow[]> {
    return await this.sql<SubscriptionRow[]>`
      select * from alert_subscriptions order by created_at, user_id`;
  }

  async saveSubscription(userId: string, input: SubscriptionInput): Promise<SubscriptionRow> {
    const now = new Date(this.clock.now());
    const [row] = await this.sql<SubscriptionRow[]>`
      insert into alert_subscriptions (user_id, enabled, min_severity, events, created_at, updated_at)
      values (${userId}, ${input.enabled}, ${input.min_severity}, ${input.events}::text[], ${now},
        ${now})
      on conflict (user_id) do update set enabled = excluded.enabled,
        min_severity = excluded.min_severity, events = excluded.events,
        updated_at = excluded.updated_at
      returning *`;
    return row!;
  }
}

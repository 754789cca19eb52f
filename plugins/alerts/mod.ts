/**
 * The alerts plugin: incidents reach operators where they are. Channels (generic signed
 * webhook, Slack, Discord, Microsoft Teams, email over SMTP), routes per watchdog and by
 * severity and site, operators' own opt-in mail, quiet hours and digests, and a
 * delivery log. Incident changes land in an outbox written in the watchdogs
 * transaction that made them (the watchdogs write hook); a cluster-singleton worker
 * delivers each message once, with retries, a dead letter and per-channel rate limits,
 * so a slow or dead endpoint never delays an evaluation. See docs/alerts.md.
 *
 * @module
 */
import { definePlugin } from "../../core/plugin.ts";
import { vaultKey } from "../aegis/mod.ts";
import { inventoryKey } from "../inventory/mod.ts";
import { operatorsKey } from "../operators/mod.ts";
import { watchdogsKey } from "../watchdogs/mod.ts";
import { alertsKey, deliveryDead } from "./api.ts";
import { Outbox } from "./outbox.ts";
import { registerChannelRoutes } from "./routes_channels.ts";
import { registerDeliveryRoutes } from "./routes_deliveries.ts";
import { registerRoutingRoutes } from "./routes_routing.ts";
import { registerSubscriptionRoutes } from "./routes_subscriptions.ts";
import { AlertsService } from "./service.ts";
import { alertsSettings } from "./settings.ts";
import { AlertStore } from "./store.ts";
import { DeliveryWorker } from "./worker.ts";

export * from "./api.ts";
export { sign, verify } from "./signature.ts";

export default definePlugin({
  name: "alerts",
  description: "Alert delivery: webhook, Slack, Teams, Discord and email channels, routing, " +
    "quiet hours, digests, an outbox with retries and a delivery log",
  requires: ["watchdogs", "aegis", "operators", "inventory"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: alertsSettings,
  setup(ctx) {
    const s = ctx.settings;
    const vault = ctx.use(vaultKey);
    const operators = ctx.use(operatorsKey);
    const store = new AlertStore(ctx.sql, ctx.clock);
    const outbox = new Outbox(ctx.sql, ctx.clock);
    const base = (ctx.core.publicBaseUrl ?? `http://${ctx.core.host}:${ctx.core.port}`)
      .replace(/\/+$/, "");
    const contacts = (ids: readonly string[]) => operators.contacts(ids);

    // Secrets destroyed by a force-reset: the channel stops until an admin re-enters them.
    vault.registerColumn({
      table: "alert_channels",
      column: "secrets_sealed",
      idColumn: "id",
      onReset: async (sql) => {
        await sql`update alert_channels set secrets_sealed = null where secrets_sealed is not null`;
      },
    });

    const worker: DeliveryWorker = new DeliveryWorker({
      outbox,
      store,
      clock: ctx.clock,
      log: ctx.log,
      settings: {
        timeoutMs: s.timeoutMs,
        maxAttempts: s.maxAttempts,
        retryBaseMs: s.retryBaseSeconds * 1000,
        concurrency: s.concurrency,
        allowPrivate: s.allowPrivateTargets,
      },
      secrets: (ch) => service.secrets(ch),
      contacts,
      linkBase: base,
      dead: (d) => ctx.events.publish(deliveryDead, d),
    });
    const service: AlertsService = new AlertsService({
      sql: ctx.sql,
      clock: ctx.clock,
      store,
      outbox,
      worker,
      vault,
      inventory: ctx.use(inventoryKey),
      contacts,
      allowPrivate: s.allowPrivateTargets,
    });

    // The outbox row is written by the transaction that changes the incident.
    ctx.use(watchdogsKey).onIncidentWrite((tx, events) => outbox.record(tx, events));

    registerChannelRoutes(ctx.http, service, ctx.audit);
    registerRoutingRoutes(ctx.http, service, ctx.audit);
    registerDeliveryRoutes(ctx.http, service, ctx.audit);
    registerSubscriptionRoutes(ctx.http, service, ctx.audit);

    ctx.provide(alertsKey, {
      cycle: () => worker.cycle(),
      drain: () => worker.drain(),
      get inFlight() {
        return worker.inFlight;
      },
    });

    // Read at scrape time (cluster-wide: every instance reports the same outbox).
    ctx.metrics.gauge(
      "borealis_alert_outbox_depth",
      "Alert events not yet fanned out, and deliveries not yet delivered or given up, by state",
      {
        labelNames: ["state"],
        collect: async (g) => {
          const [row] = await ctx.sql<
            { events: number; queued: number; sending: number; held: number }[]
          >`
            select (select count(*)::int from alert_events where dispatched_at is null) as events,
              count(*) filter (where status = 'queued')::int as queued,
              count(*) filter (where status = 'sending')::int as sending,
              count(*) filter (where status = 'held')::int as held
            from alert_deliveries where status in ('queued', 'sending', 'held')`;
          g.set({ state: "events_pending" }, row?.events ?? 0);
          g.set({ state: "queued" }, row?.queued ?? 0);
          g.set({ state: "sending" }, row?.sending ?? 0);
          g.set({ state: "held" }, row?.held ?? 0);
        },
      },
    );

    ctx.tasks.every("deliver", s.workerMs, async () => void await worker.cycle(), {
      clusterSingleton: true,
    });
    ctx.tasks.every("prune", 3_600_000, async () => {
      const r = await outbox.prune(ctx.clock.now() - s.retentionDays * 86_400_000);
      if (r.deliveries || r.events) {
        ctx.log.info(`alerts: pruned ${r.deliveries} deliveries and ${r.events} outbox events`);
      }
    }, { clusterSingleton: true });
    ctx.onStop(() => worker.stop());
  },
});

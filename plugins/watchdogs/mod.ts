/**
 * The watchdogs plugin (upstream §5): monitoring policies over device telemetry, an
 * anti-noise state machine per (policy, device), incidents that do not flap, per-device
 * overrides, the scheduler's maintenance windows, and remediation actions.
 *
 * Evaluation is incremental: telemetry and status changes mark devices dirty and a short
 * task re-evaluates only those (on the instance that received the telemetry, so the work
 * splits by device across instances); time-based rules run on the policies' intervals in
 * a cluster-singleton loop.
 *
 * @module
 */
import { intEnv, setting } from "../../core/config.ts";
import { definePlugin } from "../../core/plugin.ts";
import { filtersKey, inventoryKey } from "../inventory/mod.ts";
import { agentStatusChanged, realtimeKey, telemetryReceived } from "../realtime/mod.ts";
import { schedulerKey } from "../scheduler/api.ts";
import { ActionRunner } from "./actions.ts";
import { watchdogsKey } from "./api.ts";
import { Evaluator } from "./evaluator.ts";
import { IncidentHooks } from "./incident_hooks.ts";
import { registerRoutes } from "./routes.ts";
import { WatchdogService } from "./service.ts";
import { PolicyStore } from "./store.ts";

export type { EvalStats, IncidentChange } from "./evaluator.ts";
export type { Action, Policy, PolicyInput, Rule, Target } from "./schemas.ts";
export { WatchdogService } from "./service.ts";
export type {
  IncidentChangeKind,
  IncidentEvent,
  IncidentSnapshot,
  IncidentWriteHook,
  Severity,
  WatchdogsApi,
} from "./api.ts";
export { watchdogsKey } from "./api.ts";

export default definePlugin({
  name: "watchdogs",
  description: "Monitoring policies, incidents, overrides, maintenance windows and actions",
  requires: ["inventory", "realtime", "scheduler"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    loopSeconds: setting(
      "BOREALIS_WATCHDOGS_LOOP_SECONDS",
      intEnv(30, 5, 3600),
      "seconds, 5 to 3600",
      "How often the cluster loop looks for policies whose evaluation interval has elapsed.",
      "30",
    ),
    staleSeconds: setting(
      "BOREALIS_WATCHDOGS_STALE_SECONDS",
      intEnv(900, 60, 86_400),
      "seconds, 60 to 86400",
      "Telemetry older than this gives the state stale_data, never an incident.",
      "900",
    ),
    incrementalMs: setting(
      "BOREALIS_WATCHDOGS_INCREMENTAL_MS",
      intEnv(2000, 100, 60_000),
      "milliseconds, 100 to 60000",
      "How often devices with new telemetry are re-evaluated (batched).",
      "2000",
    ),
  },
  setup(ctx) {
    const channel = ctx.use(realtimeKey);
    const filters = ctx.use(filtersKey);
    const schedulerService = ctx.use(schedulerKey);
    const scheduler = () => schedulerService;
    const store = new PolicyStore(ctx.sql, ctx.clock);
    const hooks = new IncidentHooks();
    const inventory = ctx.use(inventoryKey);
    const evaluator = new Evaluator({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      filters,
      channel,
      lastSeen: (guid) => channel.lastSeen(guid),
      presence: (guid, lastSeen) => inventory.presence.state(guid, lastSeen),
      scheduler,
      actions: new ActionRunner(channel, scheduler, () => ctx.clock.now()),
      staleMs: ctx.settings.staleSeconds * 1000,
      flushTelemetry: () => channel.flushTelemetry(),
      hooks,
    });
    const service = new WatchdogService({
      sql: ctx.sql,
      clock: ctx.clock,
      store,
      evaluator,
      inventory,
      channel,
      staleMs: ctx.settings.staleSeconds * 1000,
      hooks,
    });

    let dirty = new Set<string>();
    ctx.events.subscribe(telemetryReceived, (e) => void dirty.add(e.guid.toUpperCase()));
    // Each status change is published by exactly one instance; handle it there only.
    ctx.events.subscribe(agentStatusChanged, (e, meta) => {
      if (meta.local) dirty.add(e.guid.toUpperCase());
    });
    const flushDirty = async (): Promise<number> => {
      if (!dirty.size) return 0;
      const batch = [...dirty];
      dirty = new Set();
      try {
        await service.runFor(batch);
      } catch (err) {
        // Keep the devices for the next run rather than losing their telemetry.
        for (const g of batch) dirty.add(g);
        throw err;
      }
      return batch.length;
    };

    ctx.provide(watchdogsKey, {
      service,
      flushDirty,
      get dirtyCount() {
        return dirty.size;
      },
      onIncidentWrite: (hook) => hooks.add(hook),
    });
    filters.registerUsage(async (filterId) => {
      const rows = await ctx.sql<{ id: string; name: string }[]>`
        select distinct w.id, w.name from watchdogs w join watchdog_targets t on t.watchdog_id = w.id
        where t.kind = 'filter' and (t.target_json->>'filter_id')::int = ${filterId}`;
      return rows.map((r) => ({ kind: "watchdog", id: r.id, name: r.name }));
    });
    registerRoutes(ctx.http, service, ctx.audit);

    ctx.tasks.every("incremental", ctx.settings.incrementalMs, async () => void await flushDirty());
    ctx.tasks.every("evaluate", ctx.settings.loopSeconds * 1000, async () => {
      const stats = await service.runDue();
      if (stats && (stats.opened || stats.resolved)) {
        ctx.log.info(
          `watchdogs: ${stats.pairs} checks, ${stats.opened} opened, ${stats.resolved} resolved in ${
            Math.round(stats.ms)
          } ms`,
        );
      }
    }, { clusterSingleton: true });
  },
});

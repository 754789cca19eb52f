/**
 * The `scheduler` plugin: quick run, scheduled jobs (upstream schedule types plus cron
 * with a per-job time zone), maintenance windows, signed scripts, activity history,
 * and leased per-target runs shared safely by several engine instances. See
 * docs/scheduling.md.
 *
 * @module
 */
import { intEnv, setting } from "../../core/config.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";
import { credentialsKey, vaultKey } from "../aegis/mod.ts";
import { assembliesService } from "../assemblies/mod.ts";
import { devicesKey, filtersKey, inventoryKey } from "../inventory/mod.ts";
import { sitesKey } from "../sites/mod.ts";
import { agentStatusChanged, realtimeKey } from "../realtime/mod.ts";
import { tokensKey } from "../tokens/mod.ts";
import { schedulerKey } from "./api.ts";
import {
  activityJson,
  activityOfStatusFrame,
  Dispatcher,
  QuickJobProgress,
  QuickJobResult,
  QuickJobUnknown,
} from "./dispatch.ts";
import { QuickRunner } from "./quick_run.ts";
import { registerJobRoutes } from "./routes_jobs.ts";
import { registerQuickRunRoutes } from "./routes_quick_run.ts";
import { registerSchedulePreviewRoute } from "./routes_schedule_preview.ts";
import { registerServerTimeRoute } from "./routes_server_time.ts";
import { registerWindowRoutes } from "./routes_windows.ts";
import { RunEngine } from "./runs.ts";
import { CodeSigner } from "./signing.ts";
import { WindowService } from "./windows.ts";

export * from "./api.ts";
export { RunEngine } from "./runs.ts";
export type { RunStats } from "./runs.ts";

/** Internals for tests and benchmarks. */
export interface SchedulerInternals {
  runs: RunEngine;
  dispatcher: Dispatcher;
  signer: CodeSigner;
  windows: WindowService;
}
/** Service key of {@link SchedulerInternals}. */
export const schedulerInternalsKey = serviceKey<SchedulerInternals>("scheduler.internals");

/** The plugin's settings. */
export const schedulerSettings = {
  tickSeconds: setting(
    "BOREALIS_SCHEDULER_TICK_SECONDS",
    intEnv(30, 1, 3600),
    "seconds, 1 to 3600",
    "How often the scheduler tick (a cluster singleton) looks for due jobs.",
    "30",
  ),
  firingWindowMinutes: setting(
    "BOREALIS_JOB_FIRING_WINDOW_MINUTES",
    intEnv(5, 1, 1440),
    "minutes, 1 to 1440",
    "An occurrence fires only this long after its slot; later it is skipped (no backfill).",
    "5",
  ),
  dispatchSeconds: setting(
    "BOREALIS_SCHEDULER_DISPATCH_SECONDS",
    intEnv(5, 1, 600),
    "seconds, 1 to 600",
    "How often each instance claims dispatchable runs and renews its leases.",
    "5",
  ),
  leaseSeconds: setting(
    "BOREALIS_SCHEDULER_LEASE_SECONDS",
    intEnv(60, 10, 3600),
    "seconds, 10 to 3600",
    "A claimed run's lease; a lease not renewed for this long is reclaimed by another instance.",
    "60",
  ),
  historyDays: setting(
    "BOREALIS_JOB_HISTORY_DAYS",
    intEnv(30, 1, 3650),
    "days, 1 to 3650",
    "Job runs and activity history older than this are purged (in batches).",
    "30",
  ),
  timeoutGraceSeconds: setting(
    "BOREALIS_SCRIPT_TIMEOUT_GRACE_SECONDS",
    intEnv(60, 0, 3600),
    "seconds, 0 to 3600",
    "Extra time after a script's own timeout before its activity becomes Timed Out.",
    "60",
  ),
  dispatchBatch: setting(
    "BOREALIS_SCHEDULER_DISPATCH_BATCH",
    intEnv(500, 1, 100_000),
    "runs, 1 to 100000",
    "Runs claimed per statement.",
    "500",
  ),
};

export default definePlugin({
  name: "scheduler",
  description: "Quick run, scheduled jobs, maintenance windows, signed scripts, activity",
  requires: ["sites", "assemblies", "realtime", "aegis", "inventory", "tokens"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: schedulerSettings,
  async setup(ctx) {
    const s = ctx.settings;
    const vault = ctx.use(vaultKey);
    const channel = ctx.use(realtimeKey);
    const filters = ctx.use(filtersKey);
    const assemblies = ctx.use(assembliesService);
    const signer = new CodeSigner(ctx.sql, vault, ctx.clock, ctx.log);
    vault.registerColumn({
      ...CodeSigner.sealedColumn(),
      onReset: async (sql) => {
        await CodeSigner.sealedColumn().onReset(sql);
        signer.reset();
      },
    });
    // Agents get the public key at enrollment and in script/request through the tokens
    // plugin's hook (tokens is required by realtime, so it is always loaded here).
    ctx.use(tokensKey).setScriptSigningKeyProvider(() => signer.publicKey());
    // Agent package manifests are signed with the same key (agent_updates).
    ctx.use(tokensKey).setCodeSigner((bytes) => signer.sign(bytes));
    // A filter a job targets or a window covers cannot be deleted (only archived).
    filters.registerUsage(async (filterId) => {
      const jobs = await ctx.sql<{ id: string; name: string }[]>`
        select id::text, name from scheduled_jobs
        where targets @> ${ctx.sql.json([{ kind: "filter", filter_id: filterId }])}`;
      const windows = await ctx.sql<{ id: string; name: string }[]>`
        select id::text, name from maintenance_windows where filter_id = ${filterId}`;
      return [
        ...jobs.map((j) => ({ kind: "scheduled_job", id: j.id, name: j.name })),
        ...windows.map((w) => ({ kind: "maintenance_window", id: w.id, name: w.name })),
      ];
    });

    const dispatcher = new Dispatcher({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      assemblies,
      signer,
      channel,
      credentials: ctx.tryUse(credentialsKey),
      graceMs: s.timeoutGraceSeconds * 1000,
      // Realtime holds messages for offline agents up to 180 s by default; leave room for it.
      holdMs: 180_000,
    });
    const sent = ctx.metrics.histogram(
      "borealis_job_dispatch_seconds",
      "Handing a script to realtime, by outcome (delivered here, routed to another instance, held offline)",
      ["outcome"],
    );
    const results = ctx.metrics.histogram(
      "borealis_job_result_lag_seconds",
      "From a job activity's creation to its result, by final status",
      ["status"],
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    );
    dispatcher.onSent = (outcome, seconds) => sent.observe({ outcome }, seconds);
    dispatcher.onResult = (status, seconds) => results.observe({ status }, Math.max(0, seconds));
    dispatcher.onChange = async (rows, change, source) => {
      await Promise.all(
        rows.map((r) =>
          channel.emitToOperators("activity", "device_activity_changed", {
            activity_id: Number(r.id),
            hostname: r.hostname,
            status: r.status,
            queue_lane: r.queue_lane,
            activity_kind: r.activity_kind,
            change,
            source,
            activity: change === "result" ? activityJson(r) : undefined,
          }, r.site_id)
        ),
      );
    };
    const windows = new WindowService(ctx.sql, ctx.clock, filters);
    const runs = new RunEngine({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      instanceId: ctx.instanceId,
      channel,
      filters,
      inventory: ctx.use(inventoryKey),
      dispatcher,
      windows,
      firingWindowMs: s.firingWindowMinutes * 60_000,
      leaseMs: s.leaseSeconds * 1000,
      retentionDays: s.historyDays,
      batchSize: s.dispatchBatch,
    });
    const quick = new QuickRunner(ctx.use(inventoryKey), dispatcher, ctx.instanceId);
    // Quick runs a stopped engine recorded but never sent are failed now, not at their
    // deadline minutes later. With the embedded database this is the only instance, so
    // every one of them is orphaned; a server may have other instances sending right now,
    // so there only those older than the claim window count.
    const undeliveredAfterMs = 30_000;
    await dispatcher.failUndelivered(
      new Date(ctx.clock.now() - (ctx.core.databaseUrl ? undeliveredAfterMs : 0)),
      ctx.instanceId,
    );

    channel.on("quick_job_result", QuickJobResult, (agent, d) => dispatcher.result(agent, d));
    channel.on("quick_job_progress", QuickJobProgress, (agent, d) => dispatcher.progress(agent, d));
    // Answer to `quick_job_status` from an agent that never received the script: send it
    // now (only the agent's own run, only while a query is outstanding).
    channel.on(
      "quick_job_unknown",
      QuickJobUnknown,
      (agent, d) => runs.answerUnknown(agent, Number(d.job_id), "unknown"),
    );
    // An agent that does not know `quick_job_status` answers with an error frame carrying
    // the query's id. Such an agent predates the query; the protocol it implements already
    // required deduplication by job id, so it gets the script again (the earlier
    // behaviour) rather than leaving a run it may have finished to time out. Other error
    // frames are only logged, and no error frame is ever answered (no ping-pong).
    channel.onAgentError(async (agent, _report, frame) => {
      const activity = activityOfStatusFrame(frame.id);
      if (activity !== null) await runs.answerUnknown(agent, activity, "unsupported");
    });

    ctx.provide(schedulerKey, {
      quickRun: (req) => quick.run(req),
      devicesInWindow: (devices, at) => windows.devicesInWindow(devices, at),
    });
    ctx.provide(schedulerInternalsKey, { runs, dispatcher, signer, windows });

    registerQuickRunRoutes(ctx, {
      runner: quick,
      signer,
      dispatcher,
      inventory: ctx.use(inventoryKey),
      filters,
    });
    // Before the job routes: a static path wins over /api/scheduled_jobs/{id}.
    registerSchedulePreviewRoute(ctx);
    registerJobRoutes(ctx, { runs, filters, assemblies, devices: ctx.use(devicesKey) });
    registerWindowRoutes(ctx, { windows, filters, sites: ctx.use(sitesKey) });
    registerServerTimeRoute(ctx);

    ctx.tasks.every("tick", s.tickSeconds * 1000, () => runs.tick(), { clusterSingleton: true });
    ctx.tasks.every("fail_undelivered", 15_000, async () => {
      await dispatcher.failUndelivered(
        new Date(ctx.clock.now() - undeliveredAfterMs),
        ctx.instanceId,
      );
    }, { clusterSingleton: true });
    ctx.tasks.every("dispatch", s.dispatchSeconds * 1000, async () => {
      runs.kick();
      await runs.idle();
    });
    // A target coming online should not wait for the next dispatch pass.
    ctx.events.subscribe(agentStatusChanged, (e) => {
      if (e.status === "online") runs.kick();
    });
    ctx.onStop(() => runs.stop());
  },
});

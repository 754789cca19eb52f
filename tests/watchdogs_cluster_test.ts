/**
 * Two engine instances on one PostgreSQL server (LISTEN/NOTIFY and leases need a real
 * server, so this runs with BOREALIS_TEST_DATABASE_URL): the interval loop runs on one
 * instance only, telemetry is evaluated by the instance that received it, and two
 * instances evaluating the same device at the same moment still give one incident and
 * one set of actions.
 */
import assert from "node:assert/strict";
import { realtimeInternalsKey } from "../plugins/realtime/mod.ts";
import { watchdogsKey } from "../plugins/watchdogs/mod.ts";
import { startWatchdogs, watchdogPlugins } from "../plugins/watchdogs/testing/harness.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

Deno.test({
  name:
    "watchdogs cluster: one loop leader, evaluation where telemetry lands, no duplicate incident",
  ignore: !serverUrl,
  async fn() {
    const h = await startWatchdogs();
    const b = await startTestEngine({
      plugins: watchdogPlugins,
      db: h.t.db,
      clock: h.t.clock,
      env: {
        BOREALIS_ASSEMBLIES_CATALOG_DIR: await Deno.makeTempDir(),
        BOREALIS_SCHEDULER_TICK_SECONDS: "3600",
        BOREALIS_SCHEDULER_DISPATCH_SECONDS: "600",
        BOREALIS_WATCHDOGS_INCREMENTAL_MS: "5000",
      },
    });
    try {
      const tick = async (ms: number) => {
        await h.t.clock.advance(ms);
        await h.t.engine.tasks.idle();
        await b.engine.tasks.idle();
      };
      const apiA = h.t.engine.service(watchdogsKey);
      const apiB = b.engine.service(watchdogsKey);
      const x = await h.enrolled("cluster-x");
      const w = await h.policy({
        name: "hot",
        targets: [{ kind: "device", device_guid: x.guid }],
        criteria: { rules: [{ type: "cpu_percent", threshold: 90 }] },
        actions: { actions: [{ type: "do_nothing" }] },
      });

      // Telemetry through A marks the device dirty on A only.
      await h.heartbeat(x, { cpu_percent: 99 });
      assert.equal(apiA.dirtyCount, 1);
      assert.equal(apiB.dirtyCount, 0);
      // Both instances judge the device at the same moment.
      await h.t.engine.service(realtimeInternalsKey).flush();
      const [ra, rb] = await Promise.all([
        apiA.service.runFor([x.guid]),
        apiB.service.runFor([x.guid]),
      ]);
      assert.equal(ra.opened + rb.opened, 1, "one instance opened it");
      const items = await h.incidentsOf(x.guid);
      assert.equal(items.length, 1);
      assert.equal(items[0]!.watchdog_id, w.id);
      assert.equal(items[0]!.action_summary.length, 1, "actions ran once");

      // The same race on more devices: whichever instance wins, each pair gets one
      // incident, one trigger and one action run (the loser sees the state changed).
      const more = [];
      for (let i = 0; i < 8; i++) more.push(await h.enrolled(`cluster-race-${i}`));
      const w2 = await h.policy({
        name: "hot-many",
        targets: more.map((d) => ({ kind: "device" as const, device_guid: d.guid })),
        criteria: { rules: [{ type: "cpu_percent", threshold: 90 }] },
        actions: { actions: [{ type: "do_nothing" }] },
      });
      for (const d of more) await h.heartbeat(d, { cpu_percent: 99 });
      await h.t.engine.service(realtimeInternalsKey).flush();
      // All sixteen judgments at once, so reads and writes of the two instances interleave.
      const runs = await Promise.all(
        more.flatMap((d) => [apiA.service.runFor([d.guid]), apiB.service.runFor([d.guid])]),
      );
      assert.equal(runs.reduce((n, r) => n + r.opened, 0), more.length, "one opening per device");
      for (const d of more) {
        const its = (await h.incidentsOf(d.guid)).filter((x) => x.watchdog_id === w2.id);
        assert.equal(its.length, 1);
        assert.equal(its[0]!.action_summary.length, 1, `${d.guid}: actions ran once`);
        assert.equal(its[0]!.trigger_count, 1, `${d.guid}: triggered once`);
      }

      // The interval loop is a cluster singleton: over five minutes one instance ran it.
      for (let i = 0; i < 10; i++) await tick(30_000);
      const statsOf = (t: typeof b) =>
        t.engine.tasks.stats().find((s) => s.name === "watchdogs.evaluate")!;
      const sa = statsOf(h.t);
      const sb = statsOf(b);
      assert.ok(sa.runs + sb.runs >= 9, `runs ${sa.runs} + ${sb.runs}`);
      assert.ok(sa.runs === 0 || sb.runs === 0, `both ran: ${sa.runs} and ${sb.runs}`);
      assert.ok(sa.skippedNotLeader + sb.skippedNotLeader >= 9);
      assert.equal((await h.incidentsOf(x.guid)).length, 1);
    } finally {
      await b.stop();
      await h.close();
    }
  },
});

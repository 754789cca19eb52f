/**
 * Two engine instances on one PostgreSQL server deliver each message once: both judge
 * the same devices at the same moment (one incident, one outbox event each), both run
 * delivery cycles at the same time (claims skip each other's rows), and the worker task
 * runs on one instance only (its lease). Needs BOREALIS_TEST_DATABASE_URL.
 */
import assert from "node:assert/strict";
import { alertsKey } from "../plugins/alerts/mod.ts";
import { alertPlugins, startAlerts } from "../plugins/alerts/testing/harness.ts";
import { realtimeInternalsKey } from "../plugins/realtime/mod.ts";
import { watchdogsKey } from "../plugins/watchdogs/mod.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

Deno.test({
  name: "alerts cluster: two instances deliver every message exactly once",
  ignore: !serverUrl,
  async fn() {
    const env = {
      BOREALIS_ASSEMBLIES_CATALOG_DIR: await Deno.makeTempDir(),
      BOREALIS_SCHEDULER_TICK_SECONDS: "3600",
      BOREALIS_SCHEDULER_DISPATCH_SECONDS: "600",
      BOREALIS_WATCHDOGS_INCREMENTAL_MS: "5000",
      BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS: "true",
      BOREALIS_ALERTS_WORKER_MS: "1000",
    };
    const h = await startAlerts({ BOREALIS_ALERTS_WORKER_MS: "1000" });
    const b = await startTestEngine({ plugins: alertPlugins, db: h.t.db, clock: h.t.clock, env });
    try {
      const apiA = h.t.engine.service(alertsKey);
      const apiB = b.engine.service(alertsKey);
      const hook = await h.webhook({ rate_per_minute: 10_000 });
      await h.route({ channel_ids: [hook.id] });
      const devices = [];
      for (let i = 0; i < 12; i++) devices.push(await h.enrolled(`cluster-${i}`));
      await h.policy({
        name: "cpu",
        targets: devices.map((d) => ({ kind: "device", device_guid: d.guid })),
        criteria: { rules: [{ type: "cpu_percent", threshold: 90 }] },
      });
      for (const d of devices) await h.heartbeat(d, { cpu_percent: 99 });
      await h.t.engine.service(realtimeInternalsKey).flush();
      // Both instances judge every device at once: one incident and one event each.
      const wa = h.t.engine.service(watchdogsKey).service;
      const wb = b.engine.service(watchdogsKey).service;
      const guids = devices.map((d) => d.guid);
      const runs = await Promise.all(guids.flatMap((g) => [wa.runFor([g]), wb.runFor([g])]));
      assert.equal(runs.reduce((n, r) => n + r.opened, 0), devices.length);
      const [ev] = await h.t.engine.sql<{ n: number }[]>`
        select count(*)::int as n from alert_events where kind = 'opened'`;
      assert.equal(ev!.n, devices.length, "one outbox event per incident");

      // Both instances run delivery cycles at the same moment, several times over.
      for (let i = 0; i < 4; i++) {
        await Promise.all([apiA.cycle(), apiB.cycle(), apiA.cycle(), apiB.cycle()]);
      }
      await Promise.all([apiA.drain(), apiB.drain()]);
      await h.receiver.waitFor(devices.length);
      const ids = h.receiver.received.map((r) => r.json.delivery_id);
      assert.equal(ids.length, devices.length, "each message once");
      assert.equal(new Set(ids).size, devices.length);
      const incidents = h.receiver.received.map((r) => (r.json.incident as { id: string }).id);
      assert.equal(new Set(incidents).size, devices.length);
      assert.ok(h.receiver.received.every((r) => r.verified === true));

      // The worker task: acknowledgements are delivered by whichever instance holds the
      // lease, and only by it.
      for (const d of devices) {
        const [inc] = await h.incidentsOf(d.guid);
        const r = await h.op(`/api/watchdogs/incidents/${inc!.id}/acknowledge`, { method: "POST" });
        await r.body?.cancel();
      }
      for (let i = 0; i < 5; i++) {
        await h.t.clock.advance(1000);
        await Promise.all([h.t.engine.tasks.idle(), b.engine.tasks.idle()]);
      }
      await h.receiver.waitFor(2 * devices.length);
      await Promise.all([apiA.drain(), apiB.drain()]);
      assert.equal(h.receiver.received.length, 2 * devices.length);
      const acks = h.receiver.received.filter((r) => r.json.type === "incident.acknowledged");
      assert.equal(new Set(acks.map((r) => r.json.delivery_id)).size, devices.length);
      const stat = (t: typeof b) =>
        t.engine.tasks.stats().find((s) => s.name === "alerts.deliver")!;
      const [sa, sb] = [stat(h.t), stat(b)];
      assert.ok(sa.runs === 0 || sb.runs === 0, `both ran the worker: ${sa.runs} and ${sb.runs}`);
      assert.ok(sa.runs + sb.runs >= 4);
      const [dup] = await h.t.engine.sql<{ n: number }[]>`
        select count(*)::int as n from alert_deliveries where status <> 'delivered'`;
      assert.equal(dup!.n, 0);
    } finally {
      await b.stop();
      await h.close();
    }
  },
});

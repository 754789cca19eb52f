/**
 * The incident write hook: another plugin sees every incident change inside the
 * transaction that writes it, with the incident as written; a hook that fails rolls the
 * change back, so a row it writes exists exactly when the change does.
 */
import assert from "node:assert/strict";
import { definePlugin } from "../core/plugin.ts";
import { type IncidentEvent, watchdogsKey } from "../plugins/watchdogs/mod.ts";
import { startWatchdogs, watchdogPlugins } from "../plugins/watchdogs/testing/harness.ts";

const seen: IncidentEvent[] = [];
let fail = false;

const probe = definePlugin({
  name: "hookprobe",
  requires: ["watchdogs"],
  setup(ctx) {
    ctx.use(watchdogsKey).onIncidentWrite(async (tx, events) => {
      // The hook runs in the writing transaction: it sees the incident as written.
      const [r] = await tx<{ n: number }[]>`select count(*)::int as n from watchdog_incidents
        where id = any(${events.map((e) => e.incident.id)}::uuid[])`;
      assert.equal(r!.n, new Set(events.map((e) => e.incident.id)).size);
      if (fail) throw new Error("hook refused");
      seen.push(...events);
    });
  },
});

Deno.test("watchdogs write hook: every change, in its transaction; a failing hook rolls it back", async () => {
  const h = await startWatchdogs({}, [...watchdogPlugins, probe]);
  try {
    const a = await h.enrolled("hooked");
    const w = await h.policy({
      name: "cpu",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [{ type: "cpu_percent", threshold: 90 }] },
    });
    await h.heartbeat(a, { cpu_percent: 99 });
    fail = true;
    await assert.rejects(h.flush(), /hook refused/);
    assert.equal((await h.incidentsOf(a.guid)).length, 0, "no incident without its hook rows");
    fail = false;
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.flush();
    const [inc] = await h.incidentsOf(a.guid);
    assert.ok(inc);
    assert.deepEqual(seen.map((e) => e.change), ["opened"]);
    assert.equal(seen[0]!.incident.id, inc.id);
    assert.equal(seen[0]!.incident.watchdog_name, "cpu");
    assert.equal(seen[0]!.incident.device_guid, a.guid);
    assert.equal(seen[0]!.incident.state, "open");

    const op = async (path: string, json?: unknown) => {
      const r = await h.op(path, json === undefined ? { method: "POST" } : { json });
      assert.equal(r.status, 200, await r.clone().text());
      await r.body?.cancel();
    };
    await op(`/api/watchdogs/incidents/${inc.id}/acknowledge`);
    await op(`/api/watchdogs/incidents/${inc.id}/acknowledge`);
    await op(`/api/watchdogs/incidents/${inc.id}/state`, { state: "suppressed", reason: "known" });
    await op(`/api/watchdogs/incidents/${inc.id}/state`, { state: "suppressed", reason: "again" });
    await op(`/api/watchdogs/incidents/${inc.id}/state`, { state: "open" });
    await op(`/api/watchdogs/${w.id}/archive`, { archived: true });
    assert.deepEqual(seen.map((e) => e.change), [
      "opened",
      "acknowledged",
      "suppressed",
      "reopened",
      "resolved",
    ]);
    assert.equal(seen[2]!.reason, "known");
    assert.equal(seen[4]!.reason, "watchdog_archived");
    assert.equal(seen[4]!.incident.state, "resolved");
    assert.ok(seen[1]!.incident.acknowledged_by);
  } finally {
    await h.close();
  }
});

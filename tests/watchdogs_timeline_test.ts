/**
 * Watchdog timelines end to end: reference agents report telemetry over the real agent
 * routes, the injected clock drives the engine's tasks (incremental evaluation and the
 * cluster loop), and incidents are read back through the real HTTP API.
 */
import assert from "node:assert/strict";
import { startWatchdogs } from "../plugins/watchdogs/testing/harness.ts";

const MIN = 60_000;
const cpu = { type: "cpu_percent", threshold: 90 };

Deno.test("watchdogs timeline: a flapping device gives one incident; auto-resolve; recurrence opens a new one", async () => {
  const h = await startWatchdogs();
  try {
    const a = await h.enrolled("flappy");
    const w = await h.policy({
      name: "CPU hot",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [{ type: "cpu_percent", threshold: 90 }] },
      actions: { actions: [{ type: "do_nothing" }] },
    });
    // Flap every minute for ten minutes: hot, cool, hot, cool…
    for (let i = 0; i < 10; i++) {
      await h.heartbeat(a, { cpu_percent: i % 2 === 0 ? 97 : 12 });
      await h.tick(5000);
      await h.tick(MIN - 5000);
    }
    let items = await h.incidentsOf(a.guid);
    assert.equal(items.length, 1, "one incident, not many");
    assert.equal(items[0]!.state, "open");
    assert.equal(items[0]!.watchdog_id, w.id);
    assert.ok(items[0]!.trigger_count >= 5, `trigger count ${items[0]!.trigger_count}`);
    assert.deepEqual(items[0]!.action_summary.map((x) => x.detail), ["Incident only"]);

    // Stays cool: resolved once clear for the auto-resolve period (300 s).
    await h.heartbeat(a, { cpu_percent: 10 });
    for (let i = 0; i < 7; i++) {
      await h.tick(MIN);
      await h.heartbeat(a, { cpu_percent: 10 });
    }
    items = await h.incidentsOf(a.guid);
    assert.equal(items.length, 1);
    assert.equal(items[0]!.state, "resolved");
    assert.equal(items[0]!.resolution_reason, "auto_resolved");

    // Recurrence after resolution: a new incident.
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.tick(5000);
    items = await h.incidentsOf(a.guid);
    assert.equal(items.length, 2);
    assert.equal(items[0]!.state, "open");
    assert.equal(items[0]!.trigger_count, 1);
    assert.equal(items[1]!.state, "resolved");

    const counts = (await (await h.op("/api/watchdogs/incidents?state=all")).json()).counts;
    assert.deepEqual(counts, { open: 1, suppressed: 0, resolved: 1 });
  } finally {
    await h.close();
  }
});

Deno.test("watchdogs timeline: maintenance windows hold incidents; after the window nothing fires unless it still holds", async () => {
  // The test clock starts at 2026-01-05 12:00 UTC; the window is 12:10–12:40 for the site.
  const h = await startWatchdogs();
  try {
    const hot = await h.enrolled("win-hot");
    const off = await h.enrolled("win-off");
    const win = await h.op("/api/maintenance_windows", {
      json: { name: "patching", cron: "10 12 * * *", duration_minutes: 30, site_id: h.site.id },
    });
    assert.equal(win.status, 201, await win.clone().text());
    await win.body?.cancel();
    await h.heartbeat(hot, { cpu_percent: 10 });
    await h.heartbeat(off, { cpu_percent: 10 });
    await h.policy({
      name: "hot",
      targets: [{ kind: "device", device_guid: hot.guid }],
      criteria: { rules: [cpu] },
      min_consecutive_matches: 2,
    });
    await h.policy({
      name: "offline",
      targets: [{ kind: "device", device_guid: off.guid }],
      criteria: { rules: [{ type: "device_offline", offline_after_seconds: 300 }] },
    });
    // 12:00 → 12:14: both report; cool.
    for (let i = 0; i < 14; i++) {
      await h.heartbeat(hot, { cpu_percent: 10 });
      await h.heartbeat(off, { cpu_percent: 10 });
      await h.tick(MIN);
    }
    // 12:14 → 12:39: inside the window the first goes hot, the second goes silent (rebooting).
    for (let i = 0; i < 25; i++) {
      await h.heartbeat(hot, { cpu_percent: 99 });
      await h.tick(MIN);
    }
    assert.deepEqual(await h.incidentsOf(hot.guid), [], "no incident inside the window");
    assert.deepEqual(await h.incidentsOf(off.guid), [], "no offline incident inside the window");
    const view = await (await h.op(`/api/devices/${hot.guid}/watchdogs`)).json();
    assert.equal(view.assignments[0].state, "suppressed");

    // 12:39 → 12:40:10: the window ended at 12:40; at most one match counted since, and the
    // minimum is two. The offline clock restarted at the window's end.
    await h.heartbeat(hot, { cpu_percent: 99 });
    await h.tick(MIN);
    assert.deepEqual(await h.incidentsOf(hot.guid), []);
    assert.deepEqual(await h.incidentsOf(off.guid), []);
    // Still hot two minutes later: now it fires.
    for (let i = 0; i < 2; i++) {
      await h.heartbeat(hot, { cpu_percent: 99 });
      await h.tick(MIN);
    }
    assert.equal((await h.incidentsOf(hot.guid)).length, 1);
    assert.deepEqual(
      await h.incidentsOf(off.guid),
      [],
      "12:42: offline only 2 minutes past the window",
    );
    // Still offline well past 5 minutes after the window: fires.
    for (let i = 0; i < 5; i++) await h.tick(MIN);
    const offline = await h.incidentsOf(off.guid);
    assert.equal(offline.length, 1);
    assert.equal(offline[0]!.state, "open");
  } finally {
    await h.close();
  }
});

Deno.test("watchdogs timeline: overrides — suppressed with expiry, disabled resolves, clear restores", async () => {
  const h = await startWatchdogs();
  try {
    const a = await h.enrolled("ovr");
    const w = await h.policy({
      name: "hot",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [cpu] },
    });
    const expires = new Date(h.t.clock.now() + 5 * MIN).toISOString();
    const set = await h.op(`/api/devices/${a.guid}/watchdogs/overrides`, {
      json: { watchdog_id: w.id, state: "suppressed", reason: "known issue", expires_at: expires },
    });
    assert.equal(set.status, 200);
    const view = await set.json();
    assert.equal(view.overrides.length, 1);
    assert.equal(view.overrides[0].reason, "known issue");
    for (let i = 0; i < 4; i++) {
      await h.heartbeat(a, { cpu_percent: 99 });
      await h.tick(MIN);
    }
    assert.deepEqual(await h.incidentsOf(a.guid), [], "suppressed by the override");
    // Expired: the next evaluation opens the incident.
    for (let i = 0; i < 2; i++) {
      await h.heartbeat(a, { cpu_percent: 99 });
      await h.tick(MIN);
    }
    let items = await h.incidentsOf(a.guid);
    assert.equal(items.length, 1);
    assert.equal(items[0]!.state, "open");

    const dis = await h.op(`/api/devices/${a.guid}/watchdogs/overrides`, {
      json: { watchdog_id: w.id, state: "disabled", reason: "retired" },
    });
    assert.equal(dis.status, 200);
    assert.equal((await dis.json()).assignments[0].state, "disabled");
    items = await h.incidentsOf(a.guid);
    assert.equal(items[0]!.state, "resolved");
    assert.equal(items[0]!.resolution_reason, "device_disabled");
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.tick(MIN);
    assert.equal((await h.incidentsOf(a.guid)).length, 1, "disabled: nothing new");

    const clr = await h.op(`/api/devices/${a.guid}/watchdogs/overrides`, {
      json: { watchdog_id: w.id, state: "clear" },
    });
    assert.equal((await clr.json()).overrides.length, 0);
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.tick(5000);
    assert.equal((await h.incidentsOf(a.guid)).length, 2, "cleared: a new incident");

    const past = await h.op(`/api/devices/${a.guid}/watchdogs/overrides`, {
      json: { watchdog_id: w.id, state: "suppressed", expires_at: "2020-01-01T00:00:00Z" },
    });
    assert.equal(past.status, 400);
    await past.body?.cancel();
    const nope = await h.op(`/api/devices/${a.guid}/watchdogs/overrides`, {
      json: { watchdog_id: crypto.randomUUID(), state: "suppressed" },
    });
    assert.equal(nope.status, 404);
    await nope.body?.cancel();
  } finally {
    await h.close();
  }
});

Deno.test("watchdogs timeline: offline-only incidents resolve when the device returns; disabling and re-targeting resolve", async () => {
  const h = await startWatchdogs();
  try {
    const a = await h.enrolled("away");
    const b = await h.enrolled("other");
    await h.heartbeat(a);
    await h.heartbeat(b, { cpu_percent: 99 });
    const off = await h.policy({
      name: "offline",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [{ type: "device_offline", offline_after_seconds: 120 }] },
    });
    for (let i = 0; i < 4; i++) await h.tick(MIN);
    let items = await h.incidentsOf(a.guid);
    assert.equal(items.length, 1);
    assert.match(items[0]!.message, /offline for/);
    // Back: resolved at once, kept as history.
    await h.heartbeat(a);
    await h.tick(5000);
    items = await h.incidentsOf(a.guid);
    assert.equal(items[0]!.state, "resolved");
    assert.equal(items[0]!.resolution_reason, "device returned");

    // Disabling a policy resolves its incidents.
    const hot = await h.policy({
      name: "hot",
      targets: [{ kind: "device", device_guid: b.guid }],
      criteria: { rules: [cpu] },
    });
    assert.equal((await h.incidentsOf(b.guid))[0]!.state, "open", "saving evaluates at once");
    const body = { name: "hot", enabled: false, targets: hot.targets, criteria: hot.criteria };
    const put = await h.op(`/api/watchdogs/${hot.id}`, { method: "PUT", json: body });
    assert.equal(put.status, 200);
    await put.body?.cancel();
    assert.equal((await h.incidentsOf(b.guid))[0]!.resolution_reason, "watchdog_disabled");

    // Re-enable, then move the target elsewhere: the target disappeared.
    await h.tick(1000);
    const on = await h.op(`/api/watchdogs/${hot.id}`, {
      method: "PUT",
      json: { ...body, enabled: true },
    });
    await on.body?.cancel();
    assert.equal((await h.incidentsOf(b.guid))[0]!.state, "open");
    const moved = await h.op(`/api/watchdogs/${hot.id}`, {
      method: "PUT",
      json: { ...body, enabled: true, targets: [{ kind: "device", device_guid: a.guid }] },
    });
    await moved.body?.cancel();
    assert.equal((await h.incidentsOf(b.guid))[0]!.resolution_reason, "target_removed");

    // Archiving resolves too.
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.tick(5000);
    assert.equal((await h.incidentsOf(a.guid)).filter((i) => i.state === "open").length, 1);
    const arch = await h.op(`/api/watchdogs/${hot.id}/archive`, { json: { archived: true } });
    await arch.body?.cancel();
    const last = (await h.incidentsOf(a.guid)).find((i) => i.watchdog_id === hot.id)!;
    assert.equal(last.resolution_reason, "watchdog_archived");
    void off;

    // Stale telemetry never opens an incident: CPU was last reported hot 20 minutes ago.
    const c = await h.enrolled("silent");
    await h.heartbeat(c, { cpu_percent: 99 });
    await h.tick(20 * MIN);
    await h.policy({
      name: "hot silent",
      targets: [{ kind: "device", device_guid: c.guid }],
      criteria: { rules: [cpu] },
    });
    assert.deepEqual(await h.incidentsOf(c.guid), []);
    const view = await (await h.op(`/api/devices/${c.guid}/watchdogs`)).json();
    assert.equal(
      view.assignments.find((x: { name: string }) => x.name === "hot silent").state,
      "stale_data",
    );

    // A reboot after the policy exists is detected (one before it is the baseline).
    await h.heartbeat(c, { last_reboot: new Date(h.t.clock.now() - 3600_000).toISOString() });
    const rb = await h.policy({
      name: "rebooted",
      targets: [{ kind: "device", device_guid: c.guid }],
      criteria: { rules: [{ type: "reboot_detected", within_seconds: 7200 }] },
    });
    const ofReboot = async () =>
      (await h.incidentsOf(c.guid)).filter((i) => i.watchdog_id === rb.id);
    assert.equal((await ofReboot()).length, 0, "the reboot before the policy is the baseline");
    await h.tick(MIN);
    await h.heartbeat(c, {
      last_reboot: new Date(h.t.clock.now() - 5000).toISOString(),
      uptime: 5,
    });
    await h.tick(5000);
    const rebooted = await ofReboot();
    assert.equal(rebooted.length, 1);
    assert.match(rebooted[0]!.message, /last reboot/);
  } finally {
    await h.close();
  }
});

/**
 * Watchdog actions and the operator side: notifications (site-scoped), service control
 * delivered to a reference agent over its real WebSocket, an assembly run through the
 * scheduler's quick run, the cooldown, and site scope on incident routes and events
 * (real operator sockets).
 */
import assert from "node:assert/strict";
import { type OperatorEvent, operatorEvent } from "../plugins/realtime/mod.ts";
import { startWatchdogs } from "../plugins/watchdogs/testing/harness.ts";
import { AgentSocket } from "./agent/socket.ts";
import { createOperator } from "./helpers/operators.ts";

const MIN = 60_000;
const cpu = { type: "cpu_percent", threshold: 90 };

async function until(pred: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function operatorSocket(server: string, headers: Record<string, string>) {
  const frames: Array<{ type: string; data?: unknown; topic?: string }> = [];
  const ws = new (WebSocket as unknown as new (
    u: string,
    o: { headers: Record<string, string> },
  ) => WebSocket)(server.replace(/^http/, "ws") + "/api/ws", { headers });
  ws.onmessage = (e) => void frames.push(JSON.parse(String(e.data)));
  return new Promise<{ ws: WebSocket; frames: typeof frames }>((resolve, reject) => {
    ws.onopen = () => resolve({ ws, frames });
    ws.onerror = () => reject(new Error("operator socket failed"));
  });
}

Deno.test("watchdogs actions: notification, service control to the agent, assembly quick run; cooldown respected", async () => {
  const h = await startWatchdogs();
  const sockets: AgentSocket[] = [];
  try {
    const { port } = await h.t.engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const a = await h.enrolled("remedy");
    const s = new AgentSocket(a, { server, heartbeat: false, reconnect: false });
    sockets.push(s);
    await s.start();
    await s.waitFor((f) => f.type === "welcome");

    const created = await h.op("/api/assemblies", {
      json: {
        domain: "user_created",
        display_name: "Restart spooler",
        assembly_kind: "script",
        assembly_type: "bash",
        payload: "echo fixing $TARGET\n",
        metadata: { variables: [{ name: "target", type: "string" }], timeout_seconds: 60 },
      },
    });
    assert.equal(created.status, 201, await created.clone().text());
    const assemblyGuid = (await created.json()).assembly_guid as string;

    const events: OperatorEvent[] = [];
    h.t.engine.events.subscribe(operatorEvent, (e) => void events.push(e));

    const w = await h.policy({
      name: "Hot box",
      severity: "error",
      cooldown_seconds: 240,
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [cpu] },
      actions: {
        actions: [
          {
            type: "notification",
            variant: "error",
            title: "Hot: {{hostname}}",
            message_template: "{{hostname}} runs hot",
          },
          { type: "service_control", action: "restart", service_name: "Spooler" },
          {
            type: "assembly",
            assembly_guid: assemblyGuid.toUpperCase(),
            variable_values: { target: "spooler" },
          },
        ],
      },
    });
    s.send({ type: "heartbeat", data: { metrics: { cpu_percent: 98 } } });
    await until(async () => {
      await h.tick(5000);
      return (await h.incidentsOf(a.guid)).length > 0;
    });

    const control = await s.waitFor((f) => f.type === "service_control");
    assert.deepEqual((control.data as Record<string, unknown>).action, "restart");
    assert.deepEqual((control.data as Record<string, unknown>).service_name, "Spooler");
    assert.equal((control.data as Record<string, unknown>).watchdog_id, w.id);
    const job = await s.waitFor((f) => f.type === "quick_job_run");
    const jobData = job.data as { context: { assembly_guid: string } };
    assert.equal(jobData.context.assembly_guid, assemblyGuid.toLowerCase());

    const [incident] = await h.incidentsOf(a.guid);
    const summary = incident!.action_summary;
    assert.deepEqual(summary.map((x) => [x.type, x.status]), [
      ["notification", "sent"],
      ["service_control", "delivered"],
      ["assembly", "dispatched"],
    ]);
    assert.ok(summary[2]!.job_id && summary[2]!.activity_id);

    const note = events.find((e) => e.type === "borealis_notification");
    assert.ok(note, "notification emitted");
    assert.equal(note.site_id, h.site.id);
    assert.equal((note.data as { title: string }).title, "Hot: remedy");
    assert.equal((note.data as { message: string }).message, "remedy runs hot");
    const changed = events.find((e) => e.type === "watchdog_incidents_changed");
    assert.equal(changed?.topic, "incidents");
    assert.equal(changed?.site_id, h.site.id);

    // The activity row of the assembly run is visible through the scheduler's route.
    const activity = await (await h.op(`/api/device/activity/remedy`)).json();
    assert.ok(JSON.stringify(activity).includes(String(summary[2]!.activity_id)));

    // Flap inside the cooldown (4 min): re-triggers, no new actions.
    const controls = () => s.frames.filter((f) => f.type === "service_control").length;
    for (const v of [10, 98, 10, 98]) {
      s.send({ type: "heartbeat", data: { metrics: { cpu_percent: v } } });
      await h.tick(5000);
      await h.tick(MIN - 5000);
    }
    let items = await h.incidentsOf(a.guid);
    assert.equal(items.length, 1);
    assert.ok(items[0]!.trigger_count >= 2);
    assert.equal(controls(), 1, "inside the cooldown: no second restart");
    // Past the cooldown, the next re-trigger runs the actions again.
    for (const v of [10, 98]) {
      s.send({ type: "heartbeat", data: { metrics: { cpu_percent: v } } });
      await h.tick(5000);
      await h.tick(MIN - 5000);
    }
    await until(() => controls() === 2);
    items = await h.incidentsOf(a.guid);
    assert.equal(items.length, 1);
    assert.equal(items[0]!.action_summary.filter((x) => x.type === "service_control").length, 2);
  } finally {
    for (const s of sockets) s.stop();
    await h.close();
  }
});

Deno.test("watchdogs incidents: site scope on routes and events; acknowledge, suppress with a reason, re-open", async () => {
  const h = await startWatchdogs();
  try {
    const { port } = await h.t.engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const other = await h.createSite("Branch");
    const a = await h.enrolled("main-box");
    const b = await h.enrolled("branch-box", other.enrollment_code);
    const mainUser = await createOperator(h.t, { role: "User", sites: [h.site.id] });
    const branchUser = await createOperator(h.t, { role: "User", sites: [other.id] });
    const mainSock = await operatorSocket(server, mainUser.headers);
    const branchSock = await operatorSocket(server, branchUser.headers);
    for (const o of [mainSock, branchSock]) {
      o.ws.send(
        JSON.stringify({
          type: "subscribe",
          id: "1",
          data: { topics: ["incidents", "notifications"] },
        }),
      );
    }
    await until(() => mainSock.frames.length > 0 && branchSock.frames.length > 0);

    await h.heartbeat(a, { cpu_percent: 99 });
    await h.heartbeat(b, { cpu_percent: 99 });
    await h.policy({
      name: "hot everywhere",
      criteria: { rules: [cpu] },
      actions: {
        actions: [{ type: "notification", title: "hot", message_template: "{{hostname}} is hot" }],
      },
    });
    const byType = (frames: typeof mainSock.frames, type: string) =>
      frames.filter((f) => f.type === type).map((f) => JSON.stringify(f.data));
    await until(() =>
      byType(mainSock.frames, "watchdog_incidents_changed").length > 0 &&
      byType(branchSock.frames, "watchdog_incidents_changed").length > 0
    );
    await until(() =>
      byType(mainSock.frames, "borealis_notification").length > 0 &&
      byType(branchSock.frames, "borealis_notification").length > 0
    );
    // Each operator hears about its own site's device only.
    assert.ok(
      byType(mainSock.frames, "watchdog_incidents_changed").every((t) => t.includes("main-box")),
    );
    assert.ok(
      byType(mainSock.frames, "watchdog_incidents_changed").every((t) => !t.includes("branch-box")),
    );
    assert.ok(
      byType(branchSock.frames, "watchdog_incidents_changed").every((t) => !t.includes("main-box")),
    );
    assert.ok(
      byType(mainSock.frames, "borealis_notification").every((t) => t.includes("main-box is hot")),
    );
    assert.ok(
      byType(branchSock.frames, "borealis_notification").every((t) =>
        t.includes("branch-box is hot")
      ),
    );

    // Routes: each user lists and counts only its site's incidents.
    const list = async (who: typeof mainUser, q = "state=all") =>
      await (await h.op(`/api/watchdogs/incidents?${q}`, { as: who })).json();
    const mine = await list(mainUser);
    assert.deepEqual(mine.items.map((i: { hostname: string }) => i.hostname), ["main-box"]);
    assert.deepEqual(mine.counts, { open: 1, suppressed: 0, resolved: 0 });
    const theirs = await list(branchUser);
    assert.deepEqual(theirs.items.map((i: { hostname: string }) => i.hostname), ["branch-box"]);
    const all = await list(h.admin);
    assert.equal(all.items.length, 2);
    const branchIncident = theirs.items[0].id;
    const mainIncident = mine.items[0].id;
    const denied = await h.op(`/api/watchdogs/incidents/${branchIncident}/acknowledge`, {
      as: mainUser,
      json: {},
    });
    assert.equal(denied.status, 404);
    await denied.body?.cancel();
    assert.equal((await h.op(`/api/devices/${b.guid}/watchdogs`, { as: mainUser })).status, 404);

    // Acknowledge, suppress (a reason is required), re-open.
    const ack = await h.op(`/api/watchdogs/incidents/${mainIncident}/acknowledge`, {
      as: mainUser,
      json: {},
    });
    const acked = await ack.json();
    assert.equal(acked.acknowledged_by, mainUser.username);
    const noReason = await h.op(`/api/watchdogs/incidents/${mainIncident}/state`, {
      as: mainUser,
      json: { state: "suppressed" },
    });
    assert.equal(noReason.status, 400);
    await noReason.body?.cancel();
    const sup = await h.op(`/api/watchdogs/incidents/${mainIncident}/state`, {
      as: mainUser,
      json: { state: "suppressed", reason: "vendor ticket 42" },
    });
    assert.equal((await sup.json()).suppressed_reason, "vendor ticket 42");
    assert.deepEqual((await list(mainUser)).counts, { open: 0, suppressed: 1, resolved: 0 });
    assert.equal((await list(mainUser, "state=open")).items.length, 0);
    assert.equal((await list(mainUser, "state=suppressed")).items.length, 1);
    // Still hot while suppressed: the same incident, not a new one.
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.tick(MIN);
    assert.deepEqual((await list(mainUser)).counts, { open: 0, suppressed: 1, resolved: 0 });
    const reopen = await h.op(`/api/watchdogs/incidents/${mainIncident}/state`, {
      as: mainUser,
      json: { state: "open", reason: "" },
    });
    assert.equal((await reopen.json()).state, "open");
    assert.deepEqual((await list(mainUser)).counts, { open: 1, suppressed: 0, resolved: 0 });
    const bad = await h.op(`/api/watchdogs/incidents?state=bogus`, { as: mainUser });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const changes = mainSock.frames.filter((f) => f.type === "watchdog_incidents_changed");
    assert.ok(JSON.stringify(changes).includes('"suppressed"'));
    assert.ok(!JSON.stringify(branchSock.frames).includes(mainIncident));

    // The device view lists incidents, assignments and overrides.
    const view = await (await h.op(`/api/devices/${a.guid}/watchdogs`, { as: mainUser })).json();
    assert.equal(view.incidents.length, 1);
    assert.equal(view.assignments[0].name, "hot everywhere");
    assert.deepEqual(view.overrides, []);
    mainSock.ws.close();
    branchSock.ws.close();
  } finally {
    await h.close();
  }
});

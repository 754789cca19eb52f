/**
 * Two engine instances on one PostgreSQL database share scheduled work: every run is
 * claimed by exactly one instance (no double dispatch), and when an instance dies
 * mid-run its leases expire and the other instance reclaims them. The reclaiming
 * instance does not send the script again: it asks the agent (`quick_job_status`), and
 * only an agent that never received the script (`quick_job_unknown`) gets it — so a
 * script frame reaches an agent once.
 */
import assert from "node:assert/strict";
import { assembliesService } from "../plugins/assemblies/mod.ts";
import { realtimeInternalsKey } from "../plugins/realtime/mod.ts";
import { schedulerInternalsKey } from "../plugins/scheduler/mod.ts";
import {
  type LiveAgent,
  schedulerPlugins,
  startScheduler,
  until,
} from "../plugins/scheduler/testing/helpers.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";
import { ManualClock } from "../core/clock.ts";
import type { Json } from "../plugins/scheduler/testing/helpers.ts";

/** A bash script that waits until the file `$GATE` exists, then prints `text`. */
const gatedScript = (text: string) => `while [ ! -e "$GATE" ]; do sleep 0.05; done\necho ${text}\n`;
/**
 * Sends a frame and waits for the engine's answer to it. (The socket's own `request`
 * numbers from 1 like activity ids, so an incoming `quick_job_run` could pass for it.)
 */
let asked = 0;
async function ask(socket: LiveAgent["socket"], type: string, data: unknown) {
  const id = `ask-${++asked}`;
  socket.send({ type, id, data });
  return await socket.waitFor((f) => f.id === id);
}

const gateMeta = {
  timeout_seconds: 60,
  variables: [{ name: "GATE", type: "string", required: true }],
};

Deno.test({
  name:
    "scheduler cluster: two instances, a filter job, no double dispatch; a dead instance's leases are reclaimed",
  ignore: !serverUrl,
  async fn() {
    const s = await startScheduler();
    const b = await startTestEngine({
      plugins: schedulerPlugins,
      db: s.h.t.db,
      clock: s.h.t.clock,
    });
    let bStopped = false;
    let aStopped = false;
    try {
      const { port: portB } = await b.engine.listen();
      const serverB = `http://127.0.0.1:${portB}`;
      const A = s.internals();
      const B = b.engine.service(schedulerInternalsKey);
      // Four agents: two on each instance.
      const live = [];
      for (const [i, server] of [s.server, s.server, serverB, serverB].entries()) {
        live.push(await s.connect(await s.enroll(`cl-${i}`), { server }));
      }
      await s.h.t.engine.service(realtimeInternalsKey).registry.maintain();
      await b.engine.service(realtimeInternalsKey).registry.maintain();

      const guid = await s.script(
        "cluster",
        "bash",
        'echo "from $(hostname -s >/dev/null; echo agent)"\n',
        {
          timeout_seconds: 60,
        },
      );
      await s.h.t.engine.service(assembliesService).flush();
      await until(() => b.engine.service(assembliesService).get(guid) !== null);
      const filter = await s.json("/api/device_filters", {
        json: {
          name: "cluster",
          basic_criteria: [{ field: "hostname", operator: "begins_with", value: "cl-" }],
        },
      });
      const job = await s.json("/api/scheduled_jobs", {
        json: {
          name: "cluster job",
          components: [{ assembly_guid: guid }],
          targets: [{ kind: "filter", filter_id: filter.body.id }],
          schedule: { type: "once", start: s.h.t.clock.now() / 1000 },
        },
      });
      assert.equal(job.status, 201);
      // Both instances tick and pump at once; the occurrence and every run are taken once.
      await Promise.all([A.runs.tick(), B.runs.tick()]);
      await Promise.all([A.runs.pump(), B.runs.pump(), A.runs.pump(), B.runs.pump()]);
      await Promise.all([A.runs.idle(), B.runs.idle()]);
      const devices = async () =>
        (await s.json(`/api/scheduled_jobs/${job.body.id}/devices`)).body.devices;
      await until(async () =>
        (await devices()).every((d: { status: string }) => d.status === "Success")
      );
      const rows = await devices();
      assert.equal(rows.length, 4);
      assert.ok(
        rows.every((r: { dispatch_count: number }) => r.dispatch_count === 1),
        JSON.stringify(rows),
      );
      for (const l of live) assert.equal(l.runner.executed.length, 1);
      assert.equal(A.runs.stats.dispatched + B.runs.stats.dispatched, 4);
      const occs = (await s.json(`/api/scheduled_jobs/${job.body.id}/runs`)).body.occurrences;
      assert.equal(occs.length, 1);

      // Instance B takes a second job's runs and its agents start them (the script waits
      // for a gate file); then B dies before any result arrives.
      const gateDir = await Deno.makeTempDir({ prefix: "borealis-gate-" });
      const gated = await s.script("gated", "bash", gatedScript("gated"), gateMeta);
      await s.h.t.engine.service(assembliesService).flush();
      await until(() => b.engine.service(assembliesService).get(gated) !== null);
      const job2 = await s.json("/api/scheduled_jobs", {
        json: {
          name: "survives",
          components: [{ assembly_guid: gated, variable_values: { GATE: `${gateDir}/open` } }],
          targets: ["cl-2", "cl-3"],
          schedule: { type: "once", start: s.h.t.clock.now() / 1000 },
        },
      });
      assert.equal(job2.status, 201);
      const devices2 = async () =>
        (await s.json(`/api/scheduled_jobs/${job2.body.id}/devices`)).body.devices;
      const onB = live.slice(2);
      await B.runs.tick();
      await B.runs.pump();
      for (const l of onB) await until(() => l.runner.executed.length === 2);
      const leased = await devices2();
      assert.ok(leased.every((r: { status: string }) => r.status === "Running"));
      await b.stop(); // "killed": it does not hand its leases over
      bStopped = true;
      for (const l of onB) l.socket.stop();

      // The same agents (same runners, scripts still running) come back through instance A;
      // before the lease runs out A leaves the runs alone.
      for (const l of onB) await s.connect(l.agent, { runner: l.runner });
      await s.h.t.engine.service(realtimeInternalsKey).registry.maintain();
      await A.runs.pump();
      assert.equal(A.runs.stats.reclaimed, 0);
      // After the lease (60 s) A reclaims: it asks each agent instead of re-sending the
      // script, and they answer "still running".
      await s.h.t.clock.advance(61_000);
      await s.h.t.engine.tasks.idle();
      await A.runs.pump();
      await A.runs.idle();
      for (const l of onB) await until(() => l.runner.queries.length >= 1);
      const sql = s.h.t.engine.sql;
      // The "running" answer clears the outstanding query, so A renews the lease again.
      await until(async () =>
        (await sql`select 1 from scheduled_job_runs
          where job_id = ${job2.body.id} and status_query_at is null`).length === 2
      );
      await Deno.writeTextFile(`${gateDir}/open`, "");
      await until(async () =>
        (await devices2()).every((r: { status: string }) => r.status === "Success")
      );
      await Deno.remove(gateDir, { recursive: true });
      assert.equal(A.runs.stats.reclaimed, 2);
      assert.equal(A.runs.stats.statusQueries, 2);
      assert.equal(A.runs.stats.redelivered, 0);
      for (const l of onB) {
        // one script frame per job reached the agent: none was sent again
        assert.equal(l.runner.received.length, 2);
        assert.equal(new Set(l.runner.received).size, 2);
        assert.equal(l.runner.duplicates, 0);
        assert.equal(l.runner.executed.length, 2);
        assert.deepEqual(l.runner.queries.map((q) => q.answer), ["running"]);
      }
      const final = await devices2();
      assert.ok(
        final.every((r: Json) =>
          r.dispatch_count === 1 && r.status_query_count === 1 && r.stdout === "gated\n"
        ),
        JSON.stringify(final),
      );
      // The result is stored once: one activity per target.
      const acts = await sql`select count(*)::int as n from activity_history
        where requested_by = ${`scheduled_job:${job2.body.id}`}`;
      assert.equal(acts[0]!.n, 2);
      aStopped = false;
    } finally {
      if (!bStopped) await b.stop();
      if (!aStopped) await s.close();
    }
  },
});

Deno.test({
  name:
    "scheduler cluster: an engine process killed with SIGKILL mid-run; its leases expire and the other instance finishes the runs",
  ignore: !serverUrl,
  async fn() {
    // Instance A in this process on a manual clock near real time; instance B a real process.
    const s = await startScheduler({ clock: new ManualClock(Date.now()) });
    let child: Deno.ChildProcess | undefined;
    try {
      const A = s.internals();
      const gateDir = await Deno.makeTempDir({ prefix: "borealis-gate-" });
      const guid = await s.script("after kill", "bash", gatedScript("survived"), gateMeta);
      await s.h.t.engine.service(assembliesService).flush();
      const agents = [await s.enroll("kill-1"), await s.enroll("kill-2")];
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../plugins/scheduler/testing/engine_process.ts", import.meta.url).pathname,
        ],
        env: {
          ...s.h.t.db.env,
          BOREALIS_PORT: "0",
          BOREALIS_SCHEDULER_DISPATCH_SECONDS: "1",
          BOREALIS_SCHEDULER_TICK_SECONDS: "3600",
        },
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!/READY \d+/.test(out)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`engine process exited: ${out}`);
        out += value;
      }
      const serverB = `http://127.0.0.1:${/READY (\d+)/.exec(out)![1]}`;
      // The agents hold their sockets on B, which gets the runs and sends them; the agents
      // start the script (it waits for a gate) and B is killed before it finishes.
      const onB = [];
      for (const a of agents) onB.push(await s.connect(a, { server: serverB }));
      const job = await s.json("/api/scheduled_jobs", {
        json: {
          name: "outlives B",
          components: [{ assembly_guid: guid, variable_values: { GATE: `${gateDir}/open` } }],
          targets: ["kill-1", "kill-2"],
          schedule: { type: "once", start: s.h.t.clock.now() / 1000 },
        },
      });
      assert.equal(job.status, 201);
      await A.runs.tick(); // A does not see B's sockets (no registry refresh), so B dispatches
      for (const l of onB) await until(() => l.runner.executed.length === 1, 20_000);
      const sql = s.h.t.engine.sql;
      const leased = await sql<{ lease_owner: string; status: string }[]>`
        select lease_owner, status from scheduled_job_runs where job_id = ${job.body.id}`;
      assert.equal(leased.length, 2);
      assert.ok(
        leased.every((r) => r.status === "Running" && r.lease_owner !== s.h.t.engine.instanceId),
      );
      child.kill("SIGKILL");
      await child.status;
      child = undefined;
      for (const l of onB) l.socket.stop();
      // The scripts finish while the agents are disconnected: their results are lost.
      await Deno.writeTextFile(`${gateDir}/open`, "");
      const activities = onB.map((l) => l.runner.received[0]!);
      for (const [i, l] of onB.entries()) {
        await until(() => l.runner.outcome(activities[i]!) !== undefined);
      }
      await Deno.remove(gateDir, { recursive: true });

      // The same agents reconnect to A. Until B's lease runs out, A leaves the runs alone.
      const runners = onB.map((l) => l.runner);
      for (const [i, a] of agents.entries()) await s.connect(a, { runner: runners[i] });
      await A.runs.pump();
      assert.equal(A.runs.stats.reclaimed, 0);
      // B renewed its leases on its own (real) clock up to the kill; move A past them.
      await s.h.t.clock.set(Date.now() + 61_000);
      await A.runs.pump();
      const devices = async () =>
        (await s.json(`/api/scheduled_jobs/${job.body.id}/devices`)).body.devices;
      await until(async () =>
        (await devices()).every((r: { status: string }) => r.status === "Success")
      );
      assert.equal(A.runs.stats.reclaimed, 2);
      assert.equal(A.runs.stats.dispatched, 0); // A sent status queries, no script
      for (const r of runners) {
        // The script frame reached the agent once; A's query got the stored result back.
        assert.equal(r.received.length, 1);
        assert.equal(r.executed.length, 1);
        assert.deepEqual(r.queries.map((q) => q.answer), ["result"]);
      }
      const rows = await devices();
      assert.ok(
        rows.every((r: Json) =>
          r.dispatch_count === 1 && r.status_query_count === 1 && r.stdout === "survived\n"
        ),
        JSON.stringify(rows),
      );
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      await s.close();
    }
  },
});

Deno.test(
  "scheduler reclaim: a script lost with its instance is sent once the agent answers quick_job_unknown; an agent without status queries gets it again; answers are the agent's own",
  async () => {
    const s = await startScheduler();
    try {
      const A = s.internals();
      const sql = s.h.t.engine.sql;
      const guid = await s.script("lost", "bash", "echo delivered\n", { timeout_seconds: 60 });
      const agents = [await s.enroll("lost-1"), await s.enroll("lost-2")];
      // The agents are offline, so the occurrence's runs wait Pending.
      const job = await s.json("/api/scheduled_jobs", {
        json: {
          name: "lost dispatch",
          components: [{ assembly_guid: guid }],
          targets: ["lost-1", "lost-2"],
          schedule: { type: "once", start: s.h.t.clock.now() / 1000 },
        },
      });
      assert.equal(job.status, 201);
      await A.runs.tick();
      await A.runs.idle();
      const runs = await sql<
        { id: string; device_guid: string; hostname: string; site_id: number | null }[]
      >`select id, device_guid::text, hostname, site_id from scheduled_job_runs
        where job_id = ${job.body.id} order by hostname`;
      assert.equal(runs.length, 2);
      // Another instance claimed both runs and created their activities (counting the
      // script dispatch), then died before the frames left it.
      const prepared = await A.dispatcher.prepare(guid, {}, "system");
      const ids = await A.dispatcher.createActivities(
        prepared,
        runs.map((r) => ({ guid: r.device_guid, hostname: r.hostname, siteId: r.site_id })),
        {
          runMode: "system",
          requestedBy: `scheduled_job:${job.body.id}`,
          quickJobId: null,
          status: "Running",
        },
      );
      const now = s.h.t.clock.now();
      await sql`update scheduled_job_runs r set activity_id = u.a, status = 'Running',
          lease_owner = 'dead-instance', lease_expires_at = ${new Date(now + 60_000)},
          dispatch_count = 1, started_ts = ${new Date(now)}, updated_at = ${new Date(now)}
        from unnest(${runs.map((r) => Number(r.id))}::bigint[], ${ids}::bigint[]) as u(id, a)
        where r.id = u.id`;

      // lost-1 runs the reference runner; lost-2 is an agent that predates status queries.
      const live = await s.connect(agents[0]!);
      const old = await s.connect(agents[1]!, { run: false });
      await A.runs.pump();
      assert.equal(A.runs.stats.reclaimed, 0);
      await s.h.t.clock.advance(61_000);
      await s.h.t.engine.tasks.idle();
      await A.runs.pump();
      await A.runs.idle();
      assert.equal(A.runs.stats.reclaimed, 2);

      // An agent can only answer for its own runs: lost-1 claiming lost-2's query sends nothing.
      const q = await old.socket.waitFor((f) => f.type === "quick_job_status");
      assert.deepEqual((q.data as Json).job_id, String(ids[1]));
      const foreign = await ask(live.socket, "quick_job_unknown", { job_id: String(ids[1]) });
      assert.deepEqual(foreign.data, { status: "ignored" });
      // Answers are validated like every agent message.
      const bad = await ask(live.socket, "quick_job_unknown", { job_id: "" });
      assert.equal(bad.type, "error");
      assert.equal((bad.data as Json).code, "invalid_data");
      const extra = await ask(live.socket, "quick_job_unknown", { job_id: "1", x: 1 });
      assert.equal((extra.data as Json).code, "invalid_data");

      // lost-1 never saw its job: it answers quick_job_unknown and gets the script once.
      const devices = async () =>
        (await s.json(`/api/scheduled_jobs/${job.body.id}/devices`)).body.devices as Json[];
      await until(async () =>
        (await devices()).find((r) => r.hostname === "lost-1")?.status === "Success"
      );
      assert.deepEqual(live.runner.queries, [{ job_id: String(ids[0]), answer: "unknown" }]);
      assert.deepEqual(live.runner.received, [String(ids[0])]);
      assert.equal(live.runner.executed.length, 1);
      // A late second answer (to an earlier query) sends nothing more.
      const late = await ask(live.socket, "quick_job_unknown", { job_id: String(ids[0]) });
      assert.deepEqual(late.data, { status: "ignored" });

      // lost-2 does not answer within the lease: its lease is not renewed while the query is
      // outstanding, and the next reclaim asks again (no script).
      await A.runs.pump();
      await s.h.t.clock.advance(61_000);
      await s.h.t.engine.tasks.idle();
      await A.runs.pump();
      await A.runs.idle();
      await old.socket.waitFor((f) => f.type === "quick_job_status" && f.id === q.id && f !== q);
      assert.equal(old.socket.frames.filter((f) => f.type === "quick_job_status").length, 2);
      assert.equal(A.runs.stats.reclaimed, 3);

      // lost-2 does not know quick_job_status: it answers with an error frame echoing the
      // query's id, so the engine falls back to sending the script (such an agent dedups by
      // job id, as the protocol before status queries required). The error is not answered.
      assert.equal(old.socket.frames.filter((f) => f.type === "quick_job_run").length, 0);
      old.socket.send({
        type: "error",
        id: q.id,
        data: { code: "unknown_type", message: "unknown message type quick_job_status" },
      });
      const run = await old.socket.waitFor((f) => f.type === "quick_job_run");
      await old.runner.handle(run.data as Record<string, unknown>);
      await until(async () => (await devices()).every((r) => r.status === "Success"));
      // A second error for the same query is ignored too.
      old.socket.send({ type: "error", id: q.id, data: { code: "unknown_type" } });
      await ask(old.socket, "ping", {});
      assert.equal(old.socket.frames.filter((f) => f.type === "quick_job_run").length, 1);
      assert.equal(old.socket.frames.filter((f) => f.type === "error").length, 0);

      const rows = await devices();
      for (const r of rows) {
        // one frame lost with the dead instance, one delivered
        assert.equal(r.dispatch_count, 2, JSON.stringify(r));
        assert.equal(r.status_query_count, r.hostname === "lost-1" ? 1 : 2);
        assert.equal(r.stdout, "delivered\n");
      }
      assert.equal(A.runs.stats.redelivered, 2);
      const acts = await sql`select count(*)::int as n from activity_history
        where requested_by = ${`scheduled_job:${job.body.id}`}`;
      assert.equal(acts[0]!.n, 2);
    } finally {
      await s.close();
    }
  },
);

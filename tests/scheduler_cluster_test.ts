/**
 * Two engine instances on one PostgreSQL database share scheduled work: every run is
 * claimed by exactly one instance (no double dispatch), and when an instance dies
 * mid-run its leases expire and the other instance reclaims them — the agent, seeing a
 * job id it already knows, never runs a script twice.
 */
import assert from "node:assert/strict";
import { assembliesService } from "../plugins/assemblies/mod.ts";
import { realtimeInternalsKey } from "../plugins/realtime/mod.ts";
import { schedulerInternalsKey } from "../plugins/scheduler/mod.ts";
import { schedulerPlugins, startScheduler, until } from "../plugins/scheduler/testing/helpers.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";
import { ScriptRunner } from "./agent/runner.ts";
import { ManualClock } from "../core/clock.ts";

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

      // Instance B takes a second job's runs, the agents receive them, then B dies before
      // any result arrives (its agents were not running them yet).
      const job2 = await s.json("/api/scheduled_jobs", {
        json: {
          name: "survives",
          components: [{ assembly_guid: guid }],
          targets: ["cl-2", "cl-3"],
          schedule: { type: "once", start: s.h.t.clock.now() / 1000 },
        },
      });
      const devices2 = async () =>
        (await s.json(`/api/scheduled_jobs/${job2.body.id}/devices`)).body.devices;
      for (const l of live.slice(2)) l.socket.stop();
      const deaf = [];
      for (const l of live.slice(2)) {
        deaf.push(await s.connect(l.agent, { server: serverB, run: false }));
      }
      await b.engine.service(realtimeInternalsKey).registry.maintain();
      await s.h.t.engine.service(realtimeInternalsKey).registry.maintain();
      await B.runs.tick();
      await B.runs.pump();
      for (const d of deaf) await d.socket.waitFor((f) => f.type === "quick_job_run");
      const leased = await devices2();
      assert.ok(leased.every((r: { status: string }) => r.status === "Running"));
      for (const d of deaf) d.socket.stop();
      await b.stop(); // "killed": it does not hand its leases over
      bStopped = true;

      // The agents come back through instance A; before the lease runs out A leaves the runs alone.
      const runners = live.slice(2).map((l) =>
        new ScriptRunner({ signingKey: l.agent.state.signing_key! })
      );
      const back = [];
      for (const [i, l] of live.slice(2).entries()) {
        back.push(await s.connect(l.agent, { runner: runners[i] }));
      }
      await s.h.t.engine.service(realtimeInternalsKey).registry.maintain();
      await A.runs.pump();
      assert.equal(A.runs.stats.reclaimed, 0);
      // After the lease (60 s) A reclaims and re-sends the same job ids; each runs once.
      await s.h.t.clock.advance(61_000);
      await s.h.t.engine.tasks.idle();
      await A.runs.pump();
      await A.runs.idle();
      await until(async () =>
        (await devices2()).every((r: { status: string }) => r.status === "Success")
      );
      assert.ok(A.runs.stats.reclaimed >= 2);
      for (const r of runners) assert.equal(r.executed.length, 1);
      const final = await devices2();
      assert.ok(final.every((r: { dispatch_count: number }) => r.dispatch_count === 2));
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
      const guid = await s.script("after kill", "bash", "echo survived\n", { timeout_seconds: 60 });
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
      // have not run them yet when B is killed.
      const deaf = [];
      for (const a of agents) deaf.push(await s.connect(a, { server: serverB, run: false }));
      const job = await s.json("/api/scheduled_jobs", {
        json: {
          name: "outlives B",
          components: [{ assembly_guid: guid }],
          targets: ["kill-1", "kill-2"],
          schedule: { type: "once", start: s.h.t.clock.now() / 1000 },
        },
      });
      assert.equal(job.status, 201);
      await A.runs.tick(); // A does not see B's sockets (no registry refresh), so B dispatches
      for (const d of deaf) await d.socket.waitFor((f) => f.type === "quick_job_run", 20_000);
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
      for (const d of deaf) d.socket.stop();

      // The agents reconnect to A. Until B's lease runs out, A leaves the runs alone.
      const runners = agents.map((a) => new ScriptRunner({ signingKey: a.state.signing_key! }));
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
      for (const r of runners) assert.deepEqual(r.executed.length, 1);
      const rows = await devices();
      assert.ok(
        rows.every((r: { dispatch_count: number; stdout: string }) =>
          r.dispatch_count === 2 && r.stdout === "survived\n"
        ),
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

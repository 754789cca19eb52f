/**
 * The reference agent as a real process (`tests/agent/cli.ts --connect`) against an engine
 * on a real port: it enrolls through the site's auto-approval window, opens the agent
 * WebSocket, runs a quick run's bash script (variables, stdout, exit codes) and a
 * scheduled job, heartbeats, refreshes and reconnects on close code 4001, stops cleanly
 * on SIGTERM, enrolls again when its refresh family is gone, and exits when its device is
 * revoked.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../core/clock.ts";
import { Agent } from "./agent/agent.ts";
import { type Json, startScheduler, until } from "../plugins/scheduler/testing/helpers.ts";
import { type AgentEvent, type AgentProcess, spawnAgent } from "./agent/process.ts";

const HOST = "proc-agent";

Deno.test({
  name: "scheduler: a real agent process runs quick runs and scheduled jobs over its socket",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // The agent process signs DPoP proofs with the real time: the engine's manual clock
    // starts there and is only moved to run the liveness flush and to expire a token (the
    // skew setting leaves room for that lead).
    const s = await startScheduler({
      clock: new ManualClock(Date.now()),
      env: {
        BOREALIS_AGENT_HEARTBEAT_SECONDS: "5",
        BOREALIS_LIVENESS_FLUSH_SECONDS: "1",
        BOREALIS_ACCESS_TOKEN_TTL_SECONDS: "300",
        BOREALIS_DPOP_MAX_SKEW_SECONDS: "900",
      },
    });
    const state = await Deno.makeTempDir({ prefix: "borealis-agent-" });
    // The agent's own temporary folder, to see that it cleans up after its scripts.
    const tmp = await Deno.makeTempDir({ prefix: "borealis-agent-tmp-" });
    const procs: AgentProcess[] = [];
    const start = (args: string[] = []) => {
      const p = spawnAgent(["--server", s.server, "--state", state, "--connect", ...args], {
        env: { TMPDIR: tmp },
      });
      procs.push(p);
      return p;
    };
    try {
      const clock = s.h.t.clock;
      const win = await s.json(`/api/sites/${s.h.site.id}/auto-approval`, {
        json: { minutes: 60 },
      });
      assert.equal(win.status, 200, JSON.stringify(win.body));
      const agent = start(["--code", s.h.site.enrollment_code, "--hostname", HOST]);
      const enrolled = await agent.waitFor((e) => e.event === "enrolled");
      const guid = String(enrolled.guid).toUpperCase();
      await agent.waitFor((e) => e.event === "connected");
      const enrollmentRefresh = JSON.parse(
        await Deno.readTextFile(join(state, "state.json")),
      ).refresh_token;
      // Online: the engine lists its socket, described by connect_agent.
      let lastAgents: Json = null;
      await until(async () => {
        lastAgents = (await s.json("/api/agents")).body;
        return lastAgents.agents.some((a: Json) => a.guid === guid && a.agent_id !== null);
      }, 30_000).catch((err) => {
        // Seen once in ~20 full runs under CI load: say what the engine and the agent saw.
        throw new Error(
          `${err.message}: /api/agents ${JSON.stringify(lastAgents)}; agent events ${
            JSON.stringify(agent.events)
          }`,
        );
      });
      const listed = (await s.json("/api/agents")).body.agents.find((a: Json) => a.guid === guid);
      assert.equal(listed.agent_id, `${HOST}_${guid}_SYSTEM`);
      assert.equal(listed.service_mode, "system");

      const finished = async (activityId: number) => {
        let row: Json;
        await until(async () => {
          row = (await s.json(`/api/device/activity/job/${activityId}`)).body;
          return !["Pending", "Running"].includes(row.status);
        }, 30_000);
        return row;
      };
      const quickRun = async (assembly: string, variables: Record<string, unknown> = {}) => {
        const run = await s.json("/api/scripts/quick_run", {
          json: { assembly_guid: assembly, hostnames: [HOST], variable_values: variables },
        });
        assert.equal(run.status, 200, JSON.stringify(run.body));
        return Number(run.body.results[0].activity_id);
      };

      // A quick run with a variable: Success with the script's output.
      const greet = await s.script(
        "greet",
        "bash",
        'echo "hello $WHO"\necho "to stderr" >&2\n',
        {
          variables: [{ name: "who", type: "string", required: true }],
          timeout_seconds: 30,
        },
      );
      const okId = await quickRun(greet, { who: "it's $(whoami)" });
      const ok = await finished(okId);
      assert.equal(ok.status, "Success", JSON.stringify(ok));
      assert.equal(ok.stdout, "hello it's $(whoami)\n");
      assert.equal(ok.stderr, "to stderr\n");
      assert.equal(ok.exit_code, 0);
      const okEvent = await agent.waitFor((e) =>
        e.event === "job_finished" && e.job_id === String(okId)
      );
      assert.deepEqual(okEvent, {
        event: "job_finished",
        job_id: String(okId),
        status: "Success",
        exit_code: 0,
      });
      assert.ok(agent.events.some((e) => e.event === "job_started" && e.job_id === String(okId)));

      // A script that exits 3: Failed with exit code 3, its output kept.
      const three = await s.script("three", "bash", "echo before\nexit 3\n", {
        timeout_seconds: 30,
      });
      const failId = await quickRun(three);
      const failed = await finished(failId);
      assert.equal(failed.status, "Failed", JSON.stringify(failed));
      assert.equal(failed.exit_code, 3);
      assert.equal(failed.stdout, "before\n");
      await agent.waitFor((e) =>
        e.event === "job_finished" && e.job_id === String(failId) && e.exit_code === 3
      );

      // A scheduled job (immediately) targeting the device: the run result is stored.
      const job = await s.json("/api/scheduled_jobs", {
        json: {
          name: "process agent job",
          components: [{ type: "script", assembly_guid: greet, variable_values: { who: "job" } }],
          targets: [HOST],
          schedule: { type: "immediately" },
        },
      });
      assert.equal(job.status, 201, JSON.stringify(job.body));
      let device: Json;
      await until(async () => {
        const d = (await s.json(`/api/scheduled_jobs/${job.body.id}/devices`)).body;
        device = d.devices?.[0];
        return device !== undefined && !["Pending", "Dispatching", "Running"].includes(
          device.status,
        );
      }, 30_000);
      assert.equal(device.hostname, HOST);
      assert.equal(device.status, "Success", JSON.stringify(device));
      assert.equal(device.stdout, "hello job\n");

      // Heartbeats on the announced interval (5 s here) reach the device's summary once
      // the liveness flush runs (a task on the engine's clock).
      await until(async () => {
        await clock.advance(1000);
        await s.h.t.engine.tasks.idle();
        const d = (await s.json(`/api/devices/${guid}`)).body;
        return d.summary.operating_system === `${Deno.build.os} ${Deno.build.arch}`;
      }, 30_000);

      // The access token expires on the engine's clock: close 4001, refresh, reconnect at
      // once, and the new socket runs jobs.
      const before = agent.events.length;
      await clock.advance(301_000);
      await s.h.t.engine.tasks.idle();
      const closed = await agent.waitFor((e) => e.event === "disconnected", { from: before });
      assert.equal(closed.code, 4001);
      await agent.waitFor((e) => e.event === "connected", { from: before });
      const againId = await quickRun(greet, { who: "again" });
      const again = await finished(againId);
      assert.equal(again.status, "Success", JSON.stringify(again));
      assert.equal(again.stdout, "hello again\n");

      // The script's timeout kills what the script started too (a background sleep would
      // otherwise hold its output open): Failed, output so far kept.
      const slow = await s.script("slow", "bash", "echo started\nsleep 600 &\nwait\n", {
        timeout_seconds: 1,
      });
      const slowRow = await finished(await quickRun(slow));
      assert.equal(slowRow.status, "Failed", JSON.stringify(slowRow));
      assert.equal(slowRow.stdout, "started\n");
      assert.match(slowRow.stderr, /killed after the 1 s timeout/);
      assert.equal(slowRow.exit_code, null);

      // SIGTERM while a script runs: the script is killed, the agent stops cleanly (its
      // temporary job folder removed) and the engine is left to time the job out.
      const hang = await s.script("hang", "bash", "echo started\nsleep 600\n", {
        timeout_seconds: 900,
      });
      const hangId = await quickRun(hang);
      await agent.waitFor((e) => e.event === "job_started" && e.job_id === String(hangId));
      await until(async () =>
        (await s.json(`/api/device/activity/job/${hangId}`)).body.status === "Running"
      );
      agent.kill("SIGTERM");
      const stopped = await agent.done;
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal(stopped.events.at(-1)!.event, "stopped");
      assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), []);

      // The refresh family is gone (the enrollment's refresh token, rotated at the 4001,
      // is presented again: reuse revokes the family). Started again from its state folder
      // with its access token dropped, the agent's refresh fails, so it enrolls again with
      // the same key (the auto-approval window admits it into the same GUID) and connects.
      const replayer = await Agent.open({ server: s.server, stateDir: state });
      assert.notEqual(replayer.state.refresh_token, enrollmentRefresh);
      replayer.state.refresh_token = enrollmentRefresh;
      await assert.rejects(replayer.refresh(), /401 refresh_token_reused/);
      const saved = JSON.parse(await Deno.readTextFile(join(state, "state.json")));
      assert.equal(saved.guid.toUpperCase(), guid);
      delete saved.access_token;
      await Deno.writeTextFile(join(state, "state.json"), JSON.stringify(saved));
      const second = start(["--code", s.h.site.enrollment_code]);
      const reenrolling = await second.waitFor((e) => e.event === "reenrolling");
      assert.equal(reenrolling.reason, "refresh_token_revoked");
      const reenrolled = await second.waitFor((e) => e.event === "enrolled");
      assert.equal(String(reenrolled.guid).toUpperCase(), guid);
      await second.waitFor((e) => e.event === "connected");

      // Revoked by an operator: the engine closes the socket (4003), refuses the upgrade
      // (403) and the agent exits.
      const revoke = await s.json(`/api/devices/${guid}/revoke`, { method: "POST" });
      assert.equal(revoke.status, 200, JSON.stringify(revoke.body));
      const gone = await second.done;
      assert.equal(gone.code, 1, gone.stderr + JSON.stringify(gone.events));
      const tail = gone.events.map((e: AgentEvent) => e.event).slice(-2);
      assert.deepEqual(tail, ["disconnected", "revoked"]);
      assert.equal(gone.events.at(-2)!.code, 4003);
    } finally {
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(procs.map((p) => p.done.catch(() => {})));
      await s.close();
      await Deno.remove(state, { recursive: true }).catch(() => {});
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

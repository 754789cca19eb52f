/**
 * Several engine processes on one port: `BOREALIS_WORKERS=2 deno task start` as a real
 * process tree on a PostgreSQL server. An agent holds its socket on one worker and
 * receives quick runs queued through the other (new connections land on either worker,
 * so runs are queued until the other worker's metrics show one it routed); a worker
 * killed outright is started again; SIGTERM stops them all. On the embedded database
 * the engine refuses to start more than one process and says why.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../core/clock.ts";
import { WORKER_READY } from "../core/workers.ts";
import { type Json, startScheduler, until } from "../plugins/scheduler/testing/helpers.ts";
import { Agent } from "./agent/agent.ts";
import { createOperator } from "./helpers/operators.ts";
import { serverUrl } from "./helpers/test_db.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function sum(m: Map<string, number>, name: string, having: string[] = []): number {
  let total = 0;
  for (const [k, v] of m) {
    const base = k.includes("{") ? k.slice(0, k.indexOf("{")) : k;
    if (base === name && having.every((h) => k.includes(h))) total += v;
  }
  return total;
}

async function scrape(port: number): Promise<Map<string, number> | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    return parse(await res.text());
  } catch {
    return null; // the worker is down (restarting)
  }
}

/** Reads a child's stream line by line into `lines`, forever. */
function collect(stream: ReadableStream<Uint8Array>, lines: string[]): void {
  (async () => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
  })().catch(() => {});
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name:
    "workers: two engine processes share one port; a job queued through one reaches an agent held by the other; a killed worker comes back; SIGHUP rolls them; SIGTERM stops all",
  ignore: !serverUrl,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Set-up through an engine in this process (the database, the vault key file in the
    // shared data dir, an operator, a script, an auto-approval window), stopped before
    // the workers start: they are the only instances serving.
    const s = await startScheduler({ clock: new ManualClock(Date.now()) });
    const db = s.h.t.db;
    const admin = await createOperator(s.h.t, { role: "Admin" });
    const script = await s.script("hello", "bash", 'echo "hello from $(hostname)"\n', {
      timeout_seconds: 30,
    });
    const win = await s.json(`/api/sites/${s.h.site.id}/auto-approval`, {
      json: { minutes: 60 },
    });
    assert.equal(win.status, 200);
    await s.h.t.stop();

    const metricsBase = freePort();
    const out: string[] = [];
    const err: string[] = [];
    const supervisor = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "start"],
      env: {
        ...db.env,
        BOREALIS_WORKERS: "2",
        BOREALIS_PORT: "0",
        BOREALIS_METRICS_PORT: String(metricsBase),
        BOREALIS_SHUTDOWN_GRACE_MS: "3000",
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    collect(supervisor.stdout, out);
    collect(supervisor.stderr, err);
    let live: Awaited<ReturnType<typeof s.connect>> | undefined;
    try {
      await until(() => out.some((l) => l.startsWith(WORKER_READY)), 90_000);
      const port = Number(out.find((l) => l.startsWith(WORKER_READY))!.split(" ")[1]);
      const server = `http://127.0.0.1:${port}`;
      const metricsPorts = [metricsBase, metricsBase + 1];

      const agent = await Agent.open({
        server,
        hostname: "worker-agent",
        sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 200))),
      });
      await agent.enroll(s.h.site.enrollment_code, { timeoutMs: 30_000 });
      live = await s.connect(agent, { server });

      // Which worker holds the socket, and which does not.
      let holder = -1;
      await until(async () => {
        for (const [i, p] of metricsPorts.entries()) {
          const m = await scrape(p);
          if (m && sum(m, "borealis_agents_connected") === 1) holder = i;
        }
        return holder >= 0;
      }, 15_000);
      const other = 1 - holder;

      // Queue quick runs, each on a new connection (spread over both workers), until the
      // other worker has routed one to the holder; every run must reach the agent.
      const runOnce = async () => {
        const client = Deno.createHttpClient({});
        try {
          const res = await fetch(`${server}/api/scripts/quick_run`, {
            method: "POST",
            client,
            headers: { ...admin.headers, "content-type": "application/json" },
            body: JSON.stringify({ assembly_guid: script, hostnames: ["worker-agent"] }),
          });
          const body = await res.json() as Json;
          assert.equal(res.status, 200, JSON.stringify(body));
          return Number(body.results[0].activity_id);
        } finally {
          client.close();
        }
      };
      const activity = async (id: number): Promise<Json> => {
        const res = await fetch(`${server}/api/device/activity/job/${id}`, {
          headers: admin.headers,
        });
        return await res.json();
      };
      let routed = 0;
      for (let attempt = 0; attempt < 30 && routed === 0; attempt++) {
        const id = await runOnce();
        let row: Json = null;
        await until(async () => (row = await activity(id)).status === "Success", 30_000);
        assert.match(String(row.stdout), /hello from/);
        const m = await scrape(metricsPorts[other]!);
        routed = m ? sum(m, "borealis_job_dispatch_seconds_count", ['outcome="routed"']) : 0;
      }
      assert.ok(routed >= 1, "a run queued through the other worker was routed to the agent");

      // A worker killed outright is started again and serves (its metrics port answers).
      const pidOf = (i: number) => {
        const line = err.findLast((l) => l.includes(`worker ${i} started (pid `));
        return Number(/pid (\d+)/.exec(line ?? "")?.[1]);
      };
      const victim = pidOf(other);
      assert.ok(victim > 0);
      Deno.kill(victim, "SIGKILL");
      await until(() => pidOf(other) !== victim, 30_000);
      await until(
        () => err.some((l) => l.includes(`worker ${other} (pid ${pidOf(other)}) is serving`)),
        60_000,
      );
      const back = await scrape(metricsPorts[other]!);
      assert.ok(back && sum(back, "borealis_agents_connected") === 0);
      // The agent on the surviving worker was never disturbed.
      assert.equal((await live.socket.request("ping")).type, "pong");

      // SIGHUP: a rolling restart, each replacement serving before its predecessor stops.
      const before = [pidOf(0), pidOf(1)];
      supervisor.kill("SIGHUP");
      await until(() => err.some((l) => l.includes("rolling restart done")), 120_000);
      const after = [pidOf(0), pidOf(1)];
      assert.ok(after.every((p, i) => p > 0 && p !== before[i]), `${before} → ${after}`);
      for (const p of metricsPorts) assert.ok(await scrape(p), "every worker serves again");

      // SIGTERM: every worker drains and the supervisor exits 0.
      supervisor.kill("SIGTERM");
      const status = await supervisor.status;
      assert.equal(status.code, 0, err.slice(-20).join("\n"));
      assert.ok(err.some((l) => l.includes("all workers stopped")));
      for (const p of metricsPorts) assert.equal(await scrape(p), null, "no worker left");
    } finally {
      live?.socket.stop();
      try {
        supervisor.kill("SIGKILL");
      } catch { /* exited */ }
      await supervisor.status;
      await db.drop();
    }
  },
});

Deno.test("workers: the embedded database refuses more than one process, saying why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "borealis-workers-" });
  try {
    const env = { ...Deno.env.toObject(), BOREALIS_DATA_DIR: dir, BOREALIS_WORKERS: "2" };
    delete (env as Record<string, string | undefined>).BOREALIS_DATABASE_URL;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "start"],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 2);
    const text = new TextDecoder().decode(r.stderr);
    assert.match(text, /BOREALIS_WORKERS=2 needs BOREALIS_DATABASE_URL/);
    assert.match(text, /embedded database .* cannot be shared/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

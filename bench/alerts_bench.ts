/**
 * Alerts benchmark, two figures each next to a baseline measured in the same run:
 *
 * 1. A storm: 1,000 incidents open in one evaluation → time until every webhook message
 *    (signed, one per incident) has reached a local receiver. Baseline: the same 1,000
 *    JSON POSTs sent straight to the same receiver with the same parallelism (the floor
 *    of any delivery path on this machine).
 * 2. The evaluator's tick while alerts are delivered: full evaluations that open or
 *    resolve 1,000 incidents, with the delivery worker running against a healthy
 *    receiver, then against a dead one (every request hangs until the timeout), and with
 *    no channel at all.
 *
 *   deno run -A bench/alerts_bench.ts [--incidents 1000] [--rounds 4]
 *
 * Set BOREALIS_TEST_DATABASE_URL to run against a PostgreSQL server instead of PGlite.
 * Devices are inserted with SQL; incidents come from the real evaluator; messages go over
 * real loopback HTTP.
 *
 * @module
 */
import http from "node:http";
import { parseArgs } from "node:util";
import { alertsKey } from "../plugins/alerts/mod.ts";
import { alertPlugins } from "../plugins/alerts/testing/harness.ts";
import { startWebhookReceiver } from "../plugins/alerts/testing/receivers.ts";
import { PER_CHANNEL_IN_FLIGHT } from "../plugins/alerts/worker.ts";
import { watchdogsKey } from "../plugins/watchdogs/mod.ts";
import { createOperator } from "../tests/helpers/operators.ts";
import { startTestEngine } from "../tests/helpers/test_engine.ts";

const { values } = parseArgs({
  options: {
    incidents: { type: "string", default: "1000" },
    rounds: { type: "string", default: "4" },
  },
});
const N = Number(values.incidents);
const ROUNDS = Number(values.rounds);
const TIMEOUT_MS = 2000;

const ms = (x: number) => `${x.toFixed(0)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** POSTs `n` bodies to `url` with `parallel` requests in flight (the baseline). */
async function rawPosts(url: string, n: number, parallel: number, body: string): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  const u = new URL(url);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({
        hostname: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        agent,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
      }, (res) => {
        res.resume();
        res.on("end", () => resolve());
      });
      req.on("error", reject);
      req.end(body);
    });
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) {
      next++;
      await one();
    }
  }));
  const took = performance.now() - start;
  agent.destroy();
  return took;
}

/** The receiver fixture as a child process. */
async function startReceiverProcess() {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./fixtures/webhook_receiver.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!/READY \d+/.test(buf)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("receiver process ended");
    buf += value;
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  const url = `http://127.0.0.1:${/READY (\d+)/.exec(buf)![1]}`;
  return {
    url,
    async setSecret(secret: string) {
      await (await fetch(`${url}/__secret`, { method: "POST", body: secret })).body?.cancel();
    },
    async stats(): Promise<{ count: number; verified: number; distinct: number }> {
      return await (await fetch(`${url}/__stats`)).json();
    },
    async close() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function main() {
  const t = await startTestEngine({
    plugins: alertPlugins,
    env: {
      BOREALIS_ASSEMBLIES_CATALOG_DIR: await Deno.makeTempDir(),
      BOREALIS_LOG_LEVEL: "WARN",
      BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS: "true",
      BOREALIS_ALERTS_TIMEOUT_MS: String(TIMEOUT_MS),
      // The benchmark drives the worker itself.
      BOREALIS_ALERTS_WORKER_MS: "60000",
      BOREALIS_WATCHDOGS_LOOP_SECONDS: "3600",
      BOREALIS_SCHEDULER_TICK_SECONDS: "3600",
    },
  });
  const receiver = await startReceiverProcess();
  const dead = startWebhookReceiver();
  dead.mode = { kind: "hang" };
  try {
    const sql = t.engine.sql;
    const alerts = t.engine.service(alertsKey);
    const watchdogs = t.engine.service(watchdogsKey).service;
    const now = new Date(t.clock.now());
    const [site] = await sql<{ id: number }[]>`
      insert into sites (name, created_at, updated_at, enrollment_code_hash, enrollment_code_rotated_at)
      values ('bench', ${now}, ${now}, ${"0".repeat(64)}, ${now}) returning id`;
    await sql`
      insert into devices (guid, hostname, site_id, created_at, last_seen, cpu_percent)
      select gen_random_uuid(), 'storm-' || i, ${
      site!.id
    }, ${now}::timestamptz - interval '30 days',
        ${now}, 10
      from generate_series(1, ${N}) as i`;
    const admin = await createOperator(t, { role: "Admin" });
    const api = async (path: string, json: unknown, method = "POST") => {
      const res = await t.request(path, { method, json, headers: admin.headers });
      if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return res.status === 204 ? null : await res.json();
    };
    const policy = await api("/api/watchdogs", {
      name: "storm",
      criteria: { rules: [{ type: "cpu_percent", threshold: 90 }] },
      auto_resolve_after_seconds: 0,
      cooldown_seconds: 0,
    });
    const channel = async (name: string, url: string) => {
      const c = await api("/api/alerts/channels", {
        kind: "webhook",
        name,
        url,
        rate_per_minute: 10_000,
      });
      return c as { channel: { id: string }; signing_secret: string };
    };
    const healthy = await channel("healthy", `${receiver.url}/hook`);
    await receiver.setSecret(healthy.signing_secret);
    const route = await api("/api/alerts/routes", {
      name: "storm",
      watchdog_id: policy.id,
      channel_ids: [healthy.channel.id],
    });

    // ---- 1. the storm
    // Let realtime's sweeps settle first (they mark devices for evaluation; with the old
    // values nothing changes), then raise every device at once and evaluate.
    await t.clock.advance(60_000);
    await t.engine.tasks.idle();
    await sql`update devices set cpu_percent = 99, last_seen = ${new Date(t.clock.now())}`;
    const start = performance.now();
    const opened = await watchdogs.runAll();
    const evaluated = performance.now() - start;
    if (opened.opened !== N) throw new Error(`expected ${N} openings, got ${opened.opened}`);
    // The worker as it runs in production: a cycle per second (BOREALIS_ALERTS_WORKER_MS
    // default); between cycles the per-channel pump keeps sending on its own.
    let got = await receiver.stats();
    while (got.count < N) {
      await alerts.cycle();
      const until = performance.now() + 1000;
      while ((got = await receiver.stats()).count < N && performance.now() < until) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const storm = performance.now() - start;
    await alerts.drain();
    // The baseline posts a body like the real ones: the first message's event, versioned.
    const [first] = await sql<{ payload_json: Record<string, unknown> }[]>`
      select payload_json from alert_events order by id limit 1`;
    const sample = JSON.stringify({
      version: 1,
      delivery_id: crypto.randomUUID(),
      sent_at: new Date().toISOString(),
      ...first!.payload_json,
    });
    const raw = await rawPosts(`${receiver.url}/raw`, N, PER_CHANNEL_IN_FLIGHT, sample);
    console.log(
      `alerts storm: ${N} incidents opened → every webhook message delivered in ${ms(storm)} ` +
        `(evaluation ${ms(evaluated)}, delivery ${
          ms(storm - evaluated)
        }; ${got.verified} signatures ` +
        `verified, ${got.distinct} distinct deliveries) — baseline: ${N} raw POSTs of the same body ` +
        `to the same receiver, ${PER_CHANNEL_IN_FLIGHT} in flight: ${ms(raw)} ` +
        `(delivery ${((storm - evaluated) / raw).toFixed(1)}× the raw floor)`,
    );

    // ---- 2. the evaluator's tick while the worker delivers
    let level = 99;
    const tick = async (): Promise<number> => {
      level = level === 99 ? 10 : 99;
      await t.clock.advance(60_000);
      await t.engine.tasks.idle();
      await sql`update devices set cpu_percent = ${level}, last_seen = ${new Date(t.clock.now())}`;
      const s = await watchdogs.runAll();
      if (s.opened + s.resolved !== N) {
        throw new Error(`expected ${N} changes, got ${s.opened} + ${s.resolved}`);
      }
      return s.ms;
    };
    const phase = async (label: string) => {
      let running = true;
      const loop = (async () => {
        while (running) {
          await alerts.cycle();
          for (let i = 0; i < 100 && running; i++) await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const ticks: number[] = [];
      for (let i = 0; i < ROUNDS; i++) ticks.push(await tick());
      running = false;
      await loop;
      return { label, median: median(ticks), max: Math.max(...ticks) };
    };
    const results = [];
    // No channel routed: the outbox is written, nothing is sent.
    await api(`/api/alerts/routes/${route.id}`, {}, "DELETE");
    results.push(await phase("no channel"));
    await api("/api/alerts/routes", {
      name: "healthy",
      watchdog_id: policy.id,
      channel_ids: [healthy.channel.id],
    });
    results.push(await phase("healthy receiver"));
    await sql`delete from alert_routes`;
    const deadChannel = await channel("dead", `${dead.url}/hook`);
    await api("/api/alerts/routes", {
      name: "dead",
      watchdog_id: policy.id,
      channel_ids: [deadChannel.channel.id],
    });
    const deadPhase = await phase("dead receiver (every request hangs)");
    results.push(deadPhase);
    const hung = dead.hanging;
    dead.release();
    await alerts.drain();
    const base = results[0]!.median;
    console.log(
      `alerts evaluator tick (full evaluation, ${N} incidents opening or resolving, ${ROUNDS} ticks ` +
        `each, worker cycling every second meanwhile): ` +
        results.map((r) => `${r.label} ${ms(r.median)} median / ${ms(r.max)} max`).join("; ") +
        ` — dead vs no channel ${(deadPhase.median / base).toFixed(2)}×; ${hung} requests were ` +
        `hanging at the dead receiver when the ticks ended`,
    );
  } finally {
    dead.release();
    await receiver.close();
    await dead.close();
    await t.close();
  }
}

if (import.meta.main) await main();

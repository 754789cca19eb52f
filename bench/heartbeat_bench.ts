/**
 * Authenticated `POST /api/agent/heartbeat` over HTTP (access token + DPoP proof + replay
 * cache + device check + in-memory liveness; written to the database in batches), next to
 * `GET /health` measured by the same load generator in the same run. Aim (issue 6): at
 * least 5,000 per second.
 *
 * The engine (identity plugins + realtime) runs in this process; the generator (reference
 * agents, each proof signed with Ed25519) in a second process, each pinned to its own
 * core when `taskset` exists. Because the generator's signing competes for the same two
 * cores, the figure that transfers to a bigger machine is the engine's CPU per request,
 * printed as "µs/op" and "ops/s per engine core".
 *
 *   deno run -A bench/heartbeat_bench.ts     (BENCH_SECONDS=5, BENCH_CONCURRENCY=64)
 *
 * @module
 */
import { systemClock } from "../core/clock.ts";
import { Engine } from "../core/engine.ts";
import { createLogSink } from "../core/log.ts";
import { operatorsKey } from "../plugins/operators/mod.ts";
import realtime from "../plugins/realtime/mod.ts";
import { Agent } from "../tests/agent/agent.ts";
import { identityPlugins } from "../tests/agent/harness.ts";
import { createTestDatabase } from "../tests/helpers/test_db.ts";
import { cpuSampler, drive, fmtInt, hasTaskset, type Phase } from "./lib/drive.ts";

const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const concurrency = Number(Deno.env.get("BENCH_CONCURRENCY") ?? 64);

async function generator(server: string, code: string): Promise<void> {
  const health = async () => {
    const r = await fetch(`${server}/health`);
    await r.body?.cancel();
    return r.status === 200;
  };
  const agents = await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    const a = await Agent.open({
      server,
      hostname: `hb-${i}`,
      sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 100))),
    });
    await a.enroll(code, { timeoutMs: 60_000 });
    return a;
  }));
  const out: Phase[] = [];
  await drive("warmup", concurrency, 1, health);
  out.push(await drive("health", concurrency, seconds, health));
  const body = {
    hostname: "",
    metrics: { cpu_percent: 12.5, memory_percent: 40, uptime: 3600, last_user: "bench" },
  };
  out.push(
    await drive("heartbeat", concurrency, seconds, async (i) => {
      const a = agents[i]!;
      const r = await a.call("POST", "/api/agent/heartbeat", {
        ...body,
        hostname: a.state.hostname,
      }, { retry: false });
      await r.body?.cancel();
      return r.status === 200;
    }),
  );
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  const db = await createTestDatabase();
  const engine = await Engine.create({
    env: {
      ...db.env,
      BOREALIS_PORT: "0",
      BOREALIS_ENROLL_RATE_LIMIT_IP_PER_MINUTE: "0",
      BOREALIS_ENROLL_RATE_LIMIT_FINGERPRINT_PER_MINUTE: "0",
      BOREALIS_DEVICE_RATE_LIMIT_PER_MINUTE: "0",
    },
    plugins: [...identityPlugins, realtime],
    clock: systemClock,
    logSink: createLogSink({ dir: `${db.dataDir}/Logs`, stderr: false, level: "WARNING" }),
  });
  try {
    const { port } = await engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const ops = engine.service(operatorsKey);
    const user = await ops.createUser({
      username: "bench-admin",
      password: `pw-${crypto.randomUUID()}`,
      role: "Admin",
      mfaExempt: true,
    });
    const session = await ops.createSession(user.id, "bench");
    const auth = { Authorization: `Bearer ${session.token}`, "content-type": "application/json" };
    const site = await (await fetch(`${server}/api/sites`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ name: "Bench" }),
    })).json();
    const win = await fetch(`${server}/api/sites/${site.id}/auto-approval`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ minutes: 60 }),
    });
    await win.body?.cancel();

    const pin = await hasTaskset();
    if (pin) {
      await new Deno.Command("taskset", { args: ["-acp", "0", String(Deno.pid)], stdout: "null" })
        .output();
    }
    const self = new URL(import.meta.url).pathname;
    const args = [
      ...(pin ? ["-c", "1", Deno.execPath()] : []),
      "run",
      "-A",
      self,
      "--generate",
      server,
      site.enrollment_code,
    ];
    const cpu = cpuSampler();
    const child = await new Deno.Command(pin ? "taskset" : Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "inherit",
      env: { BENCH_SECONDS: String(seconds), BENCH_CONCURRENCY: String(concurrency) },
    }).output();
    cpu.stop();
    const text = new TextDecoder().decode(child.stdout).trim().split("\n").at(-1) ?? "[]";
    const phases = JSON.parse(text) as Phase[];
    const base = phases.find((p) => p.name === "health")!;
    const hb = phases.find((p) => p.name === "heartbeat")!;
    const used = cpu.cpuIn(hb.startMs, hb.endMs);
    const usPerOp = (used * 1000) / (hb.ops * hb.seconds);
    console.log(
      `heartbeat HTTP: ${fmtInt(hb.ops)} req/s (p50 ${hb.p50.toFixed(1)} ms, p99 ${
        hb.p99.toFixed(1)
      } ms, errors ${hb.errors}) | baseline GET /health ${fmtInt(base.ops)} req/s | ratio ${
        (hb.ops / base.ops).toFixed(3)
      } | engine CPU ${usPerOp.toFixed(0)} µs/op → ~${
        fmtInt(1e6 / usPerOp)
      } req/s per engine core` +
        ` [${db.url ? "PostgreSQL server" : "embedded PGlite"}, ${concurrency} agents, ${seconds}s${
          pin ? ", engine core 0 / generator core 1" : ""
        }]`,
    );
  } finally {
    await engine.stop("bench finished");
    await db.drop();
  }
}

if (Deno.args[0] === "--generate") {
  await generator(Deno.args[1]!, Deno.args[2]!);
} else {
  await main();
}

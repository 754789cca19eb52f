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
 * printed as "µs/op" and "ops/s per engine core" for each phase, `GET /health` included.
 *
 * Phases: `GET /health` (the baseline); heartbeats with a fresh proof each (the real
 * path); and heartbeats that reuse one already-spent proof per agent (a replay: every
 * one must be refused with 401, and the figure is what refusing costs).
 *
 *   deno run -A bench/heartbeat_bench.ts     (BENCH_SECONDS=5, BENCH_CONCURRENCY=64)
 *
 * @module
 */
import realtime from "../plugins/realtime/mod.ts";
import { Agent } from "../tests/agent/agent.ts";
import { identityPlugins } from "../tests/agent/harness.ts";
import { runGenerator, startAgentBenchEngine } from "./lib/agent_bench.ts";
import { drive, fmtInt, type Phase } from "./lib/drive.ts";

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
  // Each agent spends one proof, then sends it again and again: all refused (401).
  const spent = await Promise.all(agents.map(async (a) => {
    const url = `${server}/api/agent/heartbeat`;
    const token = a.state.access_token!;
    const headers = {
      authorization: `DPoP ${token}`,
      dpop: await a.proof("POST", url, { accessToken: token }),
      "content-type": "application/json",
    };
    const payload = JSON.stringify({ ...body, hostname: a.state.hostname });
    const first = await fetch(url, { method: "POST", headers, body: payload });
    await first.body?.cancel();
    if (first.status !== 200) throw new Error(`first use of a proof: ${first.status}`);
    return { url, headers, payload };
  }));
  let accepted = 0;
  out.push(
    await drive("replay", concurrency, seconds, async (i) => {
      const s = spent[i]!;
      const r = await fetch(s.url, { method: "POST", headers: s.headers, body: s.payload });
      await r.body?.cancel();
      if (r.status === 200) accepted++;
      return r.status === 401;
    }),
  );
  if (accepted) throw new Error(`${accepted} replayed proofs were accepted`);
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  const b = await startAgentBenchEngine([...identityPlugins, realtime]);
  try {
    const run = await runGenerator(new URL(import.meta.url).pathname, b, {
      BENCH_SECONDS: String(seconds),
      BENCH_CONCURRENCY: String(concurrency),
    });
    const phase = (name: string) => {
      const p = run.phases.find((x) => x.name === name)!;
      const used = run.cpuIn(p.startMs, p.endMs);
      return { ...p, usPerOp: (used * 1000) / (p.ops * p.seconds) };
    };
    const base = phase("health");
    const hb = phase("heartbeat");
    const replay = phase("replay");
    const perCore = (us: number) => fmtInt(1e6 / us);
    const where = `[${b.dbLabel}, ${concurrency} agents, ${seconds}s${
      run.pinned ? ", engine core 0 / generator core 1" : ""
    }]`;
    console.log(
      `heartbeat HTTP: ${fmtInt(hb.ops)} req/s (p50 ${hb.p50.toFixed(1)} ms, p99 ${
        hb.p99.toFixed(1)
      } ms, errors ${hb.errors}) | baseline GET /health ${fmtInt(base.ops)} req/s | ratio ${
        (hb.ops / base.ops).toFixed(3)
      } | engine CPU ${hb.usPerOp.toFixed(0)} µs/op → ~${
        perCore(hb.usPerOp)
      } req/s per engine core (GET /health ${base.usPerOp.toFixed(0)} µs/op → ~${
        perCore(base.usPerOp)
      }) ${where}`,
    );
    console.log(
      `heartbeat HTTP, proofs reused: ${fmtInt(replay.ops)} refusals/s, ${
        fmtInt(replay.ops * replay.seconds)
      } replays refused with 401, 0 accepted (p99 ${
        replay.p99.toFixed(1)
      } ms, other answers ${replay.errors}) | engine CPU ${
        replay.usPerOp.toFixed(0)
      } µs per refusal ${where}`,
    );
  } finally {
    await b.close();
  }
}

if (Deno.args[0] === "--generate") {
  await generator(Deno.args[1]!, Deno.args[2]!);
} else {
  await main();
}

/**
 * Identity benchmark: end-to-end enrollments per second with site auto-approval, token
 * refreshes per second (DPoP proof, rotation), and authenticated `script/request` calls
 * per second (access token + DPoP proof + replay cache + device check), each next to
 * `GET /health` measured by the same load generator in the same run.
 *
 * The engine runs in this process; the load generator (reference agents) runs in a
 * second process, each pinned to its own core when `taskset` exists. Database: the
 * server in BOREALIS_TEST_DATABASE_URL, else embedded PGlite.
 *
 * On two cores one generator process signing a DPoP proof per request (~150 µs of
 * Ed25519 + JSON) saturates before the engine does, so refresh and script_request are
 * measured twice: through the reference agent library as is, and "presigned", where
 * the same agents sign their proofs (fresh jti, iat, ath, each used once) just before the
 * timed window and the window only sends them. The engine does exactly the same work
 * either way; the second figure shows what the engine sustains when the generator is not
 * the bottleneck. The engine's own CPU time per operation is printed for every phase.
 *
 *   deno run -A bench/identity_bench.ts            (BENCH_SECONDS=5, BENCH_CONCURRENCY=64)
 *
 * @module
 */
import { Agent } from "../tests/agent/agent.ts";
import { identityPlugins } from "../tests/agent/harness.ts";
import { runGenerator, startAgentBenchEngine } from "./lib/agent_bench.ts";
import { drive, type Phase } from "./lib/drive.ts";

const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const concurrency = Number(Deno.env.get("BENCH_CONCURRENCY") ?? 64);

async function generator(server: string, code: string): Promise<void> {
  const health = async () => {
    const r = await fetch(`${server}/health`);
    await r.body?.cancel();
    return r.status === 200;
  };
  const out: Phase[] = [];
  await drive("warmup", concurrency, 1, health);
  out.push(await drive("health", concurrency, seconds, health));
  const agents: Agent[] = [];
  out.push(
    await drive("enroll", Math.min(concurrency, 32), seconds, async () => {
      const a = await Agent.open({ server, sleep: () => Promise.resolve() });
      const r = await a.requestEnrollment(code);
      if (r.status !== "approved") return false;
      const p = await a.poll();
      if (p.body.status !== "approved" || !p.body.access_token) return false;
      agents.push(a);
      return true;
    }),
  );
  if (!agents.length) throw new Error("no agent enrolled");
  out.push(await drive("health", concurrency, seconds, health));
  // One agent per loop, so each loop's refresh chain stays sequential.
  const pool = agents.slice(0, concurrency);
  out.push(
    await drive("refresh", pool.length, seconds, async (i) => {
      await pool[i]!.refresh();
      return true;
    }),
  );
  out.push(await drive("health", concurrency, seconds, health));
  out.push(
    await drive("script_request", pool.length, seconds, async (i) => {
      const r = await pool[i]!.call("POST", "/api/agent/script/request", {}, { retry: false });
      await r.body?.cancel();
      return r.status === 200;
    }),
  );

  // Presigned: proofs made by the same agents right before the window.
  const refreshUrl = `${server}/api/agent/token/refresh`;
  const scriptUrl = `${server}/api/agent/script/request`;
  const presign = async (perAgent: number, make: (a: Agent) => Promise<string>) => {
    const stacks: string[][] = [];
    for (const a of pool) {
      const list: string[] = [];
      for (let k = 0; k < perAgent; k++) list.push(await make(a));
      stacks.push(list);
    }
    return stacks;
  };
  const perAgent = (rate: number) => Math.ceil((rate * seconds) / pool.length);
  for (const a of pool) await a.ensureFresh();
  const refreshProofs = await presign(perAgent(2500), (a) => a.proof("POST", refreshUrl));
  out.push(await drive("health", concurrency, seconds, health));
  out.push(
    await drive("refresh_presigned", pool.length, seconds, async (i) => {
      const a = pool[i]!;
      const proof = refreshProofs[i]!.pop() ?? await a.proof("POST", refreshUrl);
      const r = await fetch(refreshUrl, {
        method: "POST",
        headers: { "content-type": "application/json", DPoP: proof },
        body: JSON.stringify({ guid: a.state.guid, refresh_token: a.state.refresh_token }),
      });
      const body = await r.json();
      if (r.status !== 200) return false;
      a.state.refresh_token = body.refresh_token;
      a.state.access_token = body.access_token;
      return true;
    }),
  );
  const scriptProofs = await presign(
    perAgent(6000),
    (a) => a.proof("POST", scriptUrl, { accessToken: a.state.access_token }),
  );
  out.push(await drive("health", concurrency, seconds, health));
  out.push(
    await drive("script_request_presigned", pool.length, seconds, async (i) => {
      const a = pool[i]!;
      const token = a.state.access_token!;
      const proof = scriptProofs[i]!.pop() ??
        await a.proof("POST", scriptUrl, { accessToken: token });
      const r = await fetch(scriptUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          Authorization: `DPoP ${token}`,
          DPoP: proof,
        },
        body: "{}",
      });
      await r.body?.cancel();
      return r.status === 200;
    }),
  );
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  const b = await startAgentBenchEngine(identityPlugins, { BOREALIS_DB_POOL_SIZE: "20" });
  try {
    const { phases, cpuIn, pinned: pin } = await runGenerator(
      new URL(import.meta.url).pathname,
      b,
      { BENCH_SECONDS: String(seconds), BENCH_CONCURRENCY: String(concurrency) },
    );
    const healths = phases.filter((p) => p.name === "health");
    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    const db_ = b.dbLabel;
    let hi = 0;
    const best: Record<string, number> = {};
    for (const p of phases.filter((p) => p.name !== "health")) {
      const kind = p.name.replace(/_presigned$/, "");
      best[kind] = Math.max(best[kind] ?? 0, p.ops);
      const base = healths[hi++]!;
      const cpu = cpuIn(p.startMs, p.endMs);
      const usPerOp = (cpu * 1000) / (p.ops * p.seconds);
      const busy = cpu / (p.endMs - p.startMs);
      console.log(
        `identity ${p.name}: ${fmt(p.ops)} ops/s (p50 ${p.p50.toFixed(1)} ms, p99 ${
          p.p99.toFixed(1)
        } ms, errors ${p.errors})` +
          ` | baseline GET /health ${fmt(base.ops)} req/s | ratio ${
            (p.ops / base.ops).toFixed(3)
          }` +
          ` | engine CPU ${usPerOp.toFixed(0)} µs/op, ${(busy * 100).toFixed(0)}% of a core busy` +
          ` → ~${fmt(1e6 / usPerOp)} ops/s per engine core` +
          ` [${db_}, ${concurrency} loops, ${seconds}s${
            pin ? ", engine core 0 / generator core 1" : ""
          }]`,
      );
    }
    const aim = (name: string, want: number) =>
      `${name} ${fmt(best[name] ?? 0)}/s (aim ${fmt(want)}/s: ${
        (best[name] ?? 0) >= want ? "met" : "not met"
      })`;
    console.log(
      `identity aims: ${aim("script_request", 3000)}, ${aim("refresh", 1000)} [${db_}]`,
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

/**
 * Resilience figures, each next to its own baseline measured in the same run:
 *
 * A. Idle-connection flood against an engine process under a lowered open-file limit
 *    (`prlimit`, BENCH_NOFILE=1500): how many of BENCH_FLOOD idle connections the engine
 *    closed within BENCH_HOLD_SECONDS, whether GET /health answered meanwhile (and how
 *    fast), and whether the process is still alive afterwards.
 * B. Agents reconnecting (BENCH_AGENTS=100) alone, then next to a flood of anonymous
 *    `GET /api/agent/ws` from a second process: time until every agent is connected
 *    again (the reference agent's jittered backoff). The accept rate is lowered to
 *    BENCH_ACCEPT_PER_SECOND=100 (burst the same) so that the flood one process on a
 *    shared machine can generate exceeds it, as 20,000/s exceed the default 1,000/s.
 * C. (PostgreSQL server only, BOREALIS_TEST_DATABASE_URL) the database behind a TCP
 *    proxy: what `GET /api/sites` answers and how long it takes while the server refuses
 *    connections and while the network path is a black hole, and the statuses of reads
 *    and writes while the engine's sessions are terminated (a restart).
 *
 *   deno run -A bench/resilience_bench.ts            (needs prlimit for A)
 *
 * @module
 */
import postgres from "postgres";
import { Agent } from "../tests/agent/agent.ts";
import { identityPlugins } from "../tests/agent/harness.ts";
import { AgentSocket } from "../tests/agent/socket.ts";
import { createTestDatabase, serverUrl } from "../tests/helpers/test_db.ts";
import { TcpProxy } from "../tests/helpers/tcp_proxy.ts";
import { startAgentBenchEngine } from "./lib/agent_bench.ts";

const root = new URL("..", import.meta.url).pathname;
const NOFILE = Number(Deno.env.get("BENCH_NOFILE") ?? 1500);
const FLOOD = Number(Deno.env.get("BENCH_FLOOD") ?? 5000);
const HOLD = Number(Deno.env.get("BENCH_HOLD_SECONDS") ?? 20);
const AGENTS = Number(Deno.env.get("BENCH_AGENTS") ?? 100);
const ACCEPT = Deno.env.get("BENCH_ACCEPT_PER_SECOND") ?? "100";

if (Deno.args[0] === "--flood") {
  // The anonymous upgrade flood, in its own process: loops until killed, prints its rate.
  const url = Deno.args[1]!;
  let sent = 0;
  const started = performance.now();
  const loop = async () => {
    for (;;) {
      try {
        const r = await fetch(url, {
          headers: {
            upgrade: "websocket",
            connection: "upgrade",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version": "13",
          },
        });
        await r.body?.cancel();
      } catch { /* refused: keep going */ }
      sent++;
    }
  };
  setInterval(() => {
    console.log(`RATE ${(sent / ((performance.now() - started) / 1000)).toFixed(0)}`);
  }, 1000);
  await Promise.all(Array.from({ length: 64 }, loop));
}

const ms = (t: number) => `${t.toFixed(0)} ms`;

async function idleFlood(): Promise<string> {
  const data = await Deno.makeTempDir({ prefix: "borealis-flood-bench-" });
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = new Deno.Command("prlimit", {
    args: [`--nofile=${NOFILE}:${NOFILE}`, Deno.execPath(), "run", "-A", `${root}main.ts`],
    env: { BOREALIS_DATA_DIR: data, BOREALIS_PORT: String(port) },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  let died = "";
  child.status.then(() => (exited = true));
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const m = /Uncaught.*|panicked.*/.exec(chunk);
      if (m && !died) died = m[0].slice(0, 120);
    }
  })().catch(() => {});
  const url = `http://127.0.0.1:${port}/health`;
  const probe = async () => {
    const t0 = performance.now();
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      await r.body?.cancel();
      return r.ok ? performance.now() - t0 : null;
    } catch {
      return null;
    }
  };
  for (let i = 0; i < 600 && !(await probe()); i++) await new Promise((r) => setTimeout(r, 100));
  const conns: Deno.Conn[] = [];
  let refused = 0;
  for (let i = 0; i < FLOOD; i += 100) {
    const got = await Promise.allSettled(
      Array.from(
        { length: Math.min(100, FLOOD - i) },
        () => Deno.connect({ hostname: "127.0.0.1", port }),
      ),
    );
    for (const g of got) g.status === "fulfilled" ? conns.push(g.value) : refused++;
  }
  let closedByEngine = 0;
  for (const c of conns) {
    c.read(new Uint8Array(1)).then((n) => n === null && closedByEngine++, () => closedByEngine++);
  }
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + HOLD * 1000;
  while (performance.now() < end) {
    const l = await probe();
    l === null ? failed++ : latencies.push(l);
    await new Promise((r) => setTimeout(r, 500));
  }
  const closed = closedByEngine;
  for (const c of conns) {
    try {
      c.close();
    } catch { /* closed */ }
  }
  await new Promise((r) => setTimeout(r, 2000));
  const after = await probe();
  const alive = !exited;
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  await child.status;
  await Deno.remove(data, { recursive: true }).catch(() => {});
  latencies.sort((a, b) => a - b);
  const p50 = latencies.length ? ms(latencies[Math.floor(latencies.length / 2)]!) : "-";
  return `idle flood (${FLOOD} connections, open-file limit ${NOFILE}, held ${HOLD} s): ` +
    `${conns.length} opened (${refused} refused at connect), ${closed} closed by the engine; ` +
    `/health during: ${latencies.length} answered (p50 ${p50}), ${failed} failed; ` +
    `after: ${after === null ? "no answer" : `answered in ${ms(after)}`}; process ` +
    `${alive ? "alive" : `dead${died ? ` (${died})` : ""}`}`;
}

async function upgradeFlood(): Promise<string> {
  const b = await startAgentBenchEngine(
    [...identityPlugins, (await import("../plugins/realtime/mod.ts")).default],
    { BOREALIS_AGENT_WS_ACCEPT_PER_SECOND: ACCEPT, BOREALIS_AGENT_WS_ACCEPT_BURST: ACCEPT },
  );
  let flood: Deno.ChildProcess | undefined;
  try {
    const agents: Agent[] = [];
    for (let i = 0; i < AGENTS; i++) {
      const a = await Agent.open({ server: b.server, sleep: () => Promise.resolve() });
      await a.requestEnrollment(b.enrollmentCode);
      await a.poll();
      agents.push(a);
    }
    const reconnectAll = async (): Promise<number> => {
      const t0 = performance.now();
      const sockets = agents.map((a) => new AgentSocket(a, { server: b.server, heartbeat: false }));
      await Promise.all(sockets.map((s) => s.start({ keepTrying: true })));
      const deadline = t0 + 120_000;
      while (sockets.some((s) => !s.open) && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const took = performance.now() - t0;
      const missing = sockets.filter((s) => !s.open).length;
      for (const s of sockets) s.stop();
      await new Promise((r) => setTimeout(r, 500));
      return missing ? -missing : took;
    };
    const quiet = await reconnectAll();
    flood = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--flood", `${b.server}/api/agent/ws`],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let rate = "?";
    (async () => {
      for await (const chunk of flood!.stdout.pipeThrough(new TextDecoderStream())) {
        const m = /RATE (\d+)/.exec(chunk.trim().split("\n").at(-1) ?? "");
        if (m) rate = m[1]!;
      }
    })().catch(() => {});
    // The flood process loads this whole module first, which takes seconds on a busy
    // machine: measure only once it reports a rate, then let it reach its pace.
    const started = performance.now();
    while (rate === "?" && performance.now() - started < 60_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (rate === "?") throw new Error("the flood process never started");
    await new Promise((r) => setTimeout(r, 2000));
    const busy = await reconnectAll();
    const show = (
      t: number,
    ) => (t < 0 ? `${-t} never connected within 120 s` : `${(t / 1000).toFixed(2)} s`);
    return `upgrade flood (accept rate ${ACCEPT}/s): ${AGENTS} agents reconnect in ` +
      `${show(quiet)} alone | ${show(busy)} next to ~${rate}/s anonymous GET /api/agent/ws`;
  } finally {
    try {
      flood?.kill("SIGKILL");
    } catch { /* gone */ }
    await flood?.status;
    await b.close();
  }
}

async function databaseOutage(): Promise<string> {
  const { startTestEngine } = await import("../tests/helpers/test_engine.ts");
  const { createOperator } = await import("../tests/helpers/operators.ts");
  const inventory = (await import("../plugins/inventory/mod.ts")).default;
  const operators = (await import("../plugins/operators/mod.ts")).default;
  const aegis = (await import("../plugins/aegis/mod.ts")).default;
  const db = await createTestDatabase();
  const direct = new URL(db.url!);
  const proxy = TcpProxy.start({ hostname: direct.hostname, port: Number(direct.port || 5432) });
  const via = new URL(db.url!);
  via.hostname = "127.0.0.1";
  via.port = String(proxy.port);
  const t = await startTestEngine({
    plugins: [aegis, operators, inventory],
    db,
    env: { BOREALIS_DATABASE_URL: via.toString() },
  });
  const admin = postgres(serverUrl!, { max: 1, onnotice: () => {} });
  try {
    const op = await createOperator(t, { role: "Admin" });
    const get = async () => {
      const t0 = performance.now();
      const r = await t.request("/api/sites", { headers: op.headers });
      await r.body?.cancel();
      return `${r.status} in ${ms(performance.now() - t0)}`;
    };
    const outage = async () => {
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) seen.push(await get());
      return seen.join(", ");
    };
    proxy.refuse();
    proxy.cut();
    const refused = await outage();
    proxy.restore();
    const t0 = performance.now();
    while ((await t.request("/api/sites", { headers: op.headers })).status !== 200) {
      if (performance.now() - t0 > 60_000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const recovered = performance.now() - t0;
    proxy.blackhole();
    proxy.cut();
    const blackhole = await outage();
    proxy.restore();
    while ((await t.request("/api/sites", { headers: op.headers })).status !== 200) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // A restart: every session of the engine's database terminated, under load.
    const name = direct.pathname.slice(1);
    const counts = new Map<string, number>();
    let stop = false;
    let n = 0;
    const worker = async () => {
      while (!stop) {
        const r = await t.request("/api/sites", { headers: op.headers });
        await r.body?.cancel();
        const w = await t.request("/api/sites", {
          method: "POST",
          headers: op.headers,
          json: { name: `bench ${n++}` },
        });
        await w.body?.cancel();
        for (const k of [`GET ${r.status}`, `POST ${w.status}`]) {
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 300));
      await admin`select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = ${name} and pid <> pg_backend_pid()`;
    }
    stop = true;
    await Promise.all(workers);
    const restart = [...counts].sort().map(([k, v]) => `${k}×${v}`).join(" ");
    return `database outage: refused → GET /api/sites ${refused}; recovered ` +
      `${ms(recovered)} after the server came back; black hole → ${blackhole} | ` +
      `sessions terminated 5× under load: ${restart}`;
  } finally {
    await admin.end();
    await t.stop();
    proxy.close();
    await db.drop();
  }
}

console.log(await idleFlood());
console.log(await upgradeFlood());
if (serverUrl) console.log(await databaseOutage());
else {console.log(
    "database outage: skipped (set BOREALIS_TEST_DATABASE_URL to a PostgreSQL server)",
  );}
Deno.exit(0);

/**
 * N simulated agents against one engine process: enrolled through auto-approval, each
 * holding a socket and heartbeating. Reports connected count, engine RSS and CPU,
 * heartbeat acknowledgement latency p50/p99, the time to deliver one message to every
 * agent, and the time for all agents to return after an engine restart.
 *
 *   BENCH_AGENTS=20000 BENCH_HEARTBEAT_MS=30000 deno run -A bench/agents_bench.ts
 *
 * Defaults are small (2,000 agents) so `deno task bench` stays quick. A process holds
 * at most ~20,000 sockets here (anchors §C.2b), so beyond that split the generator.
 * Baseline in the same run: GET /health through the same engine under load.
 */
import { Agent } from "../tests/agent/agent.ts";
import { AgentSocket, shutdownHint } from "../tests/agent/socket.ts";
import { fmt, measure, pin } from "./lib/load.ts";

const N = Number(Deno.env.get("BENCH_AGENTS") ?? 2000);
const HEARTBEAT_MS = Number(Deno.env.get("BENCH_HEARTBEAT_MS") ?? 30_000);
const SAMPLE_MS = Number(Deno.env.get("BENCH_SAMPLE_MS") ?? 35_000);
const SETTLE_MS = Number(Deno.env.get("BENCH_SETTLE_MS") ?? 15_000);
const here = new URL(".", import.meta.url).pathname;
const dataDir = await Deno.makeTempDir({ prefix: "borealis-agents-bench-" });
const port = 20_000 + Math.floor(Math.random() * 20_000);
const extraEnv: Record<string, string> = {
  BOREALIS_DATA_DIR: dataDir,
  BOREALIS_PORT: String(port),
  BOREALIS_AGENT_HEARTBEAT_SECONDS: String(Math.max(5, Math.round(HEARTBEAT_MS / 1000))),
  BOREALIS_AGENT_WS_ACCEPT_PER_SECOND: Deno.env.get("BENCH_ACCEPT_PER_SECOND") ?? "2000",
  // Every simulated agent shares the loopback address.
  BOREALIS_HTTP_MAX_PENDING_PER_ADDRESS: "1000000",
  BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND: "0",
};

interface Engine {
  pid: number;
  code: string;
  token: string;
  siteId: string;
  stop(): Promise<void>;
}

/** Raises the open-file limit of a process (needs CAP_SYS_RESOURCE to pass the hard limit). */
async function raiseNoFile(pid: number, want = 200_000): Promise<number> {
  for (const n of [want, 65_536, 20_000]) {
    const ok = await new Deno.Command("prlimit", {
      args: ["--pid", String(pid), `--nofile=${n}:${n}`],
      stdout: "null",
      stderr: "null",
    }).output().then((o) => o.success, () => false);
    if (ok) return n;
  }
  return NaN;
}
const nofile = await raiseNoFile(Deno.pid);

async function startEngine(env: Record<string, string>): Promise<Engine> {
  const cmd = [...pin(0), Deno.execPath(), "run", "-A", `${here}fixtures/agents_engine.ts`];
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    env: { ...Deno.env.toObject(), ...extraEnv, ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`engine exited: ${buf}`);
    buf += value;
    const m = /READY (\d+) (\S+) (\S+) (\S+)/.exec(buf);
    if (m) {
      await raiseNoFile(child.pid);
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return {
        pid: child.pid,
        code: m[2]!,
        token: m[3]!,
        siteId: m[4]!,
        async stop() {
          child.kill("SIGTERM");
          await child.status;
        },
      };
    }
  }
}

function procStats(pid: number): { rssMb: number; cpuTicks: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return { rssMb: rss, cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN;
};

const server = `http://127.0.0.1:${port}`;
let engine = await startEngine({});
const baseline = await measure(`${server}/health`, { durationSeconds: 3 });

// The first ENROLLED agents enroll through auto-approval (the real path, timed); the
// rest are seeded directly with tokens bound to their own keys (a bench-only route).
const ENROLLED = Math.min(N, Number(Deno.env.get("BENCH_ENROLLED") ?? 200));
const t0 = performance.now();
const agents: Agent[] = [];
for (let i = 0; i < ENROLLED; i += 50) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(50, ENROLLED - i) }, async (_, j) => {
      const a = await Agent.open({
        server,
        hostname: `bench-${i + j}-${crypto.randomUUID().slice(0, 4)}`,
        sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 250))),
      });
      await a.enroll(engine.code, { timeoutMs: 60_000 });
      return a;
    }),
  );
  agents.push(...batch);
}
const enrollSeconds = (performance.now() - t0) / 1000;
const t0s = performance.now();
for (let i = ENROLLED; i < N; i += 1000) {
  const batch = await Promise.all(
    Array.from(
      { length: Math.min(1000, N - i) },
      (_, j) =>
        Agent.open({ server, hostname: `seed-${i + j}-${crypto.randomUUID().slice(0, 4)}` }),
    ),
  );
  const res = await fetch(`${server}/api/bench/seed`, {
    method: "POST",
    headers: { authorization: `Bearer ${engine.token}`, "content-type": "application/json" },
    body: JSON.stringify({
      site_id: Number(engine.siteId),
      agents: batch.map((a) => ({
        hostname: a.state.hostname,
        public_key_spki: a.state.public_key_spki,
      })),
    }),
  });
  if (!res.ok) throw new Error(`seeding failed: ${res.status} ${await res.text()}`);
  const { agents: seeded } = await res.json() as {
    agents: { guid: string; access_token: string; expires_in: number; refresh_token: string }[];
  };
  batch.forEach((a, k) => {
    const s = seeded[k]!;
    a.state.guid = s.guid;
    a.state.access_token = s.access_token;
    a.state.access_expires_at = Date.now() + s.expires_in * 1000;
    a.state.refresh_token = s.refresh_token;
  });
  agents.push(...batch);
}
const seedSeconds = (performance.now() - t0s) / 1000;

const latencies: number[] = [];
let received = 0;
let firstPingAt = 0;
let lastPingAt = 0;
let back = new Set<string>();
let counting = false;
/** Close codes agents saw during a restart (1006: the socket ended without a close frame). */
let closes = new Map<string, number>();
/** Failed reconnect attempts by HTTP status (or "network" while the engine is down). */
let failures = new Map<string, number>();
/** When agents saw their close (ms), during a restart. */
let closeTimes: number[] = [];
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
const sockets = agents.map((a) =>
  new AgentSocket(a, {
    server,
    heartbeat: false,
    backoffBaseMs: 1000,
    backoffCapMs: 30_000,
    onFrame: (f) => {
      if (f.type === "bench_ping") {
        received++;
        lastPingAt = Date.now();
        firstPingAt ||= lastPingAt;
      }
      if (f.type === "welcome" && counting) back.add(a.state.guid!);
    },
    onClose: (e) => {
      if (!counting) return;
      closeTimes.push(Date.now());
      bump(closes, e.code === 4503 && shutdownHint(e) !== null ? "4503+hint" : String(e.code));
    },
    onFailure: (err) => {
      if (counting) bump(failures, String((err as { status?: number }).status ?? "network"));
    },
  })
);
const t1 = performance.now();
for (let i = 0; i < sockets.length; i += 200) {
  await Promise.all(sockets.slice(i, i + 200).map((s) => s.start().catch(() => {})));
}
const connectSeconds = (performance.now() - t1) / 1000;

// Heartbeats spread over the interval, each timed until its ack.
let stopBeats = false;
const beat = async (s: AgentSocket) => {
  await new Promise((r) => setTimeout(r, Math.random() * HEARTBEAT_MS));
  while (!stopBeats) {
    const start = performance.now();
    try {
      await s.request("heartbeat", { metrics: { cpu_percent: Math.random() * 100 } }, 10_000);
      latencies.push(performance.now() - start);
    } catch { /* counted as missing */ }
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS));
  }
};
const beats = sockets.map(beat);
// Let the connection burst settle (registry rows, first liveness flush) before sampling.
await new Promise((r) => setTimeout(r, SETTLE_MS));
latencies.length = 0;
const cpu0 = procStats(engine.pid);
await new Promise((r) => setTimeout(r, SAMPLE_MS));
const cpu1 = procStats(engine.pid);
const sampled = latencies.slice();
const cpuPercent = ((cpu1.cpuTicks - cpu0.cpuTicks) / 100) / (SAMPLE_MS / 1000) * 100;
const underLoad = await measure(`${server}/health`, { durationSeconds: 3 });

// One message to every agent.
const sendAt = Date.now();
await fetch(`${server}/api/bench/broadcast`, {
  method: "POST",
  headers: { authorization: `Bearer ${engine.token}` },
});
const deadline = Date.now() + 30_000;
while (received < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const deliverMs = (lastPingAt || Date.now()) - sendAt;

// Restarts: stop the engine (SIGTERM), start it again on the same data, wait for every
// agent to return — first with agents honouring the reconnect delay each close names,
// then (the same-run baseline) with the same agents ignoring it and backing off as for
// any close.
interface Restart {
  /** When agents saw their close after SIGTERM (s): median and last. */
  closeP50: number;
  closeMax: number;
  label: string;
  exitSeconds: number;
  backSeconds: number;
  backAfterStartSeconds: number;
  back: number;
  closes: Map<string, number>;
  failures: Map<string, number>;
}
const restarts: Restart[] = [];
for (const [label, ignore] of [["honouring the delay", false], ["ignoring it", true]] as const) {
  for (const s of sockets) s.o.ignoreShutdownHint = ignore;
  back = new Set();
  closes = new Map();
  failures = new Map();
  counting = true;
  const before = engine;
  closeTimes = [];
  const sigAt = Date.now();
  await before.stop();
  const exitedAt = Date.now();
  if (Deno.env.get("BENCH_DEBUG")) console.error(`stopped at ${new Date().toISOString()}`);
  engine = await startEngine({
    BENCH_ADMIN_TOKEN: before.token,
    BENCH_CODE: before.code,
    BENCH_SITE_ID: before.siteId,
  });
  const startedAt = Date.now();
  const backDeadline = Date.now() + 180_000;
  while (back.size < N && Date.now() < backDeadline) await new Promise((r) => setTimeout(r, 100));
  const doneAt = Date.now();
  counting = false;
  // Sockets that saw no close at all (still open, or never told) count as such.
  const noClose = N - [...closes.values()].reduce((a, b) => a + b, 0);
  if (noClose > 0) closes.set("no close event", noClose);
  const closedAfter = closeTimes.map((t) => t - sigAt);
  restarts.push({
    closeP50: pct(closedAfter, 0.5) / 1000,
    closeMax: pct(closedAfter, 1) / 1000,
    label,
    exitSeconds: (exitedAt - sigAt) / 1000,
    backSeconds: (doneAt - sigAt) / 1000,
    backAfterStartSeconds: (doneAt - startedAt) / 1000,
    back: back.size,
    closes,
    failures,
  });
  if (Deno.env.get("BENCH_DEBUG")) {
    for (const s of sockets.filter((s) => !back.has(s.agent.state.guid!)).slice(0, 10)) {
      console.error(
        `missing ${s.agent.state.hostname}: open=${s.open} connects=${s.connects} failed=${s.failedAttempts}`,
      );
    }
  }
  await new Promise((r) => setTimeout(r, 5000)); // settle before the next restart
}
const failedAttempts = sockets.reduce((n, s) => n + s.failedAttempts, 0);
const afterRestart = procStats(engine.pid);

stopBeats = true;
for (const s of sockets) s.stop();
await engine.stop();
void beats;
await Deno.remove(dataDir, { recursive: true }).catch(() => {});

console.log(
  `agents: ${ENROLLED} enrolled through auto-approval in ${enrollSeconds.toFixed(1)} s (${
    fmt(ENROLLED / enrollSeconds)
  }/s), ${N - ENROLLED} seeded in ${seedSeconds.toFixed(1)} s; open-file limit ${nofile}; ` +
    `sockets opened in ${
      connectSeconds.toFixed(1)
    } s; ${failedAttempts} failed reconnect attempts in all`,
);
const fmtMap = (m: Map<string, number>) =>
  [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(", ") || "none";
for (const r of restarts) {
  console.log(
    `agents: restart, agents ${r.label}: ${r.back}/${N} back ${
      r.backSeconds.toFixed(1)
    } s after SIGTERM ` +
      `(closes reached agents ${r.closeP50.toFixed(1)} s (median) to ${
        r.closeMax.toFixed(1)
      } s after it; engine exited after ${r.exitSeconds.toFixed(1)} s; ${
        r.backAfterStartSeconds.toFixed(1)
      } s after the new engine was ready); closes seen: ${fmtMap(r.closes)}; failed attempts: ${
        fmtMap(r.failures)
      }`,
  );
}
console.log(
  `agents: engine RSS ${cpu1.rssMb.toFixed(0)} MB with ${N} sockets (${
    afterRestart.rssMb.toFixed(0)
  } MB after restart), ` +
    `CPU ${cpuPercent.toFixed(1)}% of one core at one heartbeat per ${
      HEARTBEAT_MS / 1000
    } s per agent`,
);
console.log(
  `agents: heartbeat ack p50 ${pct(sampled, 0.5).toFixed(1)} ms, p99 ${
    pct(sampled, 0.99).toFixed(1)
  } ms (${sampled.length} samples); ` +
    `one message to all: ${received}/${N} in ${deliverMs} ms`,
);
console.log(
  `agents: baseline GET /health ${fmt(baseline.requestsPerSecond)} req/s idle, ${
    fmt(underLoad.requestsPerSecond)
  } req/s with ${N} agents connected [${baseline.tool}]`,
);
Deno.exit(0);

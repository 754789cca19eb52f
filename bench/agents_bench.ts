/**
 * N simulated agents against the engine — one process, or several workers sharing one
 * port (BENCH_WORKERS, PostgreSQL only) — driven by several generator processes
 * (bench/lib/agents_generator.ts), each to its own loopback address. Agents are enrolled
 * through auto-approval (the first BENCH_ENROLLED) or seeded, each holds its socket and
 * heartbeats. Reports engine RSS and CPU (per agent too), heartbeat acknowledgement
 * latency p50/p99, the time to deliver one message to every agent, and the time for all
 * agents to return after a restart (workers: a rolling restart, SIGHUP) — honouring the
 * reconnect delay each close names, and, as the same-run baseline, ignoring it. Baseline
 * in the same run: GET /health through the same engine, idle and with the agents on.
 *
 *   BENCH_AGENTS=20000 BENCH_HEARTBEAT_MS=30000 deno run -A bench/agents_bench.ts
 *   BENCH_AGENTS=50000 BENCH_WORKERS=3 BENCH_GENERATORS=3 BOREALIS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres deno run -A bench/agents_bench.ts
 *
 * Defaults are small (2,000 agents, one engine, one generator) so `deno task bench` stays
 * quick. A process holds at most ~20,000 sockets here (anchors §C.2b): past that, use
 * workers and generators. The database is a fresh one on BOREALIS_TEST_DATABASE_URL when
 * set (dropped at the end), else the embedded one in a temporary data dir.
 */
import { createTestDatabase } from "../tests/helpers/test_db.ts";
import { fmt, measure, pin } from "./lib/load.ts";

const N = Number(Deno.env.get("BENCH_AGENTS") ?? 2000);
const WORKERS = Number(Deno.env.get("BENCH_WORKERS") ?? 1);
const GENERATORS = Number(
  Deno.env.get("BENCH_GENERATORS") ?? Math.max(1, Math.ceil(N / 17_000)),
);
const HEARTBEAT_MS = Number(Deno.env.get("BENCH_HEARTBEAT_MS") ?? 30_000);
const SAMPLE_MS = Number(Deno.env.get("BENCH_SAMPLE_MS") ?? 35_000);
const SETTLE_MS = Number(Deno.env.get("BENCH_SETTLE_MS") ?? 15_000);
const ENROLLED = Math.min(N, Number(Deno.env.get("BENCH_ENROLLED") ?? 200));
const RESTARTS = (Deno.env.get("BENCH_RESTARTS") ?? "honour,ignore").split(",").filter(Boolean);
const here = new URL(".", import.meta.url).pathname;
const db = await createTestDatabase();
if (WORKERS > 1 && !db.url) {
  console.error("BENCH_WORKERS > 1 needs a PostgreSQL server: set BOREALIS_TEST_DATABASE_URL");
  Deno.exit(2);
}
const port = 20_000 + Math.floor(Math.random() * 10_000);
const extraEnv: Record<string, string> = {
  ...db.env,
  // All of 127/8 reaches a listener on 0.0.0.0: each generator gets its own address.
  BOREALIS_HOST: "0.0.0.0",
  BOREALIS_PORT: String(port),
  BOREALIS_AGENT_HEARTBEAT_SECONDS: String(Math.max(5, Math.round(HEARTBEAT_MS / 1000))),
  BOREALIS_AGENT_WS_ACCEPT_PER_SECOND: Deno.env.get("BENCH_ACCEPT_PER_SECOND") ?? "2000",
  BENCH_WORKERS: String(WORKERS),
  // The simulated agents share a few loopback addresses.
  BOREALIS_HTTP_MAX_PENDING_PER_ADDRESS: "1000000",
  BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND: "0",
};

interface Engine {
  pid: number;
  /** The processes that serve (the workers, or the engine itself). */
  pids: number[];
  code: string;
  token: string;
  siteId: string;
  rolled?: Promise<number[]>;
  roll(): Promise<number[]>;
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
  // One engine is pinned to core 0 (generators get the rest, as before); workers are
  // left to the scheduler, they are meant to use every core.
  const cmd = [
    ...(WORKERS > 1 ? [] : pin(0)),
    Deno.execPath(),
    "run",
    "-A",
    "--unstable-net",
    `${here}fixtures/agents_engine.ts`,
  ];
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
    const m = /READY (\d+) (\S+) (\S+) (\S+) (\S+)/.exec(buf);
    if (m) {
      const e: Engine = {
        pid: child.pid,
        pids: m[5]!.split(",").map(Number),
        code: m[2]!,
        token: m[3]!,
        siteId: m[4]!,
        roll() {
          e.rolled = new Promise((resolve) => (rolledResolve = resolve));
          child.kill("SIGHUP");
          return e.rolled;
        },
        async stop() {
          child.kill("SIGTERM");
          await child.status;
        },
      };
      let rolledResolve: (pids: number[]) => void = () => {};
      for (const p of e.pids) await raiseNoFile(p);
      (async () => {
        let rest = buf.slice(m.index + m[0].length);
        for (;;) {
          const r = await reader.read();
          if (r.done) return;
          rest += r.value;
          const rolled = /ROLLED (\S+)/.exec(rest);
          if (rolled) {
            rest = rest.slice(rolled.index + rolled[0].length);
            e.pids = rolled[1]!.split(",").map(Number);
            for (const p of e.pids) await raiseNoFile(p);
            rolledResolve(e.pids);
          }
        }
      })();
      return e;
    }
  }
}

function procStats(pid: number): { rssMb: number; cpuTicks: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
    return { rssMb: rss, cpuTicks: Number(stat[11]) + Number(stat[12]) };
  } catch {
    return { rssMb: 0, cpuTicks: 0 };
  }
}
const engineStats = (e: Engine) => {
  const all = e.pids.map(procStats);
  return {
    rssMb: all.reduce((a, s) => a + s.rssMb, 0),
    cpuTicks: all.reduce((a, s) => a + s.cpuTicks, 0),
    perProcess: all.map((s) => Math.round(s.rssMb)),
  };
};

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN;
};

/** One generator process and its line protocol. */
class Generator {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #waiting = new Map<string, (v: Record<string, unknown>) => void>();
  readonly ready: Promise<Record<string, unknown>>;

  constructor(readonly index: number, share: number, enrolled: number, e: Engine) {
    const address = `127.0.0.${1 + index}`;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${here}lib/agents_generator.ts`],
      env: {
        ...Deno.env.toObject(),
        BENCH_GEN_SERVER: `http://${address}:${port}`,
        BENCH_GEN_AGENTS: String(share),
        BENCH_GEN_ENROLLED: String(enrolled),
        BENCH_GEN_HEARTBEAT_MS: String(HEARTBEAT_MS),
        BENCH_GEN_TOKEN: e.token,
        BENCH_GEN_CODE: e.code,
        BENCH_GEN_SITE_ID: e.siteId,
        BENCH_GEN_TAG: `g${index}`,
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    void raiseNoFile(this.#child.pid);
    this.#writer = this.#child.stdin.getWriter();
    this.ready = this.#next("ready");
    const stdout = this.#child.stdout;
    (async () => {
      let buf = "";
      for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const msg = JSON.parse(line) as Record<string, unknown>;
            this.#waiting.get(String(msg.reply))?.(msg);
          } catch {
            console.error(`generator ${index}: ${line}`);
          }
        }
      }
    })();
  }

  #next(reply: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.#waiting.set(reply, resolve));
  }

  async ask(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const answer = this.#next(String(cmd.cmd));
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
    return await answer;
  }

  get pid(): number {
    return this.#child.pid;
  }

  async stop(): Promise<number> {
    const r = await this.ask({ cmd: "stop" });
    await this.#child.status;
    return Number(r.failedAttempts ?? 0);
  }
}
const askAll = (gens: Generator[], cmd: Record<string, unknown>) =>
  Promise.all(gens.map((g) => g.ask(cmd)));

const server = `http://127.0.0.1:${port}`;
let engine = await startEngine({});
const baseline = await measure(`${server}/health`, { durationSeconds: 3 });

const t0 = performance.now();
const gens = Array.from({ length: GENERATORS }, (_, i) => {
  const share = Math.floor(N / GENERATORS) + (i < N % GENERATORS ? 1 : 0);
  return new Generator(i, share, i === 0 ? ENROLLED : 0, engine);
});
const readies = await Promise.all(gens.map((g) => g.ready));
const upSeconds = (performance.now() - t0) / 1000;
const opened = readies.reduce((n, r) => n + Number(r.open), 0);
const enrollSeconds = Number(readies[0]!.enrollSeconds);

// Let the connection burst settle (registry rows, first liveness flush) before sampling.
await new Promise((r) => setTimeout(r, SETTLE_MS));
const cpu0 = engineStats(engine);
const genCpu0 = gens.map((g) => procStats(g.pid).cpuTicks);
const samples = (await askAll(gens, { cmd: "sample", ms: SAMPLE_MS }))
  .flatMap((r) => r.latencies as number[]);
const cpu1 = engineStats(engine);
const genCpu = gens.reduce((n, g, i) => n + procStats(g.pid).cpuTicks - genCpu0[i]!, 0);
const cpuPercent = ((cpu1.cpuTicks - cpu0.cpuTicks) / 100) / (SAMPLE_MS / 1000) * 100;
const genRss = gens.reduce((n, g) => n + procStats(g.pid).rssMb, 0);
const underLoad = await measure(`${server}/health`, { durationSeconds: 3 });

// One message to every agent (each instance sends to the agents it holds).
const sendAt = Date.now();
await (await fetch(`${server}/api/bench/broadcast`, {
  method: "POST",
  headers: { authorization: `Bearer ${engine.token}` },
})).body?.cancel();
let received = 0;
let lastPingAt = 0;
const deadline = Date.now() + 30_000;
while (received < N && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 100));
  const pings = await askAll(gens, { cmd: "pings" });
  received = pings.reduce((n, p) => n + Number(p.received), 0);
  lastPingAt = Math.max(...pings.map((p) => Number(p.lastPingAt)));
}
const deliverMs = (lastPingAt || Date.now()) - sendAt;

interface Restart {
  label: string;
  closeP50: number;
  closeMax: number;
  backSeconds: number;
  /** From the last worker (or the engine) serving again to the last agent back. */
  afterEngineSeconds: number;
  back: number;
  closes: Record<string, number>;
  failures: Record<string, number>;
}
const restarts: Restart[] = [];
for (const mode of RESTARTS) {
  const ignoreHint = mode === "ignore";
  await askAll(gens, { cmd: "restart-begin", ignoreHint });
  const sigAt = Date.now();
  let engineDone: Promise<unknown>;
  if (WORKERS > 1) {
    engineDone = engine.roll();
  } else {
    const before = engine;
    await before.stop();
    engine = await startEngine({
      BENCH_ADMIN_TOKEN: before.token,
      BENCH_CODE: before.code,
      BENCH_SITE_ID: before.siteId,
    });
    engineDone = Promise.resolve();
  }
  // Done when the engine side is (every worker restarted) and every agent has come
  // back since the signal and holds an open socket now: in a rolling restart an agent
  // may land on a worker whose turn is still to come and be closed a second time.
  let rolled = false;
  let rolledAt = Date.now();
  engineDone.then(() => {
    rolled = true;
    rolledAt = Date.now();
  });
  const backDeadline = Date.now() + 300_000;
  let status: Record<string, unknown>[] = [];
  let back = 0;
  let open = 0;
  while (Date.now() < backDeadline) {
    await new Promise((r) => setTimeout(r, 250));
    status = await askAll(gens, { cmd: "restart-status" });
    back = status.reduce((n, s) => n + Number(s.back), 0);
    open = status.reduce((n, s) => n + Number(s.open), 0);
    if (rolled && back >= N && open >= N) break;
  }
  const doneAt = Date.now();
  await engineDone;
  await askAll(gens, { cmd: "restart-end" });
  const merge = (key: string) => {
    const out: Record<string, number> = {};
    for (const s of status) {
      for (const [k, v] of Object.entries(s[key] as Record<string, number>)) {
        out[k] = (out[k] ?? 0) + v;
      }
    }
    return out;
  };
  const closeTimes = status.flatMap((s) => s.closeTimes as number[]).map((t) => t - sigAt);
  const closes = merge("closes");
  const seen = Object.values(closes).reduce((a, b) => a + b, 0);
  if (seen < N) closes["no close event"] = N - seen;
  restarts.push({
    label: `${WORKERS > 1 ? "rolling restart of the workers" : "restart"}, agents ${
      ignoreHint ? "ignoring the reconnect delay (baseline)" : "honouring the reconnect delay"
    }`,
    closeP50: pct(closeTimes, 0.5) / 1000,
    closeMax: pct(closeTimes, 1) / 1000,
    backSeconds: (doneAt - sigAt) / 1000,
    afterEngineSeconds: Math.max(0, doneAt - rolledAt) / 1000,
    back: Math.min(back, open),
    closes,
    failures: merge("failures"),
  });
  await new Promise((r) => setTimeout(r, 5000)); // settle before the next restart
}
const afterRestart = engineStats(engine);

let failedAttempts = 0;
for (const g of gens) failedAttempts += await g.stop();
await engine.stop();
await db.drop();

const where = `${WORKERS > 1 ? `${WORKERS} workers on one port` : "one engine process"}, ${
  db.url ? "PostgreSQL server" : "embedded PGlite"
}, ${GENERATORS} generator process(es) on 127.0.0.1-${GENERATORS}, open-file limit ${nofile}`;
console.log(
  `agents: ${opened}/${N} sockets open ${upSeconds.toFixed(1)} s after the generators started ` +
    `(${ENROLLED} enrolled through auto-approval in ${enrollSeconds.toFixed(1)} s, ${
      fmt(ENROLLED / Math.max(enrollSeconds, 0.001))
    }/s; the rest seeded) [${where}]`,
);
const fmtMap = (m: Record<string, number>) =>
  Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(", ") ||
  "none";
for (const r of restarts) {
  const fiveXX = Object.entries(r.failures).filter(([k]) => /^5\d\d$/.test(k))
    .reduce((a, [, v]) => a + v, 0);
  console.log(
    `agents: ${r.label}: ${r.back}/${N} back ${r.backSeconds.toFixed(1)} s after the signal, ${
      r.afterEngineSeconds.toFixed(1)
    } s after the last ${WORKERS > 1 ? "worker" : "engine"} was serving again ` +
      `(closes reached agents ${r.closeP50.toFixed(1)} s (median) to ${
        r.closeMax.toFixed(1)
      } s after it); closes seen: ${fmtMap(r.closes)}; failed attempts: ${
        fmtMap(r.failures)
      } (${fiveXX} answered 5xx)`,
  );
}
console.log(
  `agents: engine RSS ${cpu1.rssMb.toFixed(0)} MB with ${N} sockets (${
    (cpu1.rssMb * 1024 / N).toFixed(1)
  } KB per agent; per process ${cpu1.perProcess.join(" + ")} MB; ${
    afterRestart.rssMb.toFixed(0)
  } MB after the restarts), CPU ${cpuPercent.toFixed(1)}% of one core at one heartbeat per ${
    HEARTBEAT_MS / 1000
  } s per agent (${(cpuPercent * 10_000 / N).toFixed(2)}% per 10,000 agents); generators ${
    ((genCpu / 100) / (SAMPLE_MS / 1000) * 100).toFixed(1)
  }% of a core, ${genRss.toFixed(0)} MB`,
);
console.log(
  `agents: heartbeat ack p50 ${pct(samples, 0.5).toFixed(1)} ms, p99 ${
    pct(samples, 0.99).toFixed(1)
  } ms (${samples.length} samples); one message to all: ${received}/${N} in ${deliverMs} ms; ` +
    `${failedAttempts} failed reconnect attempts in all`,
);
console.log(
  `agents: baseline GET /health ${fmt(baseline.requestsPerSecond)} req/s idle, ${
    fmt(underLoad.requestsPerSecond)
  } req/s with ${N} agents connected [${baseline.tool}]`,
);
Deno.exit(0);

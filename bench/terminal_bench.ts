/**
 * The remote terminal with real processes: engine processes, the production agent's
 * worker with a real shell on a real pseudo-terminal, and an operator socket client in
 * this process (acknowledging output at once, like a console that keeps up).
 *
 * - keystroke-to-echo latency p50/p99 (a key typed at the shell's prompt until its echo
 *   arrives) through one engine instance, and through two (operator on A, agent on B),
 *   next to a plain WebSocket echo measured in the same run;
 * - sustained output throughput of one session (`head -c N /dev/zero | tr`), through one
 *   and two instances, next to the same command read straight from a pseudo-terminal in
 *   this process (what the terminal itself delivers);
 * - engine memory per open session: an agent in this process holding many idle shells,
 *   each session on its own operator socket (a console tab each).
 *
 *   deno run -A bench/terminal_bench.ts
 *   BOREALIS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres deno run -A bench/terminal_bench.ts
 *
 * The two-instance figures need a PostgreSQL server (two processes cannot share the
 * embedded database): BOREALIS_BENCH_DATABASE_URL, else BOREALIS_TEST_DATABASE_URL.
 */
import { UnixPty } from "../agent/terminal/pty_unix.ts";
import type { TermSession } from "../plugins/terminal/testing/harness.ts";
import {
  type AgentProc,
  type EngineProc,
  startAgentProc,
  startEngineProc,
} from "../tests/helpers/terminal_processes.ts";
import { fmt } from "./lib/load.ts";

// The database is chosen before the test helpers read it.
const benchUrl = Deno.env.get("BOREALIS_BENCH_DATABASE_URL");
if (benchUrl) Deno.env.set("BOREALIS_TEST_DATABASE_URL", benchUrl);
const { createTestDatabase } = await import("../tests/helpers/test_db.ts");
const { OperatorClient } = await import("../plugins/terminal/testing/harness.ts");

const KEYS = Number(Deno.env.get("BENCH_TERMINAL_KEYS") ?? 300);
const FLOOD_MB = Number(Deno.env.get("BENCH_TERMINAL_FLOOD_MB") ?? 64);
// The engine's per-device and per-operator limits allow at most 100.
const SESSIONS = Math.min(100, Number(Deno.env.get("BENCH_TERMINAL_SESSIONS") ?? 100));
const here = new URL(".", import.meta.url).pathname;

if (Deno.build.os !== "linux") {
  console.log("terminal bench: Linux only (it drives real pseudo-terminals)");
  Deno.exit(0);
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const line = (label: string, xs: number[]) =>
  console.log(
    `  ${label.padEnd(44)} p50 ${pct(xs, 50).toFixed(2)} ms   p99 ${pct(xs, 99).toFixed(2)} ms`,
  );

/** Plain WebSocket echo, one byte at a time. */
async function baselineEcho(): Promise<number[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}fixtures/ws_echo.ts`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!/READY (\d+)/.test(buf)) buf += (await reader.read()).value ?? "";
  const port = /READY (\d+)/.exec(buf)![1];
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((r) => (ws.onopen = r));
  const times: number[] = [];
  for (let i = 0; i < KEYS; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      ws.onmessage = () => r();
      ws.send(JSON.stringify({ type: "terminal_input", data: { data: "eA==" } }));
    });
    times.push(performance.now() - t0);
  }
  ws.close();
  child.kill("SIGTERM");
  await child.status;
  return times;
}

/**
 * Keystrokes at the prompt: each `x` (and the backspace that removes it) until its echo.
 * Output is acknowledged every 50 keys, not between a key and the next: Deno's WebSocket
 * client (this process) sets no TCP_NODELAY, so two frames written back to back would
 * wait for the engine's delayed ACK (~40 ms) — an artefact of this client (browsers set
 * TCP_NODELAY), not of the terminal.
 */
async function keystrokes(t: TermSession): Promise<number[]> {
  const times: number[] = [];
  t.autoAck = false;
  for (let i = 0; i < KEYS; i++) {
    if (i % 50 === 0) {
      t.ack();
      await new Promise((r) => setTimeout(r, 20));
    }
    const key = i % 2 === 0 ? "x" : "\x7f";
    const before = t.received;
    const t0 = performance.now();
    t.type(key);
    while (t.received === before) {
      await new Promise<void>((r) => {
        const prev = t.client.onFrame;
        t.client.onFrame = (f) => {
          t.client.onFrame = prev;
          prev?.(f);
          r();
        };
      });
    }
    times.push(performance.now() - t0);
  }
  t.autoAck = true;
  t.ack();
  return times;
}

/** Seconds and bytes of a flood through a session. */
async function flood(t: TermSession): Promise<number> {
  t.keepText = 2048;
  const start = t.received;
  const t0 = performance.now();
  t.type(`head -c ${FLOOD_MB}M /dev/zero | tr '\\0' 'y'; echo FLOOD-$((2*21))\n`);
  await t.expect(/FLOOD-42/, 600_000);
  const seconds = (performance.now() - t0) / 1000;
  return (t.received - start) / 1_048_576 / seconds;
}

/** The same flood read straight from a pseudo-terminal in this process. */
async function ptyAlone(): Promise<number> {
  const pty = UnixPty.spawn({
    file: "/bin/sh",
    argv: ["sh", "-c", `head -c ${FLOOD_MB}M /dev/zero | tr '\\0' 'y'`],
    env: { PATH: "/usr/bin:/bin" },
    cols: 120,
    rows: 40,
  });
  let n = 0;
  const t0 = performance.now();
  for (let b; (b = await pty.read(4096)) !== null;) n += b.length;
  const mbps = n / 1_048_576 / ((performance.now() - t0) / 1000);
  await pty.close();
  return mbps;
}

async function openSession(engine: EngineProc, guid: string): Promise<TermSession> {
  const op = await OperatorClient.connect(engine.url, { Authorization: `Bearer ${engine.token}` });
  const t = await op.open(guid, { cols: 120, rows: 40 });
  await t.expect(/[#$] $/);
  return t;
}

const env = {
  BOREALIS_PLUGINS:
    "aegis,operators,directory,inventory,tokens,enrollment,assemblies,realtime,scheduler,watchdogs,alerts,agent_updates,terminal",
  BOREALIS_TERMINAL_MAX_PER_DEVICE: "100",
  BOREALIS_TERMINAL_MAX_PER_OPERATOR: "100",
  BOREALIS_SHUTDOWN_GRACE_MS: "2000",
};
const stops: Array<() => Promise<unknown>> = [];
try {
  console.log(
    `terminal bench: ${KEYS} keystrokes, a ${FLOOD_MB} MB flood, ${SESSIONS} idle sessions`,
  );
  const base = await baselineEcho();
  const ptyMbps = await ptyAlone();

  const db = await createTestDatabase();
  stops.push(() => db.drop());
  const fixture = `${here}fixtures/terminal_engine.ts`;
  const a = await startEngineProc({ ...db.env, ...env }, { console: false, fixture });
  stops.push(() => a.stop());
  const site = (await a.op("/api/sites", { json: { name: "Bench", description: "" } })).body;
  const agentA: AgentProc = await startAgentProc(a, { siteId: site.id, hostname: "bench-a" });
  stops.push(() => agentA.stop());
  // Memory per open session: an agent in this process (so it may hold more shells than the
  // production agent's 16) and an operator socket per session.
  const { Agent } = await import("../tests/agent/agent.ts");
  const { AgentSocket } = await import("../tests/agent/socket.ts");
  const { GrantVerifier } = await import("../agent/terminal/grant.ts");
  const { TerminalHost } = await import("../agent/terminal/host.ts");
  const token = await a.op(`/api/sites/${site.id}/install-tokens`, { json: { note: "bench" } });
  const memAgent = await Agent.open({ server: a.url, hostname: "bench-memory" });
  await memAgent.enroll({ installToken: token.body.token });
  const ref: { socket?: InstanceType<typeof AgentSocket> } = {};
  const host = new TerminalHost({
    send: (f) => (ref.socket?.open ? (ref.socket.send(f), true) : false),
    grants: new GrantVerifier({
      signingKey: memAgent.state.signing_key ?? "",
      guid: () => memAgent.state.guid,
    }),
    maxSessions: SESSIONS + 1,
  });
  ref.socket = new AgentSocket(memAgent, {
    server: a.url,
    heartbeat: false,
    reconnect: false,
    keepFrames: 0,
    onFrame: (f) => void host.onFrame(f),
  });
  await ref.socket.start();
  stops.push(async () => {
    await host.closeAll("bench finished");
    ref.socket?.stop();
  });
  // Heap after full collections, before and after (RSS moves with the allocator's mood).
  await new Promise((r) => setTimeout(r, 1000));
  const before = await a.memory();
  // Baseline in the same run: the same number of operator sockets with no session.
  const sockets = [];
  for (let i = 0; i < SESSIONS; i++) {
    sockets.push(
      await OperatorClient.connect(a.url, { Authorization: `Bearer ${a.token}` }),
    );
  }
  await new Promise((r) => setTimeout(r, 1000));
  const withSockets = await a.memory();
  const open: TermSession[] = [];
  for (const c of sockets) {
    const t = await c.open(memAgent.state.guid!, { cols: 120, rows: 40 });
    await t.expect(/[#$] $/);
    open.push(t);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const after = await a.memory();
  const kib = (bytes: number) => fmt(bytes / SESSIONS / 1024);
  console.log(`engine memory (heap after full GC; ${SESSIONS} idle shells):`);
  console.log(
    `  ${"an operator socket, no session (baseline)".padEnd(44)} ${
      kib(withSockets.heap - before.heap)
    } KiB each`,
  );
  console.log(
    `  ${"an open terminal session on it".padEnd(44)} ${
      kib(after.heap - withSockets.heap)
    } KiB each (heap ${fmt(before.heap / 1_048_576)} → ${fmt(after.heap / 1_048_576)} MiB)`,
  );
  for (const t of open) {
    await t.close().catch(() => {});
    t.client.close();
  }
  const one = await openSession(a, agentA.guid()!);
  const oneKeys = await keystrokes(one);
  const oneMbps = await flood(one);
  await one.close();
  one.client.close();

  console.log("keystroke to echo:");
  line("plain WebSocket echo (baseline)", base);
  line("through one engine instance", oneKeys);

  let twoMbps: number | null = null;
  if (db.url) {
    const b = await startEngineProc({ ...db.env, ...env }, { console: false, fixture });
    stops.push(() => b.stop());
    const agentB = await startAgentProc(a, { siteId: site.id, hostname: "bench-b", server: b.url });
    stops.push(() => agentB.stop());
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      const list = (await a.op("/api/agents")).body.agents as Array<{ guid: string }>;
      if (list.some((x) => x.guid === agentB.guid())) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const two = await openSession(a, agentB.guid()!);
    const twoKeys = await keystrokes(two);
    twoMbps = await flood(two);
    await two.close();
    two.client.close();
    line("through two instances (operator A, agent B)", twoKeys);
  } else {
    console.log(
      "  through two instances: skipped (set BOREALIS_BENCH_DATABASE_URL to a PostgreSQL server)",
    );
  }

  console.log("output throughput of one session:");
  console.log(
    `  ${"a pseudo-terminal read in-process (baseline)".padEnd(44)} ${fmt(ptyMbps)} MB/s`,
  );
  console.log(`  ${"through one engine instance".padEnd(44)} ${fmt(oneMbps)} MB/s`);
  if (twoMbps !== null) {
    console.log(`  ${"through two instances".padEnd(44)} ${fmt(twoMbps)} MB/s`);
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {});
}

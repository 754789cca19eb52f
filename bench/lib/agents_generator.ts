/**
 * One load-generator process of bench/agents_bench.ts: a share of the simulated agents,
 * each holding its socket to the engine and heartbeating. A process holds at most ~20,000
 * sockets here (the open-file limit), and one address pair offers ~28,000 ephemeral
 * ports, so the bench runs several of these, each to its own loopback address
 * (127.0.0.x: all of 127/8 reaches the engine listening on 0.0.0.0).
 *
 * Driven over stdin/stdout with one JSON object per line: commands in
 * (`{"cmd": "sample", "ms": 30000}`), answers out (`{"reply": "sample", …}`).
 *
 *   (started by bench/agents_bench.ts with BENCH_GEN_* variables; not run by hand)
 *
 * @module
 */
import { Agent } from "../../tests/agent/agent.ts";
import { AgentSocket, shutdownHint } from "../../tests/agent/socket.ts";

const env = (k: string) => Deno.env.get(k) ?? "";
const server = env("BENCH_GEN_SERVER");
const count = Number(env("BENCH_GEN_AGENTS"));
const enrolled = Number(env("BENCH_GEN_ENROLLED") || 0);
const heartbeatMs = Number(env("BENCH_GEN_HEARTBEAT_MS") || 30_000);
const token = env("BENCH_GEN_TOKEN");
const code = env("BENCH_GEN_CODE");
const siteId = Number(env("BENCH_GEN_SITE_ID"));
const tag = env("BENCH_GEN_TAG") || "g";

const send = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

// The first `enrolled` agents enroll through auto-approval (the real path, timed); the
// rest are seeded with tokens bound to their own keys (a bench-only route), so 50,000
// agents do not spend many minutes enrolling one by one.
const agents: Agent[] = [];
const t0 = performance.now();
for (let i = 0; i < enrolled; i += 50) {
  agents.push(
    ...await Promise.all(
      Array.from({ length: Math.min(50, enrolled - i) }, async (_, j) => {
        const a = await Agent.open({
          server,
          hostname: `${tag}-e${i + j}-${crypto.randomUUID().slice(0, 4)}`,
          sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 250))),
        });
        await a.enroll(code, { timeoutMs: 120_000 });
        return a;
      }),
    ),
  );
}
const enrollSeconds = (performance.now() - t0) / 1000;
const t1 = performance.now();
for (let i = enrolled; i < count; i += 1000) {
  const batch = await Promise.all(
    Array.from(
      { length: Math.min(1000, count - i) },
      (_, j) =>
        Agent.open({ server, hostname: `${tag}-s${i + j}-${crypto.randomUUID().slice(0, 4)}` }),
    ),
  );
  const res = await fetch(`${server}/api/bench/seed`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      site_id: siteId,
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
const seedSeconds = (performance.now() - t1) / 1000;

let received = 0;
let firstPingAt = 0;
let lastPingAt = 0;
let counting = false;
let back = new Set<string>();
let closes = new Map<string, number>();
let failures = new Map<string, number>();
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
const t2 = performance.now();
for (let i = 0; i < sockets.length; i += 200) {
  await Promise.all(sockets.slice(i, i + 200).map((s) => s.start({ keepTrying: true })));
}
const connectSeconds = (performance.now() - t2) / 1000;

// Heartbeats spread over the interval, each timed until its ack.
let latencies: number[] = [];
let sampling = false;
let stopBeats = false;
for (const s of sockets) {
  (async () => {
    await new Promise((r) => setTimeout(r, Math.random() * heartbeatMs));
    while (!stopBeats) {
      const start = performance.now();
      try {
        await s.request("heartbeat", { metrics: { cpu_percent: Math.random() * 100 } }, 10_000);
        if (sampling) latencies.push(performance.now() - start);
      } catch { /* missing acks show as fewer samples */ }
      await new Promise((r) => setTimeout(r, heartbeatMs));
    }
  })();
}
send({
  reply: "ready",
  agents: agents.length,
  open: sockets.filter((s) => s.connects > 0).length,
  enrollSeconds,
  seedSeconds,
  connectSeconds,
});

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buf = "";
for await (const chunk of lines) {
  buf += chunk;
  let nl: number;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const msg = JSON.parse(buf.slice(0, nl)) as { cmd: string; ms?: number; ignoreHint?: boolean };
    buf = buf.slice(nl + 1);
    if (msg.cmd === "sample") {
      latencies = [];
      sampling = true;
      await new Promise((r) => setTimeout(r, msg.ms));
      sampling = false;
      send({ reply: "sample", latencies: latencies.map((x) => Math.round(x * 100) / 100) });
    } else if (msg.cmd === "pings") {
      send({ reply: "pings", received, firstPingAt, lastPingAt });
    } else if (msg.cmd === "restart-begin") {
      for (const s of sockets) s.o.ignoreShutdownHint = msg.ignoreHint === true;
      back = new Set();
      closes = new Map();
      failures = new Map();
      closeTimes = [];
      counting = true;
      send({ reply: "restart-begin" });
    } else if (msg.cmd === "restart-status") {
      send({
        reply: "restart-status",
        back: back.size,
        open: sockets.reduce((n, s) => n + (s.open ? 1 : 0), 0),
        closes: Object.fromEntries(closes),
        failures: Object.fromEntries(failures),
        closeTimes,
      });
    } else if (msg.cmd === "restart-end") {
      counting = false;
      send({ reply: "restart-end" });
    } else if (msg.cmd === "stop") {
      stopBeats = true;
      for (const s of sockets) s.stop();
      send({
        reply: "stop",
        failedAttempts: sockets.reduce((n, s) => n + s.failedAttempts, 0),
      });
      Deno.exit(0);
    }
  }
}

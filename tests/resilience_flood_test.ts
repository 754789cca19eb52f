/**
 * Connection floods against a real engine process under a lowered open-file limit:
 * idle connections past the limit, with the budget derived from the limit and with caps
 * set (wrongly) above it so that accepting runs out of descriptors. Either way the engine
 * stays up, `/health` answers, and agents reconnect once the flood stops.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../core/clock.ts";
import realtime from "../plugins/realtime/mod.ts";
import { Agent } from "./agent/agent.ts";
import { identityPlugins } from "./agent/harness.ts";
import { AgentSocket } from "./agent/socket.ts";
import {
  type EngineProcess,
  hasProgram,
  startEngineProcess,
  until,
} from "./helpers/engine_process.ts";
import { createOperator } from "./helpers/operators.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const plugins = [...identityPlugins, realtime];
const canLimit = await hasProgram("prlimit");
if (!canLimit) console.warn("prlimit (util-linux) is not installed: the flood tests are skipped");

/** An admin session and a site written to `db` by an in-process engine (then stopped). */
async function prepare(db: TestDatabase) {
  const t = await startTestEngine({ plugins, db, clock: new ManualClock(Date.now()) });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const res = await t.request("/api/sites", {
      method: "POST",
      headers: admin.headers,
      json: { name: "Flood", description: "" },
    });
    assert.equal(res.status, 201);
    const site = await res.json() as { enrollment_code: string };
    return { headers: admin.headers, code: site.enrollment_code };
  } finally {
    await t.stop();
  }
}

/** Enrolls `n` agents over real HTTP and approves them. */
async function enrollAgents(
  engine: EngineProcess,
  admin: { headers: Record<string, string>; code: string },
  n: number,
): Promise<Agent[]> {
  const agents: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const a = await Agent.open({ server: engine.url, hostname: `flood-agent-${i}` });
    await a.requestEnrollment(admin.code);
    agents.push(a);
  }
  const list = await (await fetch(`${engine.url}/api/admin/device-approvals?status=pending`, {
    headers: admin.headers,
  })).json() as { approvals: Array<{ id: string }> };
  for (const row of list.approvals) {
    const r = await fetch(`${engine.url}/api/admin/device-approvals/${row.id}/approve`, {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(r.status, 200, await r.text());
  }
  for (const a of agents) await a.enroll(admin.code);
  return agents;
}

/** Opens idle TCP connections as fast as it can; refused ones are counted, not fatal. */
async function flood(port: number, count: number): Promise<{ open: Deno.Conn[]; failed: number }> {
  const open: Deno.Conn[] = [];
  let failed = 0;
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const got = await Promise.allSettled(
      Array.from(
        { length: Math.min(batch, count - i) },
        () => Deno.connect({ hostname: "127.0.0.1", port }),
      ),
    );
    for (const g of got) g.status === "fulfilled" ? open.push(g.value) : failed++;
  }
  return { open, failed };
}

async function healthAnswers(url: string, withinMs: number): Promise<boolean> {
  const end = Date.now() + withinMs;
  while (Date.now() < end) {
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      const body = await r.json();
      if (r.status === 200 && body.status === "ok") return true;
    } catch { /* refused or reset: try again */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function scenario(nofile: number, env: Record<string, string>, floodSize: number) {
  const db = await createTestDatabase();
  let engine: EngineProcess | undefined;
  const sockets: AgentSocket[] = [];
  let conns: Deno.Conn[] = [];
  try {
    const admin = await prepare(db);
    engine = await startEngineProcess({
      nofile,
      env: {
        ...db.env,
        BOREALIS_PLUGINS: plugins.map((p) => p.name).join(","),
        BOREALIS_HTTP_HEADER_TIMEOUT_MS: "1500",
        ...env,
      },
    });
    const agents = await enrollAgents(engine, admin, 4);

    // The flood: idle connections, several times the open-file limit, held open.
    const f = await flood(engine.port, floodSize);
    conns = f.open;
    // Agents come back during the flood (their sockets were closed) and keep trying.
    for (const a of agents) {
      const s = new AgentSocket(a, {
        server: engine.url,
        heartbeat: false,
        backoffBaseMs: 100,
        backoffCapMs: 1000,
      });
      sockets.push(s);
      void s.start({ keepTrying: true });
    }
    assert.ok(await healthAnswers(engine.url, 20_000), "GET /health answered during the flood");
    assert.equal(engine.exited, false, "the engine is alive during the flood");

    // Another wave on top, then the flood stops.
    const more = await flood(engine.port, floodSize);
    conns.push(...more.open);
    await new Promise((r) => setTimeout(r, 2000)); // beyond the header timeout: cycling
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by the engine */ }
    }
    conns = [];

    assert.equal(engine.exited, false, "the engine survived the flood");
    assert.ok(await healthAnswers(engine.url, 20_000), "GET /health answers after the flood");
    await until(() => sockets.every((s) => s.open), 60_000, "every agent reconnected");
    for (const s of sockets) {
      const ack = await s.request("ping", {}, 10_000);
      assert.equal(ack.type, "pong");
    }
    return engine;
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    for (const s of sockets) s.stop();
    if (engine) {
      const status = await engine.stop();
      if (!status.success && !engine.lines.some((l) => /stopped/.test(l))) {
        console.error(engine.lines.slice(-40).join("\n"));
      }
    }
    await db.drop();
  }
}

Deno.test({
  name:
    "flood: idle connections past a lowered open-file limit — the engine lives, /health answers, agents reconnect",
  ignore: !canLimit,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const engine = await scenario(384, {}, 1200);
    // The budget came from the limit, so the listener shed connections instead of
    // running out of descriptors, and said so.
    assert.ok(
      engine.lines.some((l) => /connections: up to \d+ \(open-file limit 384/.test(l)),
      "the budget was derived from the open-file limit",
    );
    assert.ok(engine.lines.some((l) => /WARNING-http: connections under pressure/.test(l)));
  },
});

Deno.test({
  name:
    "flood: caps configured above the open-file limit are lowered to the descriptor budget, and the flood is still absorbed",
  ignore: !canLimit,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const engine = await scenario(384, {
      BOREALIS_HTTP_MAX_CONNECTIONS: "100000",
      BOREALIS_HTTP_MAX_PENDING_PER_ADDRESS: "100000",
    }, 1200);
    assert.ok(
      engine.lines.some((l) =>
        /WARNING-kernel: BOREALIS_HTTP_MAX_CONNECTIONS=100000 is above the descriptor budget/
          .test(l)
      ),
    );
  },
});

Deno.test({
  name:
    "flood: when accepting runs out of descriptors the listener logs, sheds idle connections, backs off and keeps serving",
  ignore: !canLimit,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The listener alone (no database, no other threads that need descriptors), with
    // caps far above its limit: only the accept path meets EMFILE.
    const child = new Deno.Command("prlimit", {
      args: [
        "--nofile=160:160",
        Deno.execPath(),
        "run",
        "-A",
        new URL("./fixtures/listener_only.ts", import.meta.url).pathname,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        const parts = buf.split("\n");
        buf = parts.pop() ?? "";
        lines.push(...parts);
      }
    };
    void collect(child.stdout).catch(() => {});
    void collect(child.stderr).catch(() => {});
    let exited = false;
    child.status.then(() => (exited = true));
    let conns: Deno.Conn[] = [];
    try {
      await until(() => lines.some((l) => l.startsWith("READY ")), 30_000, "listener ready");
      const port = Number(lines.find((l) => l.startsWith("READY "))!.split(" ")[1]);
      conns = (await flood(port, 600)).open;
      await until(
        () => lines.some((l) => /accepting a connection failed \(Too many open files/.test(l)),
        20_000,
        "the accept error logged",
      );
      assert.ok(await healthAnswers(`http://127.0.0.1:${port}`, 20_000), "answers during");
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed by the listener */ }
      }
      conns = [];
      assert.ok(await healthAnswers(`http://127.0.0.1:${port}`, 20_000), "answers after");
      assert.equal(exited, false);
      await until(() => lines.some((l) => /connections under pressure: .* accept errors/.test(l)));
    } finally {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    }
  },
});

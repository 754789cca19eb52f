/**
 * A clean shutdown for every agent, with a real engine process and real sockets: on
 * SIGTERM every agent socket gets the engine's own close frame — code 4503 with a
 * reconnect delay drawn for that agent (docs/agent-protocol.md, "Close codes") — before
 * the process exits, and the reference agent comes back no earlier than it was told to.
 */
import assert from "node:assert/strict";
import { Agent } from "./agent/agent.ts";
import { AgentSocket, shutdownHint } from "./agent/socket.ts";
import { createTestDatabase } from "./helpers/test_db.ts";

const ENGINE = new URL("../bench/fixtures/agents_engine.ts", import.meta.url).pathname;
const N = 300;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

interface Running {
  child: Deno.ChildProcess;
  code: string;
  token: string;
  siteId: string;
}

async function startEngine(env: Record<string, string>): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ENGINE],
    env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const m = /READY \d+ (\S+) (\S+) (\S+)/.exec(buf);
    if (m) {
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return { child, code: m[1]!, token: m[2]!, siteId: m[3]! };
    }
  }
  child.kill("SIGKILL");
  throw new Error(`engine did not start: ${buf}`);
}

async function until(pred: () => boolean, what: string, ms = 60_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test({
  name:
    "shutdown: on SIGTERM every agent socket gets close 4503 with its own reconnect delay before the process exits; agents honour it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const db = await createTestDatabase();
    const port = freePort();
    const server = `http://127.0.0.1:${port}`;
    const env = {
      ...Deno.env.toObject(),
      ...db.env,
      BOREALIS_PORT: String(port),
      BOREALIS_SHUTDOWN_GRACE_MS: "15000",
      BOREALIS_AGENT_RECONNECT_MAX_SECONDS: "5",
      // Every agent here shares one loopback address.
      BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND: "0",
    };
    let engine: Running | undefined;
    const sockets: AgentSocket[] = [];
    try {
      engine = await startEngine(env);
      const agents = await Promise.all(
        Array.from({ length: N }, (_, i) => Agent.open({ server, hostname: `bye-${i}` })),
      );
      const seeded = await fetch(`${server}/api/bench/seed`, {
        method: "POST",
        headers: { authorization: `Bearer ${engine.token}`, "content-type": "application/json" },
        body: JSON.stringify({
          site_id: Number(engine.siteId),
          agents: agents.map((a) => ({
            hostname: a.state.hostname,
            public_key_spki: a.state.public_key_spki,
          })),
        }),
      });
      assert.equal(seeded.status, 200);
      const issued = (await seeded.json()).agents as Array<
        { guid: string; access_token: string; expires_in: number; refresh_token: string }
      >;
      const closes: Array<{ code: number; reason: string; at: number }> = [];
      const attempts: number[][] = agents.map(() => []);
      const welcomes: number[][] = agents.map(() => []);
      agents.forEach((a, i) => {
        const t = issued[i]!;
        Object.assign(a.state, {
          guid: t.guid,
          access_token: t.access_token,
          access_expires_at: Date.now() + t.expires_in * 1000,
          refresh_token: t.refresh_token,
        });
        sockets.push(
          new AgentSocket(a, {
            server,
            heartbeat: false,
            backoffBaseMs: 200,
            backoffCapMs: 1000,
            onClose: (e) => void (closes[i] = { code: e.code, reason: e.reason, at: Date.now() }),
            onAttempt: () => void attempts[i]!.push(Date.now()),
            onFrame: (f) => {
              if (f.type === "welcome") welcomes[i]!.push(Date.now());
            },
          }),
        );
      });
      for (let i = 0; i < N; i += 50) {
        await Promise.all(sockets.slice(i, i + 50).map((s) => s.start()));
      }
      await until(() => welcomes.every((w) => w.length === 1), "every agent welcomed");

      engine.child.kill("SIGTERM");
      const status = await engine.child.status;
      const exitedAt = Date.now();
      engine = undefined;
      assert.equal(status.code, 0);
      // Every close frame arrived before the process was gone.
      assert.equal(closes.filter(Boolean).length, N, "every socket closed");
      const hints: number[] = [];
      for (const [i, c] of closes.entries()) {
        assert.equal(c.code, 4503, `socket ${i}: ${c.code} ${c.reason}`);
        assert.ok(c.at <= exitedAt, `socket ${i} closed after the process exited`);
        const hint = shutdownHint(c);
        assert.ok(hint !== null && hint >= 1000 && hint < 5000, `socket ${i}: ${c.reason}`);
        hints.push(hint);
      }
      assert.ok(new Set(hints).size > N / 2, "the delays are drawn per agent");

      // Nobody tries before its delay; everybody returns once the engine is back.
      engine = await startEngine({
        ...env,
        BENCH_ADMIN_TOKEN: "unused",
        BENCH_CODE: "unused",
        BENCH_SITE_ID: "0",
      });
      await until(() => welcomes.every((w) => w.length === 2), "every agent back");
      for (const [i, c] of closes.entries()) {
        const first = attempts[i]![0]!;
        assert.ok(first - c.at >= hints[i]! - 25, `agent ${i} came back early`);
      }
    } finally {
      for (const s of sockets) s.stop();
      if (engine) {
        engine.child.kill("SIGTERM");
        await engine.child.status;
      }
      await db.drop();
    }
  },
});

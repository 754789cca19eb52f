/**
 * Two engine processes on one PostgreSQL server: instance A runs in this process (with a
 * manual clock that starts at the real time), instance B is a real `main.ts start`
 * process sharing A's database and vault key. An agent connected to B receives a message
 * sent through A; when B is killed (no goodbye), an operator on A sees B's agent go
 * offline once A's clock passes the offline threshold.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../core/clock.ts";
import realtime, { realtimeKey } from "../plugins/realtime/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { AgentSocket } from "./agent/socket.ts";
import { createOperator } from "./helpers/operators.ts";
import { serverUrl } from "./helpers/test_db.ts";

const plugins = [...identityPlugins, realtime];
const root = new URL("..", import.meta.url).pathname;

async function until(pred: () => boolean | Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

Deno.test({
  name:
    "realtime processes: an agent on process B gets a message sent through A; A's operator sees it go offline when B dies",
  ignore: !serverUrl,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startIdentity({ plugins, clock: new ManualClock(Date.now()) });
    const dataB = await Deno.makeTempDir({ prefix: "borealis-instance-b-" });
    const portB = freePort();
    let b: Deno.ChildProcess | undefined;
    let s: AgentSocket | undefined;
    let ws: WebSocket | undefined;
    try {
      const { port } = await h.t.engine.listen();
      const a = await h.agent({ hostname: "process-agent" });
      await a.requestEnrollment(h.site.enrollment_code);
      await h.approve("process-agent");
      await a.enroll(h.site.enrollment_code);

      b = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${root}main.ts`, "start"],
        cwd: root,
        env: {
          BOREALIS_DATABASE_URL: h.t.db.url!,
          BOREALIS_DATA_DIR: dataB,
          BOREALIS_PORT: String(portB),
          BOREALIS_AEGIS_KEY_FILE: `${h.t.db.dataDir}/aegis.key`,
          BOREALIS_PLUGINS: plugins.map((p) => p.name).join(","),
          BOREALIS_LIVENESS_FLUSH_SECONDS: "1",
        },
        stdout: "null",
        stderr: "null",
      }).spawn();
      const serverB = `http://127.0.0.1:${portB}`;
      await until(async () => {
        try {
          const r = await fetch(`${serverB}/health/ready`);
          await r.body?.cancel();
          return r.ok;
        } catch {
          return false;
        }
      }, 60_000);

      // The agent's proofs use A's clock (the real time), which B accepts.
      s = new AgentSocket(a, { server: serverB, heartbeat: false, reconnect: false });
      await s.start();
      await s.waitFor((f) => f.type === "welcome");
      await s.request("heartbeat", { metrics: { cpu_percent: 5 } });

      // A message sent through A is routed to B over LISTEN/NOTIFY.
      const channel = h.t.engine.service(realtimeKey);
      await until(async () => {
        const r = await channel.send(a.state.guid!, { type: "ping_from_a", id: "via-a", data: {} });
        return r.status === "routed";
      });
      await s.waitFor((f) => f.id === "via-a");

      // An operator on A watches device status.
      const admin = await createOperator(h.t, { role: "Admin" });
      const frames: Array<{ type: string; data?: { hostname?: string; status?: string } }> = [];
      ws = new (WebSocket as unknown as new (
        u: string,
        o: { headers: Record<string, string> },
      ) => WebSocket)(`ws://127.0.0.1:${port}/api/ws`, { headers: admin.headers });
      ws.onmessage = (e) => void frames.push(JSON.parse(String(e.data)));
      await new Promise((r) => (ws!.onopen = r));
      ws.send(JSON.stringify({ type: "subscribe", data: { topics: ["device_status"] } }));
      await until(() => frames.some((f) => f.type === "subscribe_ack"));

      // B flushed last_seen to the database; now it dies without closing anything.
      await until(async () => {
        const [row] = await h.t.engine.sql<{ n: number }[]>`
          select count(*)::int as n from agent_connections c join devices d on d.guid = c.guid
          where d.hostname = 'process-agent' and d.last_seen is not null`;
        return (row?.n ?? 0) === 1;
      });
      b.kill("SIGKILL");
      await b.status;
      b = undefined;

      await h.t.clock.advance(10 * 60_000);
      await h.t.engine.tasks.idle();
      await until(() =>
        frames.some((f) =>
          f.type === "agent_status_changed" && f.data?.hostname === "process-agent" &&
          f.data?.status === "offline"
        )
      );
      assert.ok(true);
    } finally {
      ws?.close();
      s?.stop();
      if (b) {
        b.kill("SIGKILL");
        await b.status;
      }
      await h.close();
      await Deno.remove(dataB, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * Two engine instances on one PostgreSQL server: messages reach an agent connected to
 * the other instance, and operators on one instance see agents of the other go offline.
 */
import assert from "node:assert/strict";
import realtime, { realtimeKey } from "../plugins/realtime/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { AgentSocket } from "./agent/socket.ts";
import { createOperator } from "./helpers/operators.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const plugins = [...identityPlugins, realtime];

async function until(pred: () => boolean, ms = 8000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name:
    "realtime cluster: a message sent through instance B reaches an agent on A; B's operator sees A's agent go offline",
  ignore: !serverUrl,
  async fn() {
    const h = await startIdentity({ plugins });
    const b = await startTestEngine({ plugins, db: h.t.db, clock: h.t.clock });
    try {
      const { port } = await h.t.engine.listen();
      const { port: portB } = await b.engine.listen();
      const serverA = `http://127.0.0.1:${port}`;
      const a = await h.agent({ hostname: "cluster-agent" });
      await a.requestEnrollment(h.site.enrollment_code);
      await h.approve("cluster-agent");
      await a.enroll(h.site.enrollment_code);
      const s = new AgentSocket(a, { server: serverA, heartbeat: false, reconnect: false });
      await s.start();
      await s.waitFor((f) => f.type === "welcome");

      const result = await b.engine.service(realtimeKey).send(a.state.guid!, {
        type: "quick_job_run",
        id: "via-b",
        data: {},
      });
      assert.equal(result.status, "routed");
      await s.waitFor((f) => f.id === "via-b");

      const admin = await createOperator(b, { role: "Admin" });
      const frames: Array<{ type: string; data?: { hostname?: string; status?: string } }> = [];
      const ws = new (WebSocket as unknown as new (
        u: string,
        o: { headers: Record<string, string> },
      ) => WebSocket)(
        `ws://127.0.0.1:${portB}/api/ws`,
        { headers: admin.headers },
      );
      ws.onmessage = (e) => void frames.push(JSON.parse(String(e.data)));
      await new Promise((r) => (ws.onopen = r));
      ws.send(JSON.stringify({ type: "subscribe", data: { topics: ["device_status"] } }));
      await until(() => frames.some((f) => f.type === "subscribe_ack"));

      s.stop(); // the agent goes away from A
      await h.t.clock.advance(5 * 60_000);
      await h.t.engine.tasks.idle();
      await b.engine.tasks.idle();
      await until(() =>
        frames.some((f) =>
          f.type === "agent_status_changed" && f.data?.hostname === "cluster-agent" &&
          f.data?.status === "offline"
        )
      );
      ws.close();
    } finally {
      await b.stop();
      await h.close();
    }
  },
});

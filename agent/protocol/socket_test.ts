import assert from "node:assert/strict";
import { Agent } from "./client.ts";
import { AgentSocket, reconnectHintMs, shutdownHint } from "./socket.ts";

Deno.test("socket: reconnect hints in close reasons and frames", () => {
  assert.equal(reconnectHintMs('{"reconnect_after_ms": 1500}'), 1500);
  assert.equal(reconnectHintMs('{"retry_after": 3}'), 3000);
  assert.equal(reconnectHintMs("engine shutting down; retry_after_ms=2500"), 2500);
  assert.equal(reconnectHintMs("reconnect_after_ms: 700"), 700);
  assert.equal(reconnectHintMs("shutting down, retry after 5 s"), 5000);
  assert.equal(reconnectHintMs({ retry_after_ms: 10 }), 10);
  assert.equal(reconnectHintMs("engine shutting down; reconnect with jittered backoff"), undefined);
  assert.equal(reconnectHintMs("retry_after_ms=99999999"), 3_600_000);
  assert.equal(reconnectHintMs(""), undefined);
});

Deno.test({
  name: "socket: a 4503 close with a delay hint waits at least that long, with jitter on top",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const opened: number[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      opened.push(Date.now());
      socket.onopen = () => {
        if (opened.length === 1) socket.close(4503, "engine shutting down; retry_after_ms=400");
      };
      return response;
    });
    const agent = await Agent.open({ server: "http://x" });
    agent.state.access_token = "t";
    agent.state.refresh_token = "r";
    agent.state.access_expires_at = Date.now() + 3_600_000;
    const s = new AgentSocket(agent, {
      server: `http://127.0.0.1:${server.addr.port}`,
      heartbeat: false,
    });
    try {
      await s.start();
      const end = Date.now() + 10_000;
      while (opened.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      assert.equal(opened.length, 2);
      assert.ok(
        s.lastReconnectDelayMs! >= 400 && s.lastReconnectDelayMs! <= 800,
        String(s.lastReconnectDelayMs),
      );
      assert.ok(opened[1]! - opened[0]! >= 390);
    } finally {
      s.stop();
      await server.shutdown();
    }
  },
});

Deno.test("socket: the engine's own shutdown delay (4503, reconnect_after_ms) is waited exactly", () => {
  assert.equal(
    shutdownHint({ code: 4503, reason: "engine shutting down; reconnect_after_ms=2500" }),
    2500,
  );
  assert.equal(
    shutdownHint({ code: 1001, reason: "engine shutting down; reconnect_after_ms=2500" }),
    null,
  );
  assert.equal(shutdownHint({ code: 4503, reason: "engine shutting down" }), null);
  assert.equal(shutdownHint({ code: 4503, reason: "reconnect_after_ms=999999999" }), 600_000);
});

Deno.test({
  name: "socket: after a 4503 with this agent's delay it reconnects after exactly that delay",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const opened: number[] = [];
    let closedAt = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      opened.push(Date.now());
      socket.onopen = () => {
        if (opened.length === 1) {
          closedAt = Date.now();
          socket.close(4503, "engine shutting down; reconnect_after_ms=400");
        }
      };
      return response;
    });
    const agent = await Agent.open({ server: "http://x" });
    agent.state.access_token = "t";
    agent.state.refresh_token = "r";
    agent.state.access_expires_at = Date.now() + 3_600_000;
    const s = new AgentSocket(agent, {
      server: `http://127.0.0.1:${server.addr.port}`,
      heartbeat: false,
    });
    try {
      await s.start();
      const end = Date.now() + 10_000;
      while (opened.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      assert.equal(opened.length, 2);
      assert.equal(s.lastShutdownHintMs, 400);
      assert.equal(s.lastReconnectDelayMs, 400); // no jitter on top: the engine drew it
      assert.ok(opened[1]! - closedAt >= 390, String(opened[1]! - closedAt));
    } finally {
      s.stop();
      await server.shutdown();
    }
  },
});

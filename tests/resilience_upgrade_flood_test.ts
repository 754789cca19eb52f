/**
 * Upgrade floods next to reconnecting agents: anonymous `GET /api/agent/ws` is refused
 * before it costs an accept slot, an address sending garbage tokens is limited on its
 * own, and the shared accept rate stays for agents whose token verifies. The accept
 * limiter runs on the engine's manual clock, so its tokens are only those of the burst:
 * a flood that spent any of them would leave an agent with a 503.
 */
import assert from "node:assert/strict";
import realtime, { realtimeInternalsKey } from "../plugins/realtime/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { openAgentSocket } from "./agent/socket.ts";

const plugins = [...identityPlugins, realtime];

const upgradeHeaders = {
  upgrade: "websocket",
  connection: "upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};

Deno.test("upgrade flood: anonymous upgrades and one address's garbage tokens do not spend the accept budget; every agent gets in", async () => {
  const agents = 6;
  const h = await startIdentity({
    plugins,
    env: {
      BOREALIS_AGENT_WS_ACCEPT_PER_SECOND: "1",
      BOREALIS_AGENT_WS_ACCEPT_BURST: String(agents),
      BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND: "5",
      BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_BURST: "20",
      // The flood and the agents share this host's address; the listener's own
      // per-address cap is another test's subject.
      BOREALIS_HTTP_MAX_PENDING_PER_ADDRESS: "100000",
    },
  });
  const sockets: WebSocket[] = [];
  try {
    const { port } = await h.t.engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const enrolled = [];
    for (let i = 0; i < agents; i++) {
      const a = await h.agent({ hostname: `flood-${i}` });
      await a.requestEnrollment(h.site.enrollment_code);
      await h.approve(`flood-${i}`);
      await a.enroll(h.site.enrollment_code);
      enrolled.push(a);
    }
    const internals = h.t.engine.service(realtimeInternalsKey);

    // Anonymous upgrades over real connections, interleaved with the agents connecting.
    const anonymous = Array.from({ length: 300 }, async () => {
      const r = await fetch(`${server}/api/agent/ws`, { headers: upgradeHeaders });
      await r.body?.cancel();
      return r.status;
    });
    // Garbage tokens from another address (through the app: the test host has one).
    const garbage = Array.from({ length: 60 }, async () => {
      const r = await h.t.request("/api/agent/ws", {
        ip: "198.51.100.7",
        headers: { ...upgradeHeaders, Authorization: "DPoP not.a.token", DPoP: "x" },
      });
      await r.body?.cancel();
      return r.status;
    });
    const joined = Promise.allSettled(enrolled.map((a) => openAgentSocket(a, server)));
    const statuses = await Promise.all(anonymous);
    const garbageStatuses = await Promise.all(garbage);
    for (const j of await joined) {
      if (j.status === "rejected") throw j.reason;
      sockets.push(j.value);
    }

    assert.deepEqual(new Set(statuses), new Set([401]), "every anonymous upgrade is a 401");
    assert.equal(garbageStatuses.filter((s) => s === 401).length, 20, "the burst of one address");
    assert.equal(garbageStatuses.filter((s) => s === 429).length, 40, "then 429 for it alone");
    assert.equal(sockets.filter((s) => s.readyState === WebSocket.OPEN).length, agents);
    assert.equal(internals.limiter.rejected, 0, "no agent was turned away by the accept rate");
    assert.equal(internals.perAddress.rejected, 40);

    // The budget went to the agents only: the next valid upgrade finds it spent.
    const extra = enrolled[0]!;
    await extra.ensureFresh();
    const url = `${server}/api/agent/ws`;
    const res = await fetch(url, {
      headers: {
        ...upgradeHeaders,
        Authorization: `DPoP ${extra.state.access_token}`,
        DPoP: await extra.proof("GET", url, { accessToken: extra.state.access_token! }),
      },
    });
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    await res.body?.cancel();
  } finally {
    for (const s of sockets) s.close();
    await h.close();
  }
});

Deno.test("upgrade flood: a 429 for one address carries Retry-After and ends when its bucket refills", async () => {
  const h = await startIdentity({
    plugins,
    env: {
      BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND: "2",
      BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_BURST: "2",
    },
  });
  try {
    const hit = async () => {
      const r = await h.t.request("/api/agent/ws", {
        ip: "203.0.113.9",
        headers: { ...upgradeHeaders, Authorization: "DPoP not.a.token" },
      });
      await r.body?.cancel();
      return r;
    };
    assert.equal((await hit()).status, 401);
    assert.equal((await hit()).status, 401);
    const limited = await hit();
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "1");
    await h.t.clock.advance(1000);
    assert.equal((await hit()).status, 401);
  } finally {
    await h.close();
  }
});

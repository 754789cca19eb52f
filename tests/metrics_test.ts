/**
 * The Prometheus endpoint, scraped over its own listener while real agents hold real
 * sockets to the engine: the figures operators alert on move with what the agents do.
 */
import assert from "node:assert/strict";
import realtime from "../plugins/realtime/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { AgentSocket } from "./agent/socket.ts";

const TOKEN = "metrics-token-0123456789";

/** Parses exposition text into `name{labels}` → value (labels as written). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The sum of every series of `name` whose labels include all of `having`. */
function sum(m: Map<string, number>, name: string, having: string[] = []): number {
  let total = 0;
  for (const [k, v] of m) {
    const base = k.includes("{") ? k.slice(0, k.indexOf("{")) : k;
    if (base === name && having.every((h) => k.includes(h))) total += v;
  }
  return total;
}

Deno.test("metrics: GET /metrics on its own port, token required, figures move while agents are connected", async () => {
  const h = await startIdentity({
    plugins: [...identityPlugins, realtime],
    env: { BOREALIS_METRICS_PORT: "0", BOREALIS_METRICS_TOKEN: TOKEN },
  });
  const sockets: AgentSocket[] = [];
  try {
    const { port } = await h.t.engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const addr = await h.t.engine.listenMetrics();
    assert.ok(addr && addr.port !== port, "metrics have a listener of their own");
    assert.equal(addr.hostname, "127.0.0.1", "loopback unless told otherwise");
    const metricsUrl = `http://127.0.0.1:${addr.port}/metrics`;
    const scrape = async () => {
      const res = await fetch(metricsUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      return parse(await res.text());
    };

    // Without the token, or with a wrong one: 401 and no figures.
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}x` }] as HeadersInit[]) {
      const res = await fetch(metricsUrl, { headers });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error, "unauthorized");
    }
    // Not served on the engine's own port.
    const onMain = await fetch(`${server}/metrics`);
    assert.equal(onMain.status, 404);
    await onMain.body?.cancel();

    const before = await scrape();
    assert.equal(sum(before, "borealis_agents_connected"), 0);
    assert.ok(sum(before, "borealis_process_resident_memory_bytes") > 10_000_000);
    assert.ok(sum(before, "borealis_process_open_fds") > 0);
    assert.equal(sum(before, "borealis_db_pool_size"), h.t.engine.settings.dbPoolSize);
    assert.ok(sum(before, "borealis_db_roundtrip_seconds") >= 0);

    const agents = [];
    for (const name of ["m-1", "m-2", "m-3"]) {
      const a = await h.agent({ hostname: name });
      await a.requestEnrollment(h.site.enrollment_code);
      await h.approve(name);
      await a.enroll(h.site.enrollment_code);
      agents.push(a);
    }
    // One refused upgrade (no credentials), then three real sockets.
    const refused = await fetch(`${server}/api/agent/ws`, { headers: { upgrade: "websocket" } });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    for (const a of agents) {
      const s = new AgentSocket(a, { server, heartbeat: false, reconnect: false });
      await s.start();
      await s.waitFor((f) => f.type === "welcome");
      sockets.push(s);
    }
    for (const s of sockets) {
      for (let i = 0; i < 4; i++) {
        assert.equal(
          (await s.request("heartbeat", { metrics: { cpu_percent: 5 } })).type,
          "heartbeat_ack",
        );
      }
    }
    // And one authenticated HTTP request per agent.
    for (const a of agents) {
      const r = await a.call("POST", "/api/agent/heartbeat", { hostname: a.state.hostname });
      assert.equal(r.status, 200);
      await r.body?.cancel();
    }

    const during = await scrape();
    assert.equal(sum(during, "borealis_agents_connected"), 3);
    assert.equal(sum(during, "borealis_agent_connects_total"), 3);
    assert.equal(sum(during, "borealis_agent_refusals_total", ['status="401"']), 1);
    assert.ok(sum(during, "borealis_agent_frames_total") >= 12);
    assert.equal(
      sum(during, "borealis_agent_reply_seconds_count", ['type="heartbeat_ack"']),
      12,
      "every acknowledged heartbeat is timed",
    );
    assert.equal(
      sum(during, "borealis_http_request_duration_seconds_count", [
        'route="/api/agent/heartbeat"',
        'status="200"',
      ]),
      3,
    );
    assert.ok(
      sum(during, "borealis_http_request_duration_seconds_count", ['route="/api/agent/ws"']) >= 4,
      "the upgrades are timed by route pattern",
    );
    // Every series carries this instance's id.
    const id = h.t.engine.instanceId.slice(0, 8);
    assert.ok([...during.keys()].some((k) => k.includes(`engine_instance="${id}"`)));

    // A background task runs: its duration is recorded.
    await h.t.engine.tasks.runNow("realtime.flush_liveness");
    const after = await scrape();
    assert.ok(
      sum(after, "borealis_task_duration_seconds_count", ['task="realtime.flush_liveness"']) >= 1,
    );

    // Agents leave: the gauge follows.
    for (const s of sockets) s.stop();
    const end = Date.now() + 10_000;
    let left = after;
    while (sum(left, "borealis_agents_connected") !== 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      left = await scrape();
    }
    assert.equal(sum(left, "borealis_agents_connected"), 0);
  } finally {
    for (const s of sockets) s.stop();
    await h.close();
  }
});

Deno.test("metrics: off unless BOREALIS_METRICS_PORT is set; a short token is refused at start", async () => {
  const h = await startIdentity();
  try {
    assert.equal(await h.t.engine.listenMetrics(), null);
  } finally {
    await h.close();
  }
  await assert.rejects(
    () => startIdentity({ env: { BOREALIS_METRICS_PORT: "0", BOREALIS_METRICS_TOKEN: "short" } }),
    /BOREALIS_METRICS_TOKEN/,
  );
});

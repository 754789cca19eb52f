/**
 * Realtime end to end: a real listener, reference agents enrolled through the real
 * flow, real WebSockets for agents and operators.
 */
import assert from "node:assert/strict";
import realtime, { realtimeInternalsKey, realtimeKey } from "../plugins/realtime/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { AgentSocket, openAgentSocket } from "./agent/socket.ts";
import { createOperator } from "./helpers/operators.ts";

const plugins = [...identityPlugins, realtime];

async function setup() {
  const h = await startIdentity({ plugins });
  const { port } = await h.t.engine.listen();
  const server = `http://127.0.0.1:${port}`;
  const enrolled = async (hostname: string, siteCode = h.site.enrollment_code) => {
    const a = await h.agent({ hostname });
    await a.requestEnrollment(siteCode);
    await h.approve(hostname);
    await a.enroll(siteCode);
    return a;
  };
  return { h, server, enrolled };
}

function operatorSocket(
  server: string,
  headers: Record<string, string>,
): Promise<{ ws: WebSocket; frames: Array<{ type: string; data?: unknown; topic?: string }> }> {
  const frames: Array<{ type: string; data?: unknown; topic?: string }> = [];
  const ws = new (WebSocket as unknown as new (
    u: string,
    o: { headers: Record<string, string> },
  ) => WebSocket)(
    server.replace(/^http/, "ws") + "/api/ws",
    { headers },
  );
  ws.onmessage = (e) => void frames.push(JSON.parse(String(e.data)));
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve({ ws, frames });
    ws.onerror = () => reject(new Error("operator socket failed"));
  });
}

async function until(pred: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("realtime: the agent socket refuses an upgrade without a token, with a bad proof or an expired token", async () => {
  const { h, server, enrolled } = await setup();
  try {
    const url = `${server}/api/agent/ws`;
    const plain = await fetch(url, {
      headers: {
        upgrade: "websocket",
        connection: "upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assert.equal(plain.status, 401);
    assert.match(plain.headers.get("www-authenticate") ?? "", /^DPoP/);
    await plain.body?.cancel();

    const a = await enrolled("ws-auth");
    await a.ensureFresh();
    const token = a.state.access_token!;
    const wrongUrlProof = await a.proof("GET", `${server}/api/agent/heartbeat`, {
      accessToken: token,
    });
    const bad = await fetch(url, {
      headers: { Authorization: `DPoP ${token}`, DPoP: wrongUrlProof, upgrade: "websocket" },
    });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get("www-authenticate") ?? "", /invalid_dpop_proof/);
    await bad.body?.cancel();

    const bearer = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, upgrade: "websocket" },
    });
    assert.equal(bearer.status, 401);
    await bearer.body?.cancel();

    await h.t.clock.advance(16 * 60_000); // past the 15-minute access token
    const proof = await a.proof("GET", url, { accessToken: token });
    const expired = await fetch(url, {
      headers: { Authorization: `DPoP ${token}`, DPoP: proof, upgrade: "websocket" },
    });
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get("www-authenticate") ?? "", /invalid_token/);
    await expired.body?.cancel();
  } finally {
    await h.close();
  }
});

Deno.test("realtime: agent socket frames — welcome, heartbeat ack, errors without disconnect, messages from the engine", async () => {
  const { h, server, enrolled } = await setup();
  try {
    const a = await enrolled("ws-frames");
    const s = new AgentSocket(a, { server, heartbeat: false, reconnect: false });
    await s.start();
    const welcome = await s.waitFor((f) => f.type === "welcome");
    assert.equal((welcome.data as { guid: string }).guid, a.state.guid!.toUpperCase());

    const ack = await s.request("heartbeat", {
      metrics: { cpu_percent: 12.5, operating_system: "Debian 12" },
    });
    assert.equal(ack.type, "heartbeat_ack");
    const bad = await s.request("heartbeat", { metrics: { cpu_percent: 900 } });
    assert.equal(bad.type, "error");
    assert.equal((bad.data as { code: string }).code, "invalid_data");
    const unknown = await s.request("no_such_type", {});
    assert.equal((unknown.data as { code: string }).code, "unknown_type");
    const ca = await s.request("connect_agent", {
      agent_id: "WS-FRAMES_GUID_SYSTEM",
      service_mode: "system",
    });
    assert.deepEqual(ca.data, { status: "ok" });

    // Malformed JSON: an error frame, and the socket stays open.
    s.sendRaw("{not json");
    await s.waitFor((f) =>
      f.type === "error" && (f.data as { code: string }).code === "invalid_json"
    );
    assert.equal(s.open, true);

    // The engine sends to the agent through the channel service.
    const channel = h.t.engine.service(realtimeKey);
    await until(() => channel.connected(a.state.guid!));
    const result = await channel.send(a.state.guid!, {
      type: "quick_job_run",
      id: "j1",
      data: { job_id: 1 },
    });
    assert.equal(result.status, "delivered");
    await s.waitFor((f) => f.type === "quick_job_run" && f.id === "j1");

    const agents = await (await h.op("/api/agents")).json();
    assert.equal(agents.count, 1);
    assert.equal(agents.agents[0].agent_id, "WS-FRAMES_GUID_SYSTEM");
    assert.equal(agents.agents[0].status, "online");

    // Heartbeat telemetry lands with the next flush.
    await h.t.engine.service(realtimeInternalsKey).flush();
    const [row] = await h.t.engine
      .sql`select cpu_percent, operating_system, last_seen from devices where guid = ${a.state
      .guid!}`;
    assert.equal(row!.cpu_percent, 12.5);
    assert.equal(row!.operating_system, "Debian 12");

    // A second socket of the same agent replaces the first (close code 4409).
    const second = await openAgentSocket(a, server);
    await until(() => !s.open);
    assert.equal(channel.connected(a.state.guid!), true);
    second.close();
    await until(() => !channel.connected(a.state.guid!));
    s.stop();
  } finally {
    await h.close();
  }
});

Deno.test("realtime: an upgrade the agent asked for before its open socket (a given-up attempt read late) does not replace it", async () => {
  const { h, server, enrolled } = await setup();
  try {
    const a = await enrolled("ws-stale");
    const channel = h.t.engine.service(realtimeKey);
    const s = new AgentSocket(a, { server, heartbeat: false, reconnect: false });
    await s.start();
    await s.waitFor((f) => f.type === "welcome");
    // The same agent's upgrade with a proof made 10 s before the one it is connected with.
    await a.ensureFresh();
    const token = a.state.access_token!;
    const httpUrl = `${server}/api/agent/ws`;
    const stale = new (WebSocket as unknown as new (
      u: string,
      o: { headers: Record<string, string> },
    ) => WebSocket)(httpUrl.replace(/^http/, "ws"), {
      headers: {
        Authorization: `DPoP ${token}`,
        DPoP: await a.proof("GET", httpUrl, {
          accessToken: token,
          iat: Math.floor(h.t.clock.now() / 1000) - 10,
        }),
      },
    });
    const closed = await new Promise<CloseEvent>((resolve) => (stale.onclose = resolve));
    assert.equal(closed.code, 4409);
    // The live socket stays, registered and answering.
    assert.equal(s.open, true);
    assert.equal((await s.request("ping")).type, "pong");
    assert.equal(channel.connected(a.state.guid!), true);
    s.stop();
  } finally {
    await h.close();
  }
});

Deno.test("realtime: a message for an offline agent is held and delivered when it connects", async () => {
  const { h, server, enrolled } = await setup();
  try {
    const a = await enrolled("ws-held");
    const channel = h.t.engine.service(realtimeKey);
    const r = await channel.send(a.state.guid!, {
      type: "quick_job_run",
      id: "held-1",
      data: { job_id: 7 },
    });
    assert.equal(r.status, "offline");
    assert.ok(r.held_until);
    const s = new AgentSocket(a, { server, heartbeat: false, reconnect: false });
    await s.start();
    await s.waitFor((f) => f.type === "quick_job_run" && f.id === "held-1");
    s.stop();
  } finally {
    await h.close();
  }
});

Deno.test("realtime: held messages the database could not hand over at connect follow later; the socket stays", async () => {
  const { h, server, enrolled } = await setup();
  let s: AgentSocket | undefined;
  try {
    const a = await enrolled("ws-held-late");
    const channel = h.t.engine.service(realtimeKey);
    const r = await channel.send(a.state.guid!, { type: "quick_job_run", id: "held-2" });
    assert.equal(r.status, "offline");
    // Registering works, handing over the held messages fails (as when the database
    // goes away between the two): the table is briefly not there.
    await h.t.engine.sql`alter table agent_outbox rename to agent_outbox_away`;
    let closed = "";
    s = new AgentSocket(a, {
      server,
      heartbeat: false,
      reconnect: false,
      onClose: (e) => void (closed = `${e.code} ${e.reason}`),
    });
    await s.start();
    await s.waitFor((f) => f.type === "welcome");
    const logFile = `${h.t.db.dataDir}/Logs/engine.log`;
    await until(() => {
      try {
        return Deno.readTextFileSync(logFile).includes("could not be handed over now");
      } catch {
        return false;
      }
    }, 20_000);
    const ack = await s.request("ping", {});
    assert.equal(ack.type, "pong");
    assert.ok(s.open, `the socket stayed open (closed: ${closed})`);
    assert.ok(!s.frames.some((f) => f.id === "held-2"));
    await h.t.engine.sql`alter table agent_outbox_away rename to agent_outbox`;
    await h.t.engine.service(realtimeInternalsKey).registry.maintain();
    await s.waitFor((f) => f.type === "quick_job_run" && f.id === "held-2");
    assert.ok(s.open);
  } finally {
    s?.stop();
    await h.close();
  }
});

Deno.test("realtime: a single-use ticket opens the socket once", async () => {
  const { h, server, enrolled } = await setup();
  try {
    const a = await enrolled("ws-ticket");
    const res = await a.call("POST", "/api/agent/ws-ticket");
    assert.equal(res.status, 200);
    const { ticket } = await res.json();
    const ws = await openAgentSocket(a, server, { ticket });
    ws.close();
    const again = await fetch(`${server}/api/agent/ws?ticket=${ticket}`, {
      headers: { upgrade: "websocket" },
    });
    assert.equal(again.status, 401);
    assert.equal((await again.json()).error, "invalid_ticket");
  } finally {
    await h.close();
  }
});

Deno.test("realtime: telemetry over HTTP — heartbeat, coalesced status, details merged and software normalized", async () => {
  const { h, enrolled } = await setup();
  try {
    const a = await enrolled("http-telemetry");
    const hb = await a.call("POST", "/api/agent/heartbeat", {
      metrics: { memory_percent: 33 },
      external_ip: "203.0.113.9",
    });
    assert.deepEqual(await hb.json(), { status: "ok", poll_after_ms: 15000 });
    const bad = await a.call("POST", "/api/agent/heartbeat", { metrics: { uptime: -5 } });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    const s1 = await (await a.call("POST", "/api/agent/status", { status: "running" })).json();
    assert.equal(s1.coalesced, undefined);
    assert.equal(s1.site_name, "Main");
    const s2 = await (await a.call("POST", "/api/agent/status", { status: "running" })).json();
    assert.equal(s2.coalesced, true);
    await h.t.clock.advance(31_000);
    const s3 = await (await a.call("POST", "/api/agent/status", { status: "running" })).json();
    assert.equal(s3.coalesced, undefined);

    const details = {
      hostname: "http-telemetry",
      details: {
        summary: { operating_system: "Windows 11", domain: "CORP" },
        storage: [{ drive: "C:", usage: 71 }],
        software: [{ name: "  Mozilla  Firefox ", version: "120.0" }, {
          name: "7-Zip",
          version: "23.01",
        }],
      },
    };
    const d1 = await (await a.call("POST", "/api/agent/details", details)).json();
    assert.deepEqual(d1, { status: "ok" });
    const d2 = await (await a.call("POST", "/api/agent/details", details)).json();
    assert.deepEqual(d2, { status: "ok", coalesced: true });
    const partial = {
      details: { summary: { operating_system: "", last_user: "bob" }, storage: [] },
    };
    assert.equal((await a.call("POST", "/api/agent/details", partial)).status, 200);
    const [row] = await h.t.engine
      .sql`select details, operating_system from devices where guid = ${a.state.guid!}`;
    assert.equal(row!.operating_system, "Windows 11");
    assert.deepEqual(row!.details.summary, {
      operating_system: "Windows 11",
      domain: "CORP",
      last_user: "bob",
    });
    assert.deepEqual(row!.details.storage, [{ drive: "C:", usage: 71 }]);
    const sw = await h.t.engine
      .sql`select name_normalized, version from device_software_inventory where device_guid = ${a
      .state.guid!} order by 1`;
    assert.deepEqual(sw.map((r) => [r.name_normalized, r.version]), [["7-zip", "23.01"], [
      "mozilla firefox",
      "120.0",
    ]]);
  } finally {
    await h.close();
  }
});

Deno.test("realtime: a User's operator socket gets no event about another site's devices", async () => {
  const { h, server, enrolled } = await setup();
  try {
    const other = await h.createSite("Other");
    const mine = await enrolled("site-main");
    const theirs = await enrolled("site-other", other.enrollment_code);
    const user = await createOperator(h.t, { role: "User", sites: [h.site.id] });
    const admin = await createOperator(h.t, { role: "Admin" });
    const u = await operatorSocket(server, user.headers);
    const ad = await operatorSocket(server, admin.headers);
    for (const o of [u, ad]) {
      o.ws.send(
        JSON.stringify({
          type: "subscribe",
          id: "s",
          data: { topics: ["device_status", "inventory"] },
        }),
      );
    }
    await until(() =>
      u.frames.some((f) => f.type === "subscribe_ack") &&
      ad.frames.some((f) => f.type === "subscribe_ack")
    );

    for (const a of [mine, theirs]) {
      const r = await a.call("POST", "/api/agent/details", {
        details: { summary: { domain: a.state.hostname } },
      });
      assert.equal(r.status, 200);
    }
    await until(() => ad.frames.filter((f) => f.type === "device_inventory_changed").length === 2);
    const userHosts = u.frames.filter((f) => f.type === "device_inventory_changed").map((f) =>
      (f.data as { hostname: string }).hostname
    );
    assert.deepEqual(userHosts, ["site-main"]);

    // Status changes are scoped the same way.
    await h.t.clock.advance(10 * 60_000);
    await h.t.engine.tasks.idle();
    await until(() => ad.frames.filter((f) => f.type === "agent_status_changed").length >= 2);
    const userStatus = u.frames.filter((f) => f.type === "agent_status_changed").map((f) =>
      (f.data as { hostname: string }).hostname
    );
    assert.ok(userStatus.every((hst) => hst === "site-main"), JSON.stringify(userStatus));

    // A bad operator frame is answered, not fatal.
    u.ws.send(JSON.stringify({ type: "subscribe", data: { topics: ["nope"] } }));
    await until(() => u.frames.some((f) => f.type === "error"));
    assert.equal(u.ws.readyState, WebSocket.OPEN);

    // Notifications reach operators.
    const n = await h.op("/api/notifications/notify", {
      json: { title: "Patch night", message: "Servers reboot at 22:00" },
    });
    assert.equal(n.status, 202);
    u.ws.send(JSON.stringify({ type: "subscribe", data: { topics: ["notifications"] } }));
    await until(() =>
      u.frames.some((f) =>
        f.type === "subscribe_ack" && JSON.stringify(f.data).includes("notifications")
      )
    );
    await h.op("/api/notifications/notify", { json: { title: "Second", message: "hello" } });
    await until(() => u.frames.some((f) => f.type === "borealis_notification"));
    u.ws.close();
    ad.ws.close();
  } finally {
    await h.close();
  }
});

Deno.test("realtime: operator socket and agent list need a signed-in operator", async () => {
  const { h, server } = await setup();
  try {
    const res = await fetch(`${server}/api/ws`, { headers: { upgrade: "websocket" } });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.equal((await h.t.request("/api/agents")).status, 401);
    const bad = await h.op("/api/notifications/notify", { json: { title: "", message: "x" } });
    assert.equal(bad.status, 400);
  } finally {
    await h.close();
  }
});

Deno.test("realtime: containment closes the agent's socket at once", async () => {
  const { h, server, enrolled } = await setup();
  try {
    const a = await enrolled("ws-contained");
    const s = new AgentSocket(a, { server, heartbeat: false, reconnect: false });
    let closeCode = 0;
    await s.start();
    await s.waitFor((f) => f.type === "welcome");
    const raw = await openAgentSocket(a, server); // replaces s; we watch this one
    raw.onclose = (e) => void (closeCode = e.code);
    const res = await h.op(`/api/devices/${a.state.guid}/quarantine`, {
      json: { reason: "suspicious" },
    });
    assert.equal(res.status, 200, await res.clone().text());
    await until(() => closeCode !== 0);
    assert.equal(closeCode, 4003);
    s.stop();
  } finally {
    await h.close();
  }
});

Deno.test("realtime: an expiring token closes the socket with 4001; the accept rate answers the excess with 503 and Retry-After", async () => {
  const h = await startIdentity({
    plugins,
    env: { BOREALIS_AGENT_WS_ACCEPT_PER_SECOND: "1", BOREALIS_AGENT_WS_ACCEPT_BURST: "1" },
  });
  try {
    const { port } = await h.t.engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const a = await h.agent({ hostname: "ws-expiry" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("ws-expiry");
    await a.enroll(h.site.enrollment_code);
    const ws = await openAgentSocket(a, server);
    let code = 0;
    ws.onclose = (e) => void (code = e.code);

    await a.ensureFresh();
    const token = a.state.access_token!;
    const url = `${server}/api/agent/ws`;
    const busy = await fetch(url, {
      headers: {
        Authorization: `DPoP ${token}`,
        DPoP: await a.proof("GET", url, { accessToken: token }),
        upgrade: "websocket",
      },
    });
    assert.equal(busy.status, 503);
    const retry = Number(busy.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 30, `Retry-After ${retry}`);
    assert.equal((await busy.json()).error, "busy");

    await h.t.clock.advance(15 * 60_000 + 1000);
    await until(() => code !== 0);
    assert.equal(code, 4001);
  } finally {
    await h.close();
  }
});

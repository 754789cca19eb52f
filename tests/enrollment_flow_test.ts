import assert from "node:assert/strict";
import { startIdentity } from "./agent/harness.ts";
import { createOperator } from "./helpers/operators.ts";

Deno.test("enrollment: pending → approve → poll → tokens → call → refresh → reuse revokes the family", async () => {
  const h = await startIdentity();
  try {
    const agent = await h.agent({ hostname: "ws-01" });
    const req = await agent.requestEnrollment(h.site.enrollment_code);
    assert.equal(req.status, "pending");
    assert.equal(req.poll_after_ms, 3000);
    assert.equal(typeof req.server_nonce, "string");

    const pending = await agent.poll();
    assert.deepEqual(pending, { status: 200, body: { status: "pending", poll_after_ms: 5000 } });

    const approved = await h.approve("ws-01");
    assert.equal(approved.status, 200, await approved.clone().text());

    const done = await agent.poll();
    assert.equal(done.status, 200);
    assert.equal(done.body.status, "approved");
    assert.equal(done.body.token_type, "DPoP");
    assert.equal(done.body.expires_in, 900);
    assert.match(String(done.body.guid), /^[0-9A-F-]{36}$/);

    const again = await agent.poll();
    assert.equal(again.status, 409);
    assert.equal(again.body.error, "proof_replayed");

    const call = await agent.call("POST", "/api/agent/script/request", {});
    assert.equal(call.status, 200);
    const idle = await call.json();
    assert.equal(idle.status, "idle");
    assert.equal(idle.poll_after_ms, 30000);
    assert.equal(idle.sig_alg, "ed25519");

    const oldRefresh = agent.state.refresh_token!;
    await agent.refresh();
    assert.notEqual(agent.state.refresh_token, oldRefresh);
    const after = await agent.call("GET", "/api/agent/hash");
    assert.equal(after.status, 200);

    // Presenting the rotated token again revokes the whole family, current token included.
    const current = agent.state.refresh_token!;
    agent.state.refresh_token = oldRefresh;
    await assert.rejects(agent.refresh(), /401 refresh_token_reused/);
    agent.state.refresh_token = current;
    await assert.rejects(agent.refresh(), /401 refresh_token_revoked/);

    const audit = await h.t.engine
      .sql`select action, outcome from audit_log where action = 'token.refresh_reuse'`;
    assert.equal(audit.length, 1);
  } finally {
    await h.close();
  }
});

Deno.test("agent hash: the agent reports its build hash; GET /api/agent/hash_list is Admin and loopback only", async () => {
  const h = await startIdentity();
  try {
    const agent = await h.agent({ hostname: "ws-hash" });
    await agent.requestEnrollment(h.site.enrollment_code);
    await h.approve("ws-hash");
    await agent.poll();
    const bad = await agent.call("POST", "/api/agent/hash", { agent_hash: "not a hash!" });
    assert.equal(bad.status, 400);
    const set = await agent.call("POST", "/api/agent/hash", { agent_hash: "abc123" });
    assert.equal(set.status, 200);

    const list = await h.op("/api/agent/hash_list");
    assert.equal(list.status, 200);
    const body = await list.json();
    assert.equal(body.count, 1);
    assert.deepEqual(body.agents[0], {
      agent_guid: agent.state.guid!.toUpperCase(),
      hostname: "ws-hash",
      site_id: h.site.id,
      agent_hash: "abc123",
    });

    // Remote Admin, a local reverse proxy speaking for someone else, and a User: refused.
    const remote = await h.t.request("/api/agent/hash_list", {
      headers: h.admin.headers,
      ip: "203.0.113.7",
    });
    assert.equal(remote.status, 403);
    assert.equal((await remote.json()).error, "loopback_only");
    const proxied = await h.t.request("/api/agent/hash_list", {
      headers: { ...h.admin.headers, "x-forwarded-for": "203.0.113.7" },
    });
    assert.equal(proxied.status, 403);
    const user = await createOperator(h.t, { role: "User", sites: [h.site.id] });
    assert.equal((await h.op("/api/agent/hash_list", { as: user })).status, 403);
  } finally {
    await h.close();
  }
});

import assert from "node:assert/strict";
import { startIdentity } from "./agent/harness.ts";

Deno.test("reference agent: concurrent calls after a token_version bump share one refresh (no false reuse)", async () => {
  const h = await startIdentity();
  try {
    const a = await h.agent({ hostname: "busy" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("busy");
    const guid = (await a.poll()).body.guid as string;
    // Quarantine and release: the current access token dies (token_version bump).
    await h.op(`/api/devices/${guid}/quarantine`, { json: {} });
    await h.op(`/api/devices/${guid}/unquarantine`, { json: {} });
    const before = a.state.refresh_token;
    const results = await Promise.all(
      Array.from({ length: 5 }, () => a.call("POST", "/api/agent/script/request", {})),
    );
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200]);
    await Promise.all(results.map((r) => r.body?.cancel()));
    assert.notEqual(a.state.refresh_token, before);
    const families = await h.t.engine.sql`
      select count(*)::int as live from refresh_tokens
      where guid = ${guid} and revoked_at is null and rotated_at is null`;
    assert.equal(families[0]!.live, 1);
    const reuse = await h.t.engine
      .sql`select count(*)::int as n from audit_log where action = 'token.refresh_reuse'`;
    assert.equal(reuse[0]!.n, 0);
  } finally {
    await h.close();
  }
});

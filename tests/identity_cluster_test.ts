import assert from "node:assert/strict";
import { approvalPending } from "../plugins/enrollment/mod.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";

// Two engines share one database only on a PostgreSQL server (embedded PGlite is
// single-process), so this runs with BOREALIS_TEST_DATABASE_URL.
Deno.test({
  name: "DPoP replay is caught across engine instances sharing one database",
  ignore: !serverUrl,
  fn: async () => {
    const h = await startIdentity();
    const second = await startTestEngine({
      plugins: identityPlugins,
      db: h.t.db,
      clock: h.t.clock,
    });
    try {
      const a = await h.agent({ hostname: "roamer" });
      await a.requestEnrollment(h.site.enrollment_code);
      await h.approve("roamer");
      await a.poll();
      const token = a.state.access_token!;
      const proof = await a.proof("POST", "http://127.0.0.1/api/agent/script/request", {
        accessToken: token,
      });
      const send = (t: typeof h.t) =>
        t.request("/api/agent/script/request", {
          method: "POST",
          json: {},
          headers: { Authorization: `DPoP ${token}`, DPoP: proof },
        });
      assert.equal((await send(h.t)).status, 200);
      const replay = await send(second);
      assert.equal(replay.status, 401);
      assert.match(replay.headers.get("www-authenticate") ?? "", /invalid_dpop_proof.*replayed/);
      // A fresh proof works on the second instance: same keys, same tokens.
      const ok = await second.request("/api/agent/script/request", {
        method: "POST",
        json: {},
        headers: {
          Authorization: `DPoP ${token}`,
          DPoP: await a.proof("POST", "http://127.0.0.1/api/agent/script/request", {
            accessToken: token,
          }),
        },
      });
      assert.equal(ok.status, 200);
    } finally {
      await second.stop();
      await h.close();
    }
  },
});

Deno.test("per-device rate limit answers 429 with Retry-After; operators get an event for a waiting approval", async () => {
  const h = await startIdentity({ env: { BOREALIS_DEVICE_RATE_LIMIT_PER_MINUTE: "3" } });
  try {
    const events: Array<{ hostname: string; site_id: number | null }> = [];
    h.t.engine.events.subscribe(approvalPending, (e) => void events.push(e));
    const a = await h.agent({ hostname: "chatty" });
    await a.requestEnrollment(h.site.enrollment_code);
    assert.deepEqual(events.map((e) => [e.hostname, e.site_id]), [["chatty", h.site.id]]);
    await h.approve("chatty");
    await a.poll();
    for (let i = 0; i < 3; i++) {
      assert.equal((await a.call("POST", "/api/agent/script/request", {})).status, 200);
    }
    const limited = await a.call("POST", "/api/agent/script/request", {});
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    await h.t.clock.advance(61_000);
    assert.equal((await a.call("POST", "/api/agent/script/request", {})).status, 200);
  } finally {
    await h.close();
  }
});

import assert from "node:assert/strict";
import { tokensKey } from "../plugins/tokens/mod.ts";
import type { Agent } from "./agent/agent.ts";
import { type IdentityHarness, startIdentity } from "./agent/harness.ts";

// The verified-token cache skips a token's signature check on repeat use. These tests
// hold it to what the full path enforces: whatever voids a token (expiry, revocation,
// a rekey or token-version move made by this or another instance) is refused on the
// very next request even though the token is cached, and a proof is never accepted twice.

async function enrolled(h: IdentityHarness, hostname: string): Promise<Agent> {
  const a = await h.agent({ hostname });
  await a.requestEnrollment(h.site.enrollment_code);
  await h.approve(hostname);
  await a.poll();
  return a;
}

const send = (a: Agent) => a.call("POST", "/api/agent/script/request", {}, { retry: false });

async function status(res: Promise<Response>): Promise<[number, string]> {
  const r = await res;
  await r.body?.cancel();
  return [r.status, r.headers.get("www-authenticate") ?? ""];
}

Deno.test("token cache: a token is verified once, then found by its hash until it expires", async () => {
  const h = await startIdentity();
  try {
    const cache = h.t.engine.service(tokensKey).access.verified;
    const a = await enrolled(h, "cached");
    const before = cache.stats;
    assert.equal((await status(send(a)))[0], 200);
    assert.equal((await status(send(a)))[0], 200);
    assert.equal((await status(send(a)))[0], 200);
    assert.equal(cache.stats.misses - before.misses, 1, "one full verification");
    assert.equal(cache.stats.hits - before.hits, 2, "then two hits");

    // Past exp the cached token is refused like any expired one, and dropped (sent by
    // hand: the agent itself would refresh first).
    const token = a.state.access_token!;
    await h.t.clock.advance(901_000);
    const [code, challenge] = await status(h.t.request("/api/agent/script/request", {
      method: "POST",
      json: {},
      headers: {
        Authorization: `DPoP ${token}`,
        DPoP: await a.proof("POST", "http://127.0.0.1/api/agent/script/request", {
          accessToken: token,
        }),
      },
    }));
    assert.equal(code, 401);
    assert.match(challenge, /invalid_token.*expired/);
    assert.equal(cache.size, 0);
    // A refreshed token works again.
    await a.refresh();
    assert.equal((await status(send(a)))[0], 200);
  } finally {
    await h.close();
  }
});

Deno.test("token cache: a revoked device's cached token is refused at once and dropped", async () => {
  const h = await startIdentity();
  try {
    const cache = h.t.engine.service(tokensKey).access.verified;
    const a = await enrolled(h, "revoked");
    assert.equal((await status(send(a)))[0], 200);
    assert.equal(cache.size, 1);
    const res = await h.op(`/api/devices/${a.state.guid}/revoke`, { json: {} });
    assert.equal(res.status, 200, await res.text());
    assert.equal(cache.size, 0, "the containment hook drops the device's tokens");
    const [code] = await status(send(a));
    assert.ok(code === 401 || code === 403, `revoked device answered ${code}`);
  } finally {
    await h.close();
  }
});

Deno.test("token cache: a rekey or token-version move written elsewhere voids the cached token on the next request", async () => {
  const h = await startIdentity();
  try {
    const cache = h.t.engine.service(tokensKey).access.verified;
    const sql = h.t.engine.sql;
    const a = await enrolled(h, "rekeyed");
    const b = await enrolled(h, "moved");
    assert.equal((await status(send(a)))[0], 200);
    assert.equal((await status(send(b)))[0], 200);
    assert.equal(cache.size, 2);

    // As if another instance re-enrolled the device with a new key (no local hook ran).
    await sql`update devices set ssl_key_fingerprint = ${"0".repeat(64)}
      where guid = ${a.state.guid!}`;
    let [code, challenge] = await status(send(a));
    assert.equal(code, 401);
    assert.match(challenge, /invalid_token.*key changed/);

    // As if another instance quarantined and released it (token_version + 2).
    await sql`update devices set token_version = token_version + 2 where guid = ${b.state.guid!}`;
    [code, challenge] = await status(send(b));
    assert.equal(code, 401);
    assert.match(challenge, /invalid_token.*token_version/);
    assert.equal(cache.size, 0, "both devices' tokens were dropped");
    // The moved device gets a token of its new version and is served again.
    await b.refresh();
    assert.equal((await status(send(b)))[0], 200);
  } finally {
    await h.close();
  }
});

Deno.test("token cache: a proof is refused the second time even though its token is cached", async () => {
  const h = await startIdentity();
  try {
    const a = await enrolled(h, "replayer");
    const token = a.state.access_token!;
    assert.equal((await status(send(a)))[0], 200); // token now cached
    const proof = await a.proof("POST", "http://127.0.0.1/api/agent/script/request", {
      accessToken: token,
    });
    const again = () =>
      h.t.request("/api/agent/script/request", {
        method: "POST",
        json: {},
        headers: { Authorization: `DPoP ${token}`, DPoP: proof },
      });
    assert.equal((await status(again()))[0], 200);
    for (let i = 0; i < 3; i++) {
      const [code, challenge] = await status(again());
      assert.equal(code, 401);
      assert.match(challenge, /invalid_dpop_proof.*replayed/);
    }
    // The memory front forgets after 30 s; the database still remembers the proof.
    await h.t.clock.advance(60_000);
    const [code, challenge] = await status(again());
    assert.equal(code, 401);
    assert.match(challenge, /invalid_dpop_proof.*replayed/);
  } finally {
    await h.close();
  }
});

import assert from "node:assert/strict";
import { enrollmentKey } from "../plugins/enrollment/mod.ts";
import { startIdentity } from "./agent/harness.ts";

Deno.test("enrollment: the auto-approval window admits new hostnames and same-key re-enrollments, leaves conflicts pending", async () => {
  const h = await startIdentity();
  try {
    const open = await h.op(`/api/sites/${h.site.id}/auto-approval`, { json: { minutes: 30 } });
    assert.equal(open.status, 200);
    assert.ok((await open.json()).auto_approve_until);

    const a = await h.agent({ hostname: "auto-1" });
    const req = await a.requestEnrollment(h.site.enrollment_code);
    assert.equal(req.status, "approved");
    assert.equal(req.auto_approved, true);
    assert.equal(req.poll_after_ms, 250);
    const fin = await a.poll();
    assert.equal(fin.body.status, "approved");
    const guid = fin.body.guid;

    // Same key, same hostname: approved again, same GUID, same token_version.
    const again = await a.requestEnrollment(h.site.enrollment_code);
    assert.equal(again.status, "approved");
    const fin2 = await a.poll();
    assert.equal(fin2.body.guid, guid);

    // Another key claiming the hostname: pending with a conflict the operator must resolve.
    const b = await h.agent({ hostname: "auto-1" });
    const reqB = await b.requestEnrollment(h.site.enrollment_code);
    assert.equal(reqB.status, "pending");
    const list = await (await h.op("/api/admin/device-approvals?status=pending")).json();
    const row = list.approvals.find((r: { hostname_claimed: string }) =>
      r.hostname_claimed === "auto-1"
    );
    assert.equal(row.hostname_conflict.guid, guid);
    assert.equal(row.hostname_conflict.fingerprint_match, false);
    assert.equal(row.conflict_requires_prompt, true);
    assert.equal(row.alternate_hostname, "auto-1-1");

    // The window closes: a new hostname waits for an operator.
    await h.t.clock.advance(31 * 60_000);
    const c = await h.agent({ hostname: "late-1" });
    assert.equal((await c.requestEnrollment(h.site.enrollment_code)).status, "pending");
    // minutes 0 ends a window at once.
    await h.op(`/api/sites/${h.site.id}/auto-approval`, { json: { minutes: 10 } });
    const closed =
      await (await h.op(`/api/sites/${h.site.id}/auto-approval`, { json: { minutes: 0 } })).json();
    assert.equal(closed.auto_approve_until, null);
  } finally {
    await h.close();
  }
});

Deno.test("enrollment: hostname conflicts — required prompt, overwrite, coexist, automatic merge by fingerprint", async () => {
  const h = await startIdentity();
  try {
    const first = await h.agent({ hostname: "dup" });
    await first.requestEnrollment(h.site.enrollment_code);
    await h.approve("dup");
    const original = (await first.poll()).body;
    const originalGuid = original.guid as string;
    assert.equal((await first.call("POST", "/api/agent/script/request", {})).status, 200);

    // A new key claims "dup": no resolution → 409.
    const intruder = await h.agent({ hostname: "dup" });
    await intruder.requestEnrollment(h.site.enrollment_code);
    const needs = await h.approve("dup");
    assert.equal(needs.status, 409);
    assert.equal((await needs.json()).error, "conflict_resolution_required");

    // coexist → a new GUID with the next free hostname.
    assert.equal((await h.approve("dup", { conflict_resolution: "coexist" })).status, 200);
    const co = (await intruder.poll()).body;
    assert.notEqual(co.guid, originalGuid);
    assert.equal(co.hostname, "dup-1");

    // overwrite → the new key takes over the GUID: token_version bumps, old tokens and
    // refresh family die.
    const replacement = await h.agent({ hostname: "dup" });
    await replacement.requestEnrollment(h.site.enrollment_code);
    const ow = await h.approve("dup", { conflict_resolution: "overwrite" });
    assert.equal(ow.status, 200);
    assert.equal((await ow.json()).conflict_resolution, "overwrite");
    const taken = (await replacement.poll()).body;
    assert.equal(taken.guid, originalGuid);
    const old = await first.call("POST", "/api/agent/script/request", {}, { retry: false });
    assert.equal(old.status, 401);
    assert.match(old.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
    await assert.rejects(first.refresh(), /401 refresh_token_revoked/);
    assert.equal((await replacement.call("POST", "/api/agent/script/request", {})).status, 200);
    const keys = await h.t.engine.sql`
      select ssl_key_fingerprint, retired_at from device_keys where guid = ${originalGuid} order by id`;
    assert.equal(keys.length, 2);
    assert.ok(keys[0]!.retired_at);
    assert.equal(keys[1]!.retired_at, null);

    // Same key re-enrolls under its hostname: automatic merge into its GUID.
    await replacement.requestEnrollment(h.site.enrollment_code);
    const merge = await h.approve("dup");
    assert.equal(merge.status, 200);
    assert.equal((await merge.json()).conflict_resolution, "auto_merge_fingerprint");
    assert.equal((await replacement.poll()).body.guid, originalGuid);

    // Approving twice is refused.
    const list = await (await h.op("/api/admin/device-approvals?status=completed")).json();
    const done = list.approvals[0];
    const twice = await h.op(`/api/admin/device-approvals/${done.id}/approve`, { json: {} });
    assert.equal(twice.status, 409);
    assert.equal((await twice.json()).error, "approval_not_pending");
  } finally {
    await h.close();
  }
});

Deno.test("enrollment: deny, expiry, bad fields, bad proof, unknown reference", async () => {
  const h = await startIdentity({ env: { BOREALIS_ENROLL_APPROVAL_TTL_HOURS: "1" } });
  try {
    const a = await h.agent({ hostname: "deny-me" });
    await a.requestEnrollment(h.site.enrollment_code);
    const list = await (await h.op("/api/admin/device-approvals")).json();
    const id = list.approvals[0].id;
    assert.equal((await h.op(`/api/admin/device-approvals/${id}/deny`, { json: {} })).status, 200);
    assert.deepEqual((await a.poll()).body, { status: "denied", reason: "operator_denied" });

    const b = await h.agent({ hostname: "slow" });
    await b.requestEnrollment(h.site.enrollment_code);
    await h.t.clock.advance(61 * 60_000);
    assert.deepEqual((await b.poll()).body, { status: "expired" });

    const post = (json: unknown) =>
      h.t.request("/api/agent/enroll/request", { method: "POST", json });
    const valid = {
      hostname: "x1",
      enrollment_code: h.site.enrollment_code,
      agent_pubkey: b.state.public_key_spki,
      client_nonce: btoa("0123456789abcdef"),
    };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...valid, hostname: "" }, "hostname_required"],
      [{ ...valid, enrollment_code: undefined }, "enrollment_code_required"],
      [{ ...valid, agent_pubkey: undefined }, "agent_pubkey_required"],
      [{ ...valid, client_nonce: undefined }, "client_nonce_required"],
      [{ ...valid, agent_pubkey: btoa("short") }, "invalid_agent_pubkey"],
      [{ ...valid, agent_pubkey: btoa("x".repeat(44)) }, "invalid_agent_pubkey"],
      [{ ...valid, client_nonce: btoa("short") }, "invalid_client_nonce"],
      [{ ...valid, hostname: "bad host\n" }, "invalid_hostname"],
    ];
    for (const [body, code] of cases) {
      const res = await post(body);
      assert.equal(res.status, 400, code);
      assert.equal((await res.json()).error, code);
    }
    const wrongType = await post({ ...valid, hostname: 5 });
    assert.equal(wrongType.status, 400);

    const c = await h.agent({ hostname: "proof" });
    await c.requestEnrollment(h.site.enrollment_code);
    const poll = (json: unknown) => h.t.request("/api/agent/enroll/poll", { method: "POST", json });
    const sig = await c.enrollmentProof();
    const ref = c.state.approval_reference;
    assert.equal(
      (await poll({
        approval_reference: crypto.randomUUID(),
        client_nonce: c.state.client_nonce,
        proof_sig: sig,
      })).status,
      404,
    );
    const mismatch = await poll({
      approval_reference: ref,
      client_nonce: btoa("another nonce 1234"),
      proof_sig: sig,
    });
    assert.equal((await mismatch.json()).error, "nonce_mismatch");
    const forged = await poll({
      approval_reference: ref,
      client_nonce: c.state.client_nonce,
      proof_sig: await b.enrollmentProof().catch(() => btoa("x".repeat(64))),
    });
    assert.equal((await forged.json()).error, "invalid_proof");
    assert.equal((await poll({})).status, 400);
  } finally {
    await h.close();
  }
});

Deno.test("enrollment: wrong codes are recorded masked, pruned after 24 h, and rate limited with Retry-After", async () => {
  const h = await startIdentity({
    env: { BOREALIS_ENROLL_RATE_LIMIT_FINGERPRINT_PER_MINUTE: "3" },
  });
  try {
    const a = await h.agent({ hostname: "guess" });
    const wrong = "ABCD-EF01-2345-6789-ABCD-EF01-2345-6789";
    for (let i = 0; i < 3; i++) {
      const res = await h.t.request("/api/agent/enroll/request", {
        method: "POST",
        json: {
          hostname: "guess",
          enrollment_code: wrong,
          agent_pubkey: a.state.public_key_spki,
          client_nonce: btoa("0123456789abcdef"),
        },
      });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, "invalid_enrollment_code");
    }
    const limited = await h.t.request("/api/agent/enroll/request", {
      method: "POST",
      json: {
        hostname: "guess",
        enrollment_code: wrong,
        agent_pubkey: a.state.public_key_spki,
        client_nonce: btoa("0123456789abcdef"),
      },
    });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    assert.equal((await limited.json()).error, "rate_limited");

    const failures = await (await h.op("/api/admin/device-approvals?status=wrong_code")).json();
    assert.equal(failures.approvals.length, 1);
    assert.equal(failures.approvals[0].enrollment_code_mask, "ABC***789");
    assert.equal(failures.approvals[0].attempt_count, 3);
    const raw = await h.t.engine.sql`select * from enrollment_code_failures`;
    assert.ok(!JSON.stringify(raw).includes("EF01"));

    // Per-IP limit (40/min by default) across many keys.
    let status = 0;
    for (let i = 0; i < 41 && status !== 429; i++) {
      const k = await h.agent();
      const r = await h.t.request("/api/agent/enroll/request", {
        method: "POST",
        ip: "10.9.9.9",
        json: {
          hostname: `ip-${i}`,
          enrollment_code: h.site.enrollment_code,
          agent_pubkey: k.state.public_key_spki,
          client_nonce: btoa("0123456789abcdef"),
        },
      });
      status = r.status;
      await r.body?.cancel();
    }
    assert.equal(status, 429);

    // Age the row past 24 h and run the pruner (moving the clock a day would fire
    // every minute-task 1440 times).
    await h.t.engine
      .sql`update enrollment_code_failures set last_seen_at = last_seen_at - interval '25 hours'`;
    await h.t.engine.service(enrollmentKey).prune();
    const after = await (await h.op("/api/admin/device-approvals?status=wrong_code")).json();
    assert.equal(after.approvals.length, 0);
  } finally {
    await h.close();
  }
});

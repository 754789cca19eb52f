import assert from "node:assert/strict";
import { createOperator } from "../../tests/helpers/operators.ts";
import { startTestEngine } from "../../tests/helpers/test_engine.ts";
import aegis from "../aegis/mod.ts";
import operators from "./mod.ts";

const plugins = [aegis, operators];

Deno.test("users: admin CRUD, role, MFA reset/exempt, disable, last-admin rule, site assignments", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin", username: "boss" });
    const h = admin.headers;
    const post = (path: string, json: unknown) =>
      t.request(path, { method: "POST", headers: h, json });

    let r = await post("/api/users", {
      username: "alice",
      password: "alice-long-password",
      role: "User",
      site_ids: [1, 2],
    });
    assert.equal(r.status, 201);
    const alice = await r.json();
    assert.deepEqual(alice.site_ids, [1, 2]);
    assert.equal(alice.mfa_exempt, false);
    assert.equal(alice.password_hash, undefined);
    // Case-insensitive uniqueness; rules; bad input changes nothing.
    assert.equal(
      (await post("/api/users", { username: "ALICE", password: "another-long-pw" })).status,
      409,
    );
    for (
      const bad of [
        { username: "bob", password: "short" },
        { username: "bob", password: "password123" },
        { username: "bob", password: "x".repeat(257) },
        { username: "bad name", password: "long-enough-pw" },
        { username: "b\u0000b", password: "long-enough-pw" },
        { username: "bob", password: "long-enough-pw", role: "Root" },
      ]
    ) {
      r = await post("/api/users", bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    // 128-character passwords are fine; composition is not required.
    assert.equal(
      (await post("/api/users", { username: "bob", password: "a".repeat(64) + "b".repeat(64) }))
        .status,
      201,
    );
    const list = await (await t.request("/api/users", { headers: h })).json();
    assert.deepEqual(list.users.map((u: { username: string }) => u.username), [
      "alice",
      "bob",
      "boss",
    ]);

    // Site assignments (upstream selection/assign).
    r = await post("/api/user_site_assignments/selection", { usernames: ["alice", "bob"] });
    let sel = await r.json();
    assert.equal(sel.has_mixed_assignments, true);
    assert.ok(sel.warning);
    r = await post("/api/user_site_assignments/selection", { usernames: ["alice", "boss"] });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error, "admin_selected");
    r = await post("/api/user_site_assignments/assign", {
      usernames: ["alice", "bob"],
      site_ids: [7, 3, 7],
    });
    assert.deepEqual((await r.json()).site_ids, [3, 7]);
    sel =
      await (await post("/api/user_site_assignments/selection", { usernames: ["alice", "bob"] }))
        .json();
    assert.deepEqual(sel, {
      selected_site_ids: [3, 7],
      has_mixed_assignments: false,
      warning: null,
    });

    // A User session sees its new sites at once.
    const bobLogin = await (await t.request("/api/auth/login", {
      method: "POST",
      json: { username: "bob", password: "a".repeat(64) + "b".repeat(64) },
    })).json();
    assert.equal(bobLogin.status, "mfa_required");
    r = await post("/api/users/bob/mfa", { exempt: true });
    assert.equal((await r.json()).mfa_exempt, true);
    const bob = await (await t.request("/api/auth/login", {
      method: "POST",
      json: { username: "bob", password: "a".repeat(64) + "b".repeat(64), bearer: true },
    })).json();
    const bobH = { Authorization: `Bearer ${bob.token}` };
    assert.deepEqual((await (await t.request("/api/auth/me", { headers: bobH })).json()).site_ids, [
      3,
      7,
    ]);

    // Reset password ends the user's sessions.
    r = await post("/api/users/bob/reset_password", { password: "a-brand-new-password" });
    assert.equal(r.status, 200);
    assert.equal((await t.request("/api/auth/me", { headers: bobH })).status, 401);

    // Role changes; last admin cannot be demoted, disabled or deleted.
    r = await post("/api/users/boss/role", { role: "User" });
    assert.equal(r.status, 409);
    assert.equal((await r.json()).error, "last_admin");
    assert.equal((await post("/api/users/boss/disable", { disabled: true })).status, 409);
    assert.equal(
      (await t.request("/api/users/boss", { method: "DELETE", headers: h })).status,
      409,
    );
    r = await post("/api/users/alice/role", { role: "Admin" });
    assert.equal((await r.json()).role, "Admin");
    assert.equal((await post("/api/users/alice/role", { role: "User" })).status, 200);

    // Disable ends sessions and refuses sign-in with the same answer as a wrong password.
    const alice2 = await createOperator(t, { role: "User", username: "carol" });
    assert.equal((await post("/api/users/carol/disable", { disabled: true })).status, 200);
    assert.equal((await t.request("/api/auth/me", { headers: alice2.headers })).status, 401);
    r = await t.request("/api/auth/login", {
      method: "POST",
      json: { username: "carol", password: alice2.password },
    });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error, "invalid_credentials");

    assert.equal(
      (await t.request("/api/users/ghost", { method: "DELETE", headers: h })).status,
      404,
    );
    assert.equal(
      (await t.request("/api/users/alice", { method: "DELETE", headers: h })).status,
      204,
    );

    // Everything above is in the audit trail, filterable and paged.
    const page1 = await (await t.request("/api/audit?action=user.*&limit=3", { headers: h }))
      .json();
    assert.equal(page1.entries.length, 3);
    assert.ok(page1.next_cursor);
    const page2 =
      await (await t.request(`/api/audit?action=user.*&limit=100&cursor=${page1.next_cursor}`, {
        headers: h,
      })).json();
    assert.ok(page2.entries.length > 3);
    assert.ok(page2.entries[0].id < page1.entries[2].id);
    const byActor =
      await (await t.request("/api/audit?actor=boss&action=user.delete", { headers: h })).json();
    assert.equal(byActor.entries.length, 1);
    assert.equal(byActor.entries[0].target, "user:alice");
    assert.equal((await t.request("/api/audit?cursor=!!", { headers: h })).status, 400);
    assert.equal((await t.request("/api/audit?since=yesterday", { headers: h })).status, 400);
  } finally {
    await t.close();
  }
});

Deno.test("Dev Mode: server-side grant with TTL, survives a restart, sessions only, audited", async () => {
  const t1 = await startTestEngine({ plugins });
  const db = t1.db;
  try {
    const admin = await createOperator(t1, { role: "Admin" });
    const user = await createOperator(t1, { role: "User" });
    let r = await t1.request("/api/dev-mode", {
      method: "POST",
      headers: user.headers,
      json: { enabled: true },
    });
    assert.equal(r.status, 403);
    r = await t1.request("/api/dev-mode", {
      method: "POST",
      headers: admin.headers,
      json: { enabled: true, ttl_seconds: 30 },
    });
    assert.equal(r.status, 400);
    // Without Dev Mode a privileged route says how to get it.
    r = await t1.request("/api/aegis/rotate", { method: "POST", headers: admin.headers, json: {} });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error, "dev_mode_required");
    r = await t1.request("/api/dev-mode", {
      method: "POST",
      headers: admin.headers,
      json: { enabled: true, ttl_seconds: 120 },
    });
    const on = await r.json();
    assert.equal(on.enabled, true);
    assert.equal(on.ttl_remaining, 120);
    await t1.stop();

    // A second engine on the same database (restart / another instance) honours the grant.
    const t2 = await startTestEngine({ plugins, db, clock: t1.clock });
    try {
      let s = await (await t2.request("/api/dev-mode", { headers: admin.headers })).json();
      assert.equal(s.enabled, true);
      assert.equal(
        (await (await t2.request("/api/auth/me", { headers: admin.headers })).json()).dev_mode,
        true,
      );
      await t2.clock.advance(121_000);
      s = await (await t2.request("/api/dev-mode", { headers: admin.headers })).json();
      assert.equal(s.enabled, false);
      r = await t2.request("/api/aegis/force_reset", {
        method: "POST",
        headers: admin.headers,
        json: { confirm: "DESTROY ALL SECRETS" },
      });
      assert.equal(r.status, 403);
      // Default TTL 900 s; turning it off ends it.
      s = await (await t2.request("/api/dev-mode", {
        method: "POST",
        headers: admin.headers,
        json: { enabled: true },
      })).json();
      assert.equal(s.ttl_remaining, 900);
      s = await (await t2.request("/api/dev-mode", {
        method: "POST",
        headers: admin.headers,
        json: { enabled: false },
      })).json();
      assert.equal(s.enabled, false);
      const audit =
        await (await t2.request("/api/audit?action=dev_mode.*", { headers: admin.headers })).json();
      assert.deepEqual(audit.entries.map((e: { action: string }) => e.action), [
        "dev_mode.disable",
        "dev_mode.enable",
        "dev_mode.enable",
      ]);
    } finally {
      await t2.stop();
    }
  } finally {
    await db.drop();
  }
});

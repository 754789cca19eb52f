/**
 * Directory accounts and passkeys, against a real slapd: a directory user registers a
 * passkey (confirming with the directory password) and signs in with it; every passkey
 * sign-in re-checks the account against the directory (role follows the groups, removed
 * from the mapped group / disabled in the directory → 403, directory down → 401). And the
 * last-admin rule: the directory's demotions apply, the last local admin always stays.
 */
import assert from "node:assert/strict";
import aegis from "../plugins/aegis/mod.ts";
import directory from "../plugins/directory/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { SoftAuthenticator } from "../plugins/operators/testing/soft_authenticator.ts";
import { call, enableProvider, login, modify, signIn } from "./helpers/directory.ts";
import { createOperator } from "./helpers/operators.ts";
import {
  GROUPS,
  providerBody,
  SERVICE_DN,
  SITES,
  slapdMissing,
  startSlapd,
  USERS,
} from "./helpers/slapd.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

const ORIGIN = "https://rmm.example.test";
const plugins = [aegis, operators, directory];
const env = { BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "0", BOREALIS_PUBLIC_BASE_URL: ORIGIN };

async function passkeySignIn(t: TestEngine, auth: SoftAuthenticator) {
  const options = await call(t, "/api/auth/passkeys/authenticate/options", { json: {} });
  assert.equal(options.status, 200);
  return await call(t, "/api/auth/passkeys/authenticate/verify", {
    json: { response: await auth.get(options.body), bearer: true },
  });
}

const me = (t: TestEngine, token: string) =>
  call(t, "/api/auth/me", { method: "GET", headers: { Authorization: `Bearer ${token}` } });

async function failureReasons(t: TestEngine): Promise<string[]> {
  const rows = await t.engine.sql<{ reason: string }[]>`
    select details->>'reason' as reason from audit_log
    where action = 'auth.login' and outcome = 'failure' and details->>'method' = 'passkey'
    order by at, id`;
  return rows.map((r) => r.reason);
}

Deno.test({
  name: "directory accounts: passkeys, re-checked against the directory at every sign-in",
  ignore: slapdMissing,
  async fn(t) {
    const slapd = await startSlapd();
    const eng = await startTestEngine({ plugins, env });
    try {
      const admin = await createOperator(eng, { role: "Admin" });
      await enableProvider(eng, admin, providerBody(slapd.url));
      const auth = new SoftAuthenticator(ORIGIN);
      let token = "";

      await t.step("registration asks for the directory password (checked by a bind)", async () => {
        const bob = await signIn(eng, "bob", USERS.bob.password);
        const wrong = await call(eng, "/api/auth/passkeys/register/options", {
          json: { current_password: "not-bobs-password" },
          headers: bob.headers,
        });
        assert.equal(wrong.status, 403);
        assert.equal(wrong.body.error, "invalid_password");
        const options = await call(eng, "/api/auth/passkeys/register/options", {
          json: { current_password: USERS.bob.password },
          headers: bob.headers,
        });
        assert.equal(options.status, 200, JSON.stringify(options.body));
        const registered = await call(eng, "/api/auth/passkeys/register/verify", {
          json: { response: await auth.create(options.body), label: "Bob's key" },
          headers: bob.headers,
        });
        assert.equal(registered.status, 201, JSON.stringify(registered.body));
      });

      await t.step(
        "passkey sign-in: no password, but role and sites follow the directory",
        async () => {
          await modify(slapd, GROUPS.admins, "add", "member", [USERS.bob.dn]);
          const promoted = await passkeySignIn(eng, auth);
          assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
          assert.equal(promoted.body.username, "bob");
          assert.equal(promoted.body.role, "Admin");
          await modify(slapd, GROUPS.admins, "delete", "member", [USERS.bob.dn]);
          const r = await passkeySignIn(eng, auth);
          assert.equal(r.status, 200);
          assert.equal(r.body.role, "User");
          const who = await me(eng, r.body.token);
          assert.equal(who.body.auth_source, "directory");
          assert.deepEqual(who.body.site_ids, [SITES.ops]);
          token = r.body.token;
        },
      );

      await t.step(
        "removed from the mapped group → 403, sessions end; back in → works",
        async () => {
          await modify(slapd, GROUPS.ops, "delete", "member", [USERS.bob.dn]);
          const r = await passkeySignIn(eng, auth);
          assert.equal(r.status, 403);
          assert.equal(r.body.error, "directory_no_access");
          assert.equal((await me(eng, token)).status, 401, "the account was disabled here");
          await modify(slapd, GROUPS.ops, "add", "member", [USERS.bob.dn]);
          const back = await passkeySignIn(eng, auth);
          assert.equal(back.status, 200, "the directory lifts the disable it caused");
          token = back.body.token;
        },
      );

      await t.step("disabled in the directory → 403 directory_user_disabled", async () => {
        await modify(slapd, USERS.bob.dn, "add", "employeeType", ["disabled"]);
        const r = await passkeySignIn(eng, auth);
        assert.equal(r.status, 403);
        assert.equal(r.body.error, "directory_user_disabled");
        await modify(slapd, USERS.bob.dn, "delete", "employeeType", ["disabled"]);
        const back = await passkeySignIn(eng, auth);
        assert.equal(back.status, 200);
        token = back.body.token;
      });

      await t.step("an admin's own disable stays: the directory cannot lift it", async () => {
        const off = await call(eng, "/api/users/bob/disable", {
          json: { disabled: true },
          headers: admin.headers,
        });
        assert.equal(off.status, 200);
        const r = await passkeySignIn(eng, auth);
        assert.equal(r.status, 401);
        assert.equal(r.body.error, "passkey_rejected");
        await call(eng, "/api/users/bob/disable", {
          json: { disabled: false },
          headers: admin.headers,
        });
        const back = await passkeySignIn(eng, auth);
        assert.equal(back.status, 200);
        token = back.body.token;
      });

      await t.step("TOTP reset is confirmed with the directory password as well", async () => {
        const headers = { Authorization: `Bearer ${token}` };
        const wrong = await call(eng, "/api/auth/mfa/reset", {
          json: { current_password: "nope-nope-nope" },
          headers,
        });
        assert.equal(wrong.status, 403);
        const ok = await call(eng, "/api/auth/mfa/reset", {
          json: { current_password: USERS.bob.password },
          headers,
        });
        assert.equal(ok.status, 200, JSON.stringify(ok.body));
      });

      await t.step("directory unreachable → refused like the password sign-in", async () => {
        await slapd.stop();
        const r = await passkeySignIn(eng, auth);
        assert.equal(r.status, 401);
        assert.equal(r.body.error, "passkey_rejected");
        const password = await login(eng, "bob", USERS.bob.password);
        assert.equal(password.status, 401);
        assert.equal(password.body.error, "invalid_credentials");
        // Signed in already, so nothing to hide: the truth, not "wrong password".
        const register = await call(eng, "/api/auth/passkeys/register/options", {
          json: { current_password: USERS.bob.password },
          headers: { Authorization: `Bearer ${token}` },
        });
        assert.equal(register.status, 503);
        assert.equal(register.body.error, "directory_unavailable");
        assert.deepEqual(await failureReasons(eng), [
          "directory_no_access",
          "directory_user_disabled",
          "account_disabled",
          "directory_unavailable",
        ]);
      });
    } finally {
      await eng.close();
      await slapd.stop();
    }
  },
});

Deno.test({
  name: "directory: demotions apply, and the last local admin always stays",
  ignore: slapdMissing,
  async fn() {
    const slapd = await startSlapd();
    const eng = await startTestEngine({ plugins, env });
    try {
      const local = await createOperator(eng, { role: "Admin" });
      await enableProvider(eng, local, providerBody(slapd.url));
      // groupOfNames needs a member: keeps rmm-admins alive once alice leaves it.
      await modify(slapd, GROUPS.admins, "add", "member", [SERVICE_DN]);
      const alice = await signIn(eng, "alice", USERS.alice.password);
      assert.equal(alice.me.role, "Admin");

      // Two enabled admins, but one comes from the directory: it is not a way back in.
      const asAlice = (path: string, json?: unknown) =>
        call(eng, path, { json, headers: alice.headers, method: json ? "POST" : "DELETE" });
      for (
        const r of [
          await asAlice(`/api/users/${local.username}/disable`, { disabled: true }),
          await asAlice(`/api/users/${local.username}/role`, { role: "User" }),
          await asAlice(`/api/users/${local.username}`),
        ]
      ) {
        assert.equal(r.status, 409);
        assert.equal(r.body.error, "last_admin");
        assert.match(r.body.message, /local admin/);
      }
      // With a second local admin the first may go.
      await createOperator(eng, { role: "Admin", username: "break-glass" });
      assert.equal(
        (await asAlice(`/api/users/${local.username}/disable`, { disabled: true })).status,
        200,
      );

      // The directory demotes its own admins on its own authority, even the last one.
      await modify(slapd, GROUPS.admins, "delete", "member", [USERS.alice.dn]);
      const demoted = await signIn(eng, "alice", USERS.alice.password);
      assert.equal(demoted.me.role, "User");
      const none = async () =>
        (await eng.engine.sql<{ n: number }[]>`
          select count(*)::int as n from audit_log where action = 'directory.no_admin_left'`)[0]!.n;
      assert.equal(await none(), 0, "break-glass is still an admin");

      // Accounts from before the rule may have no enabled local admin: the directory's
      // decision still applies, and says how to get back in.
      await modify(slapd, GROUPS.admins, "add", "member", [USERS.alice.dn]);
      assert.equal((await signIn(eng, "alice", USERS.alice.password)).me.role, "Admin");
      await eng.engine.sql`update users set disabled = true where auth_source = 'local'`;
      await modify(slapd, GROUPS.admins, "delete", "member", [USERS.alice.dn]);
      assert.equal((await signIn(eng, "alice", USERS.alice.password)).me.role, "User");
      assert.equal(await none(), 1);
      const log = await Deno.readTextFile(`${eng.db.dataDir}/Logs/engine.log`);
      assert.match(log, /removed the last enabled admin.*users create-admin/);
    } finally {
      await eng.close();
      await slapd.stop();
    }
  },
});

/**
 * Directory sign-in end to end against a real slapd: group→role and group→site
 * mapping, the same MFA step as local users, nested groups (iterative search on
 * OpenLDAP), disabled and unmapped users refused, losing access at the next login or
 * sync, JIT create/update, local accounts never taken over, hostile usernames, and the
 * empty password that the server itself would accept.
 */
import assert from "node:assert/strict";
import { Attribute, Change, Client } from "ldapts";
import aegis from "../plugins/aegis/mod.ts";
import directory, { directoryKey } from "../plugins/directory/mod.ts";
import operators from "../plugins/operators/mod.ts";
import {
  call,
  enableProvider,
  type Json,
  login,
  modify,
  retestAndEnable,
  signIn,
} from "./helpers/directory.ts";
import { createOperator } from "./helpers/operators.ts";
import {
  BASE_DN,
  GROUPS,
  providerBody,
  SITES,
  slapdMissing,
  startSlapd,
  USERS,
} from "./helpers/slapd.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators, directory];
const env = { BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "0" };

Deno.test({
  name: "directory sign-in against a real slapd",
  ignore: slapdMissing,
  async fn(t) {
    const slapd = await startSlapd();
    const eng = await startTestEngine({ plugins, env });
    try {
      const admin = await createOperator(eng, { role: "Admin" });
      const providerId = await enableProvider(eng, admin, providerBody(slapd.url));
      const users = async () =>
        (await call(eng, "/api/users", { method: "GET", headers: admin.headers })).body
          .users as Json[];

      await t.step("admin group → Admin, through the same MFA step as local users", async () => {
        const { me, stage } = await signIn(eng, "alice", USERS.alice.password);
        assert.equal(stage, "setup");
        assert.equal(me.role, "Admin");
        assert.equal(me.auth_source, "directory");
        assert.equal(me.site_ids, null);
        assert.equal(me.display_name, "Alice Example");
        // Second sign-in: TOTP is set up now, so the verify stage.
        const again = await signIn(eng, "alice", USERS.alice.password);
        assert.equal(again.stage, "verify");
      });

      await t.step("user group → User with the mapped sites", async () => {
        const { me } = await signIn(eng, "bob", USERS.bob.password);
        assert.equal(me.role, "User");
        assert.deepEqual(me.site_ids, [SITES.ops]);
      });

      await t.step("a DN full of filter and DN metacharacters still finds its groups", async () => {
        const { me } = await signIn(eng, "jsmith", USERS.jsmith.password);
        assert.equal(me.role, "User");
        assert.deepEqual(me.site_ids, [SITES.ops]);
      });

      await t.step("nested groups: member of a member of a mapped group", async () => {
        const { me } = await signIn(eng, "carol", USERS.carol.password);
        assert.equal(me.role, "User");
        assert.deepEqual(me.site_ids, [SITES.ops, SITES.field]);
        // Nesting off: carol's only route into rmm-ops is gone.
        const off = await call(eng, `/api/directory/providers/${providerId}`, {
          method: "PATCH",
          json: { nested_groups: false },
          headers: admin.headers,
        });
        assert.equal(off.status, 200);
        assert.equal(off.body.enabled, false, "a settings change disables until re-tested");
        assert.equal(off.body.needs_test, true);
        await retestAndEnable(eng, admin, providerId);
        const refused = await login(eng, "carol", USERS.carol.password);
        assert.equal(refused.status, 403);
        assert.equal(refused.body.error, "directory_no_access");
        // Back on: the account we disabled is enabled again by the directory.
        await call(eng, `/api/directory/providers/${providerId}`, {
          method: "PATCH",
          json: { nested_groups: true },
          headers: admin.headers,
        });
        await retestAndEnable(eng, admin, providerId);
        const back = await signIn(eng, "carol", USERS.carol.password);
        assert.deepEqual(back.me.site_ids, [SITES.ops, SITES.field]);
      });

      await t.step(
        "a user disabled in the directory is refused (only with the right password)",
        async () => {
          const r = await login(eng, "dave", USERS.dave.password);
          assert.equal(r.status, 403);
          assert.equal(r.body.error, "directory_user_disabled");
          const wrong = await login(eng, "dave", "not-daves-password");
          assert.equal(wrong.status, 401);
          assert.ok(!(await users()).some((u) => u.username === "dave"), "no account created");
        },
      );

      await t.step(
        "no mapped group → 403, not a default role (group cycle is harmless)",
        async () => {
          const r = await login(eng, "eve", USERS.eve.password);
          assert.equal(r.status, 403);
          assert.equal(r.body.error, "directory_no_access");
          assert.ok(!(await users()).some((u) => u.username === "eve"));
        },
      );

      await t.step("wrong password and unknown names → 401 invalid_credentials", async () => {
        const wrong = await login(eng, "bob", "Wrong-Password-1");
        assert.equal(wrong.status, 401);
        assert.equal(wrong.body.error, "invalid_credentials");
        const unknown = await login(eng, "nobody-here", "Whatever-123");
        assert.equal(unknown.status, 401);
        assert.equal(unknown.body.error, "invalid_credentials");
      });

      await t.step(
        "removed from mapped groups: sites shrink, then access ends at next login",
        async () => {
          const first = await signIn(eng, "grace", USERS.grace.password);
          assert.deepEqual(first.me.site_ids, [SITES.ops, SITES.audit]);
          await modify(slapd, GROUPS.ops, "delete", "member", [USERS.grace.dn]);
          const second = await signIn(eng, "grace", USERS.grace.password);
          assert.equal(second.me.role, "User");
          assert.deepEqual(second.me.site_ids, [SITES.audit], "JIT update of the sites");
          await modify(slapd, GROUPS.audit, "delete", "member", [USERS.grace.dn]);
          const refused = await login(eng, "grace", USERS.grace.password);
          assert.equal(refused.status, 403);
          assert.equal(refused.body.error, "directory_no_access");
          const old = await call(eng, "/api/auth/me", { method: "GET", headers: second.headers });
          assert.equal(old.status, 401, "the existing session is revoked");
        },
      );

      await t.step("JIT update: role and display name follow the directory", async () => {
        await modify(slapd, USERS.bob.dn, "replace", "displayName", ["Robert Example"]);
        await modify(slapd, GROUPS.admins, "add", "member", [USERS.bob.dn]);
        const { me } = await signIn(eng, "bob", USERS.bob.password);
        assert.equal(me.role, "Admin", "the highest privilege wins");
        assert.equal(me.display_name, "Robert Example");
        await modify(slapd, GROUPS.admins, "delete", "member", [USERS.bob.dn]);
        const demoted = await signIn(eng, "bob", USERS.bob.password);
        assert.equal(demoted.me.role, "User");
      });

      await t.step(
        "sync: disabled in the directory → disabled here, sessions revoked",
        async () => {
          const { headers } = await signIn(eng, "bob", USERS.bob.password);
          await modify(slapd, USERS.bob.dn, "add", "employeeType", ["disabled"]);
          const synced = await call(eng, `/api/directory/providers/${providerId}/sync`, {
            headers: admin.headers,
          });
          assert.equal(synced.status, 200, JSON.stringify(synced.body));
          assert.ok(synced.body.disabled >= 1, JSON.stringify(synced.body));
          assert.equal((await call(eng, "/api/auth/me", { method: "GET", headers })).status, 401);
          assert.equal((await users()).find((u) => u.username === "bob")?.disabled, true);
          await modify(slapd, USERS.bob.dn, "delete", "employeeType", ["disabled"]);
          const again = await call(eng, `/api/directory/providers/${providerId}/sync`, {
            headers: admin.headers,
          });
          assert.equal(again.body.enabled, 1, JSON.stringify(again.body));
          assert.equal((await users()).find((u) => u.username === "bob")?.disabled, false);
          await signIn(eng, "bob", USERS.bob.password);
          // One account only: upstream's per-user refresh.
          const one = await call(eng, "/api/users/bob/directory-cache", { headers: admin.headers });
          assert.equal(one.status, 200);
          assert.equal(one.body.checked, 1);
        },
      );

      await t.step("sync: a user removed from the directory is disabled", async () => {
        await signIn(eng, "jsmith", USERS.jsmith.password);
        await slapd.asRoot(async (c) => {
          await c.modify(GROUPS.ops, [
            new Change({
              operation: "delete",
              modification: new Attribute({ type: "member", values: [USERS.jsmith.dn] }),
            }),
          ]);
          await c.del(USERS.jsmith.dn);
        });
        const synced = await call(eng, `/api/directory/providers/${providerId}/sync`, {
          headers: admin.headers,
        });
        assert.equal(synced.status, 200);
        assert.equal((await users()).find((u) => u.username === "jsmith")?.disabled, true);
      });

      await t.step("a local account is never taken over by a directory login", async () => {
        const local = await createOperator(eng, { username: "localdup", role: "User" });
        const viaDirectory = await login(eng, "localdup", USERS.localdup.password);
        assert.equal(viaDirectory.status, 401);
        const viaLocal = await login(eng, "LocalDup", local.password);
        assert.equal(viaLocal.status, 200);
        assert.equal(viaLocal.body.status, "ok");
        // A second provider that finds users by mail reaches the same directory name.
        const second = await enableProvider(
          eng,
          admin,
          providerBody(slapd.url, {
            name: "By mail",
            priority: 200,
            user_search_filter: "(&(objectClass=inetOrgPerson)(mail={username}))",
          }),
        );
        const clash = await login(eng, USERS.localdup.mail, USERS.localdup.password);
        assert.equal(clash.status, 403);
        assert.equal(clash.body.error, "directory_identity_conflict");
        const u = (await users()).find((x) => x.username === "localdup");
        assert.equal(u.auth_source, "local");
        const removed = await call(eng, `/api/directory/providers/${second}`, {
          method: "DELETE",
          headers: admin.headers,
        });
        assert.equal(removed.status, 204);
      });

      await t.step("hostile usernames are refused or harmless", async () => {
        const before = (await users()).length;
        for (
          const name of [
            "*",
            "*)(uid=*",
            "admin)(|(uid=*",
            "alice)(uid=*",
            "ali*",
            "*)(|(objectClass=*",
          ]
        ) {
          for (const password of [USERS.alice.password, "*"]) {
            const r = await login(eng, name, password);
            assert.equal(r.status, 401, `${name}: ${JSON.stringify(r.body)}`);
          }
          const looked = await call(eng, `/api/directory/providers/${providerId}/lookup-user`, {
            json: { username: name },
            headers: admin.headers,
          });
          assert.equal(looked.status, 200);
          assert.equal(looked.body.found, false, name);
        }
        for (const name of ["alice\u0000", "\u0000", "a".repeat(5000)]) {
          const r = await login(eng, name, USERS.alice.password);
          assert.equal(r.status, 400, "refused by validation");
          const svc = await eng.engine.service(directoryKey).authenticate(
            name,
            USERS.alice.password,
          );
          assert.equal(svc.status, "invalid", "refused by the directory plugin itself");
        }
        assert.equal((await users()).length, before, "no account was created");
      });

      await t.step(
        "an empty password never signs in, even where the server allows it",
        async () => {
          // The server accepts an unauthenticated bind (DN + empty password)…
          const raw = new Client({ url: slapd.url, timeout: 2000 });
          await raw.bind(USERS.bob.dn, "");
          await raw.unbind();
          // …but the engine refuses it at every layer.
          const http = await login(eng, "bob", "");
          assert.equal(http.status, 400);
          const svc = await eng.engine.service(directoryKey).authenticate("bob", "");
          assert.equal(svc.status, "invalid");
          const fresh = await eng.engine.service(directoryKey).authenticate("alice", "");
          assert.equal(fresh.status, "invalid");
        },
      );

      await t.step("lookup-user shows what a sign-in would map to", async () => {
        const r = await call(eng, `/api/directory/providers/${providerId}/lookup-user`, {
          json: { username: "carol" },
          headers: admin.headers,
        });
        assert.equal(r.status, 200);
        assert.equal(r.body.found, true);
        assert.equal(r.body.role, "User");
        assert.deepEqual(r.body.site_ids, [SITES.ops, SITES.field]);
        assert.ok(r.body.groups.includes(GROUPS.subteam));
        assert.equal(r.body.would_sign_in, true);
        const eve = await call(eng, `/api/directory/providers/${providerId}/lookup-user`, {
          json: { username: "eve" },
          headers: admin.headers,
        });
        assert.equal(eve.body.role, null);
        assert.equal(eve.body.would_sign_in, false);
        assert.match(eve.body.reason, /no group mapped/);
        assert.ok(BASE_DN);
      });
    } finally {
      await eng.close();
      await slapd.stop();
    }
  },
});

Deno.test({
  name: "directory: the periodic sync disables accounts and revokes their sessions",
  ignore: slapdMissing,
  async fn() {
    const slapd = await startSlapd();
    const eng = await startTestEngine({
      plugins,
      env: { BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "600" },
    });
    try {
      const admin = await createOperator(eng, { role: "Admin" });
      await enableProvider(eng, admin, providerBody(slapd.url));
      const { headers } = await signIn(eng, "bob", USERS.bob.password);
      await modify(slapd, GROUPS.ops, "delete", "member", [USERS.bob.dn]);
      // Nothing changes before the interval…
      await eng.clock.advance(300_000);
      await eng.engine.tasks.idle();
      assert.equal((await call(eng, "/api/auth/me", { method: "GET", headers })).status, 200);
      // …and after it the task has run: no mapped group any more, so no access.
      await eng.clock.advance(301_000);
      await eng.engine.tasks.idle();
      assert.equal((await call(eng, "/api/auth/me", { method: "GET", headers })).status, 401);
      const audit = await eng.engine.sql<{ n: number }[]>`
        select count(*)::int as n from audit_log
        where action = 'directory.user_disabled' and details->>'reason' = 'no_mapped_group'`;
      assert.equal(audit[0]!.n, 1);
    } finally {
      await eng.close();
      await slapd.stop();
    }
  },
});

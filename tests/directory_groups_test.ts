/**
 * Group reading against a real slapd with a small size limit and the Active Directory
 * look-alike tree: paged group searches (a user in more groups than the server's size
 * limit still gets every one), the AD primary group found through `primaryGroupID` and
 * a binary `objectSid` search, and the just-in-time account created together with its
 * directory link in one transaction.
 */
import assert from "node:assert/strict";
import { Client } from "ldapts";
import aegis from "../plugins/aegis/mod.ts";
import directory from "../plugins/directory/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { call, enableProvider, login, signIn } from "./helpers/directory.ts";
import { createOperator } from "./helpers/operators.ts";
import {
  AD,
  BASE_DN,
  GROUPS,
  providerBody,
  SERVICE_DN,
  SERVICE_PASSWORD,
  SITES,
  slapdMissing,
  startSlapd,
  USERS,
} from "./helpers/slapd.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators, directory];
const env = { BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "0" };
const SIZE_LIMIT = 3;
const MANY = 6;
const manyGroup = (i: number) => `cn=many-${i},ou=groups,${BASE_DN}`;
const MANY_USER = {
  uid: "manny",
  dn: `uid=manny,ou=people,${BASE_DN}`,
  password: "manny-Secret-9!",
};

Deno.test({
  name: "directory groups: paged searches past the size limit, AD primary group, one JIT write",
  ignore: slapdMissing,
  async fn(t) {
    const slapd = await startSlapd({ sizeLimit: SIZE_LIMIT, adLike: true });
    const eng = await startTestEngine({ plugins, env });
    try {
      const admin = await createOperator(eng, { role: "Admin" });

      await t.step(
        "paged: a user in more groups than the size limit gets all of them",
        async () => {
          await slapd.asRoot(async (c) => {
            await c.add(MANY_USER.dn, {
              objectClass: "inetOrgPerson",
              uid: MANY_USER.uid,
              cn: "Manny",
              sn: "manny",
              userPassword: MANY_USER.password,
            });
            for (let i = 1; i <= MANY; i++) {
              await c.add(manyGroup(i), {
                objectClass: "groupOfNames",
                cn: `many-${i}`,
                member: [MANY_USER.dn],
              });
            }
          });
          // The limit is real: the same search unpaged fails for the service account.
          const raw = new Client({ url: slapd.url, timeout: 2000 });
          try {
            await raw.bind(SERVICE_DN, SERVICE_PASSWORD);
            await assert.rejects(
              raw.search(`ou=groups,${BASE_DN}`, {
                filter: `(member=${MANY_USER.dn})`,
                attributes: ["1.1"],
              }),
              /0x4/,
            );
          } finally {
            await raw.unbind();
          }
          // Only the last group grants a role; every group grants its own site.
          const siteMappings = Array.from({ length: MANY }, (_, i) => ({
            label: `many-${i + 1}`,
            group_dns: [manyGroup(i + 1)],
            site_ids: [100 + i + 1],
          }));
          const id = await enableProvider(
            eng,
            admin,
            providerBody(slapd.url, {
              group_mappings: [{ group_dn: manyGroup(MANY), role: "User" }],
              site_mappings: siteMappings,
            }),
          );
          const { me } = await signIn(eng, MANY_USER.uid, MANY_USER.password);
          assert.equal(me.role, "User");
          assert.deepEqual(me.site_ids, siteMappings.map((m) => m.site_ids[0]));
          // Sync reads the groups the same way.
          const synced = await call(eng, `/api/directory/providers/${id}/sync`, {
            headers: admin.headers,
          });
          assert.equal(synced.status, 200, JSON.stringify(synced.body));
          assert.equal(synced.body.disabled, 0);
          const off = await call(eng, `/api/directory/providers/${id}`, {
            method: "PATCH",
            json: { enabled: false },
            headers: admin.headers,
          });
          assert.equal(off.status, 200);
        },
      );

      await t.step(
        "AD: the primary group (not in memberOf) is found by its objectSid and mapped",
        async () => {
          await enableProvider(
            eng,
            admin,
            providerBody(slapd.url, {
              name: "AD look-alike",
              type: "active_directory",
              // slapd has no objectCategory, userAccountControl nor the in-chain rule.
              user_search_filter: "(&(objectClass=inetOrgPerson)(sAMAccountName={username}))",
              disabled_filter: null,
              nested_groups: false,
              group_mappings: [{ group_dn: AD.domainUsers, role: "User" }],
              site_mappings: [{
                label: "all staff",
                group_dns: [AD.domainUsers],
                site_ids: [SITES.ops],
              }],
            }),
          );
          const { me } = await signIn(eng, AD.adam.uid, AD.adam.password);
          assert.equal(me.role, "User");
          assert.deepEqual(me.site_ids, [SITES.ops]);
          const [row] = await eng.engine.sql<{ groups: string[] }[]>`
            select d.groups from directory_users d join users u on u.id = d.user_id
            where u.username = ${AD.adam.uid}`;
          // Exactly the primary group: Domain Admins (RID 512, same domain) is not it.
          assert.deepEqual(row!.groups, [AD.domainUsers]);
          // A primaryGroupID naming no group adds nothing (and breaks nothing).
          const orphan = await login(eng, AD.orphan.uid, AD.orphan.password);
          assert.equal(orphan.status, 403);
          assert.equal(orphan.body.error, "directory_no_access");
        },
      );

      await t.step("JIT: the account and its directory link are one write", async () => {
        // Make the link insert fail for bob only: the account must not remain. Deleting
        // users is refused meanwhile, so undoing the account by a second write (instead
        // of a rollback) would leave it behind and fail this step.
        await eng.engine.sql.unsafe(
          `alter table directory_users add constraint test_refuse_bob check (dn <> '${USERS.bob.dn}')`,
        );
        await eng.engine.sql.unsafe(`
          create function test_no_user_delete() returns trigger language plpgsql as
            $$ begin raise exception 'no deletes in this test'; end $$`);
        await eng.engine.sql.unsafe(`
          create trigger test_no_user_delete before delete on users
            for each row execute function test_no_user_delete()`);
        const ldap = (await call(eng, "/api/directory/providers", {
          method: "GET",
          headers: admin.headers,
        })).body.providers.find((p: { name: string }) => p.name === "Test OpenLDAP");
        const on = await call(eng, `/api/directory/providers/${ldap.id}`, {
          method: "PATCH",
          json: { enabled: true, group_mappings: [{ group_dn: GROUPS.ops, role: "User" }] },
          headers: admin.headers,
        });
        assert.equal(on.status, 200, JSON.stringify(on.body));
        const broken = await login(eng, "bob", USERS.bob.password);
        assert.equal(broken.status, 500);
        const [n] = await eng.engine.sql<{ n: number }[]>`
          select count(*)::int as n from users where lower(username) = 'bob'`;
        assert.equal(n!.n, 0, "no account without its link");
        await eng.engine.sql`alter table directory_users drop constraint test_refuse_bob`;
        await eng.engine.sql`drop trigger test_no_user_delete on users`;
        const { me } = await signIn(eng, "bob", USERS.bob.password);
        assert.equal(me.auth_source, "directory");
      });
    } finally {
      await eng.close();
      await slapd.stop();
    }
  },
});

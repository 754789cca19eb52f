/**
 * Directory providers against a real slapd: admin-only routes, validation, the bind
 * password sealed and never shown or logged, test-before-enable, failover across URLs
 * (a refused port and a server that accepts TCP but never answers), a provider that is
 * down not blocking local logins, and delete refused while accounts come from it.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import aegis, { vaultKey } from "../plugins/aegis/mod.ts";
import directory from "../plugins/directory/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { createOperator, type TestOperator } from "./helpers/operators.ts";
import {
  providerBody,
  SERVICE_PASSWORD,
  slapdMissing,
  startSlapd,
  USERS,
} from "./helpers/slapd.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators, directory];
const env = { BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "0" };

// deno-lint-ignore no-explicit-any
type Json = any;

/** Every response body this file sees, to prove the bind password never appears. */
const seen: string[] = [];

let ipCounter = 0;
const nextIp = () => `10.2.${(++ipCounter >> 8) & 255}.${ipCounter & 255}`;

async function call(
  t: TestEngine,
  path: string,
  init: { method?: string; json?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Json }> {
  const res = await t.request(path, { method: init.method ?? "POST", ip: nextIp(), ...init });
  const text = await res.text();
  seen.push(text);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const P = "/api/directory/providers";

async function create(t: TestEngine, admin: TestOperator, body: Record<string, unknown>) {
  const r = await call(t, P, { json: body, headers: admin.headers });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as string;
}

async function testAndEnable(t: TestEngine, admin: TestOperator, id: string) {
  const tested = await call(t, `${P}/${id}/test`, { headers: admin.headers });
  assert.equal(tested.body.ok, true, JSON.stringify(tested.body));
  const on = await call(t, `${P}/${id}`, {
    method: "PATCH",
    json: { enabled: true },
    headers: admin.headers,
  });
  assert.equal(on.status, 200, JSON.stringify(on.body));
}

/** A TCP server that accepts connections and never says a word. */
function silentServer(): { url: string; accepted(): number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch { /* closed */ }
  })();
  return {
    url: `ldap://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    accepted: () => conns.length,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
  };
}

/** A loopback port nothing listens on. */
function closedPortUrl(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `ldap://127.0.0.1:${port}`;
}

const totp = (secret: string, at: number) =>
  new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30 })
    .generate({ timestamp: at });

Deno.test({
  name: "directory providers against a real slapd",
  ignore: slapdMissing,
  async fn(t) {
    const slapd = await startSlapd();
    const silent = silentServer();
    const eng = await startTestEngine({ plugins, env });
    try {
      const admin = await createOperator(eng, { role: "Admin" });
      const user = await createOperator(eng, { role: "User" });

      await t.step("every directory route is Admin-only (401 anonymous, 403 User)", async () => {
        const doc = await (await eng.request("/api/openapi.json")).json();
        const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
          .filter(([path]) =>
            path.startsWith("/api/directory") || path.endsWith("/directory-cache")
          )
          .flatMap(([path, ops]) => Object.keys(ops).map((m) => [m.toUpperCase(), path] as const));
        assert.ok(routes.length >= 9, JSON.stringify(routes));
        const fill = (p: string) =>
          p.replace("{id}", crypto.randomUUID()).replace("{username}", "someone");
        for (const [method, path] of routes) {
          const json = method === "GET" || method === "DELETE" ? undefined : {};
          const anon = await call(eng, fill(path), { method, json });
          assert.equal(anon.status, 401, `${method} ${path}`);
          const asUser = await call(eng, fill(path), { method, json, headers: user.headers });
          assert.equal(asUser.status, 403, `${method} ${path}`);
        }
      });

      await t.step("validation: bad URLs, filters, DNs and TLS combinations are 400", async () => {
        const bad: Array<Record<string, unknown>> = [
          { server_urls: ["http://127.0.0.1:389"] },
          { server_urls: ["ldap://user:pw@host"] },
          { server_urls: [] },
          { user_search_filter: "(uid=someone)" },
          { user_search_filter: "(uid={username}" },
          { base_dn: "not a dn" },
          { bind_dn: "cn=x\u0000,dc=y" },
          { start_tls: true, server_urls: ["ldaps://127.0.0.1:636"] },
          { disabled_filter: "employeeType=disabled" },
          { group_mappings: [{ group_dn: "cn=x,dc=y", role: "Root" }] },
          { tls_ca_pem: "not a certificate" },
          { connect_timeout_ms: 10 },
          { bind_dn: null, bind_password: "orphan-password" },
        ];
        for (const patch of bad) {
          const r = await call(eng, P, {
            json: providerBody(slapd.url, patch),
            headers: admin.headers,
          });
          if (r.status === 201) {
            await call(eng, `${P}/${r.body.id}`, { method: "DELETE", headers: admin.headers });
          }
          assert.equal(r.status, 400, `${JSON.stringify(patch)} → ${JSON.stringify(r.body)}`);
        }
        const enabled = await call(eng, P, {
          json: providerBody(slapd.url, { name: "eager", enabled: true }),
          headers: admin.headers,
        });
        assert.equal(enabled.status, 409);
        assert.equal(enabled.body.error, "provider_not_tested");
      });

      let id = "";
      await t.step("the bind password is sealed and never returned", async () => {
        id = await create(eng, admin, providerBody(slapd.url));
        const [row] = await eng.engine.sql<{ bind_password_encrypted: string }[]>`
          select bind_password_encrypted from directory_providers where id = ${id}`;
        assert.match(row!.bind_password_encrypted, /^aegis:v1:/);
        assert.ok(!row!.bind_password_encrypted.includes(SERVICE_PASSWORD));
        const list = await call(eng, P, { method: "GET", headers: admin.headers });
        const p = list.body.providers.find((x: Json) => x.id === id);
        assert.equal(p.bind_password_set, true);
        assert.equal("bind_password" in p, false);
        assert.equal("bind_password_encrypted" in p, false);
        const dup = await call(eng, P, { json: providerBody(slapd.url), headers: admin.headers });
        assert.equal(dup.status, 409);
        assert.equal(dup.body.error, "provider_name_taken");
      });

      await t.step(
        "a provider cannot be enabled until its current settings pass a test",
        async () => {
          const early = await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { enabled: true },
            headers: admin.headers,
          });
          assert.equal(early.status, 409);
          assert.equal(early.body.error, "provider_not_tested");
          // Wrong service password: the bind step fails and says why.
          await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { bind_password: "Wrong-Bind-Password-7" },
            headers: admin.headers,
          });
          const failed = await call(eng, `${P}/${id}/test`, { headers: admin.headers });
          assert.equal(failed.status, 200);
          assert.equal(failed.body.ok, false);
          const bind = failed.body.steps.find((s: Json) => s.step === "bind");
          assert.equal(bind.ok, false);
          assert.match(bind.message, /invalid credentials/);
          assert.equal(
            (await call(eng, `${P}/${id}`, {
              method: "PATCH",
              json: { enabled: true },
              headers: admin.headers,
            }))
              .status,
            409,
          );
          // A wrong base DN fails its own step.
          await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { bind_password: SERVICE_PASSWORD, base_dn: "dc=nowhere,dc=org" },
            headers: admin.headers,
          });
          const noBase = await call(eng, `${P}/${id}/test`, { headers: admin.headers });
          assert.equal(noBase.body.ok, false);
          assert.match(noBase.body.steps.at(-1).message, /no such object/);
          await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { base_dn: "dc=example,dc=org" },
            headers: admin.headers,
          });
          const withUser = await call(eng, `${P}/${id}/test`, {
            json: { username: "carol" },
            headers: admin.headers,
          });
          assert.equal(withUser.body.ok, true, JSON.stringify(withUser.body));
          assert.deepEqual(withUser.body.steps.map((s: Json) => s.step), [
            "connect",
            "bind",
            "base_dn",
            "user_search",
          ]);
          await testAndEnable(eng, admin, id);
          const view = await call(eng, P, { method: "GET", headers: admin.headers });
          const p = view.body.providers.find((x: Json) => x.id === id);
          assert.equal(p.enabled, true);
          assert.equal(p.tested, true);
          // Renaming does not need a new test; changing how it connects does.
          const renamed = await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { name: "Renamed", priority: 5 },
            headers: admin.headers,
          });
          assert.equal(renamed.body.enabled, true);
          const moved = await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { operation_timeout_ms: 1500 },
            headers: admin.headers,
          });
          assert.equal(moved.body.enabled, false);
          assert.equal(moved.body.needs_test, true);
          await testAndEnable(eng, admin, id);
        },
      );

      await t.step("failover: a refused port and a silent server are skipped", async () => {
        const urls = [closedPortUrl(), silent.url, slapd.url];
        await call(eng, `${P}/${id}`, {
          method: "PATCH",
          json: { server_urls: urls, connect_timeout_ms: 500, operation_timeout_ms: 500 },
          headers: admin.headers,
        });
        const tested = await call(eng, `${P}/${id}/test`, { headers: admin.headers });
        assert.equal(tested.body.ok, true, JSON.stringify(tested.body));
        const connects = tested.body.steps.filter((s: Json) => s.step === "connect");
        assert.deepEqual(connects.map((s: Json) => s.ok), [false, false, true]);
        assert.match(connects[0].message, /refused/);
        assert.match(connects[1].message, /operation timeout/);
        await call(eng, `${P}/${id}`, {
          method: "PATCH",
          json: { enabled: true },
          headers: admin.headers,
        });
        const t0 = performance.now();
        const r = await call(eng, "/api/auth/login", {
          json: { username: "bob", password: USERS.bob.password },
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.status, "mfa_required");
        assert.ok(performance.now() - t0 < 5000, "bounded by the timeouts");
        const code = totp(r.body.secret, eng.clock.now());
        const ok = await call(eng, "/api/auth/mfa/verify", {
          json: { pending_token: r.body.pending_token, code },
        });
        assert.equal(ok.status, 200);
      });

      await t.step("a provider that is down does not block local logins", async () => {
        // Only dead URLs now; set in the database to keep the provider enabled.
        await eng.engine.sql`
          update directory_providers
          set server_urls = ${eng.engine.sql.json([closedPortUrl(), silent.url])}
          where id = ${id}`;
        const local = await createOperator(eng, { role: "User" });
        // A login that asked the directory would open a connection to the silent server and
        // wait out its timeout; counting connections proves it without timing a loaded machine.
        const before = silent.accepted();
        const r = await call(eng, "/api/auth/login", {
          json: { username: local.username, password: local.password },
        });
        assert.equal(r.status, 200);
        assert.equal(r.body.status, "ok");
        assert.equal(silent.accepted(), before, "local login never asks the directory");
        // Directory users and unknown names get a plain 401, bounded by the timeouts.
        const t1 = performance.now();
        const dir = await call(eng, "/api/auth/login", {
          json: { username: "bob", password: USERS.bob.password },
        });
        assert.equal(dir.status, 401);
        const unknown = await call(eng, "/api/auth/login", {
          json: { username: "stranger", password: "Stranger-Pass-1" },
        });
        assert.equal(unknown.status, 401);
        assert.ok(performance.now() - t1 < 8000);
        const [audit] = await eng.engine.sql<{ n: number }[]>`
          select count(*)::int as n from audit_log
          where action = 'auth.login' and details->>'reason' = 'directory_unavailable'`;
        assert.ok(audit!.n >= 2);
        const lookup = await call(eng, `${P}/${id}/lookup-user`, {
          json: { username: "bob" },
          headers: admin.headers,
        });
        assert.equal(lookup.status, 503);
        assert.equal(lookup.body.error, "directory_unavailable");
        const sync = await call(eng, `${P}/${id}/sync`, { headers: admin.headers });
        assert.equal(sync.status, 503);
        await eng.engine.sql`
          update directory_providers set server_urls = ${eng.engine.sql.json([slapd.url])}
          where id = ${id}`;
      });

      await t.step(
        "a provider the directory refuses to search is a 401 / 409, never a 500",
        async () => {
          await eng.engine.sql`
          update directory_providers set base_dn = 'dc=gone,dc=org' where id = ${id}`;
          const r = await call(eng, "/api/auth/login", {
            json: { username: "carol", password: USERS.carol.password },
          });
          assert.equal(r.status, 401);
          const lookup = await call(eng, `${P}/${id}/lookup-user`, {
            json: { username: "carol" },
            headers: admin.headers,
          });
          assert.equal(lookup.status, 409);
          assert.equal(lookup.body.error, "directory_misconfigured");
          assert.match(lookup.body.message, /no such object/);
          await eng.engine.sql`
          update directory_providers set base_dn = 'dc=example,dc=org' where id = ${id}`;
        },
      );

      await t.step("delete is refused while accounts come from the provider", async () => {
        const refused = await call(eng, `${P}/${id}`, { method: "DELETE", headers: admin.headers });
        assert.equal(refused.status, 409);
        assert.equal(refused.body.error, "provider_in_use");
        assert.deepEqual(refused.body.details.usernames, ["bob"]);
        assert.match(refused.body.message, /convert|delete/);
        const converted = await call(eng, `${P}/${id}/users/bob/convert`, {
          headers: admin.headers,
        });
        assert.equal(converted.status, 200);
        // Now a local account without a password: the directory password no longer works.
        const viaDir = await call(eng, "/api/auth/login", {
          json: { username: "bob", password: USERS.bob.password },
        });
        assert.equal(viaDir.status, 401);
        const reset = await call(eng, "/api/users/bob/reset_password", {
          json: { password: "Bob-Local-Password-42" },
          headers: admin.headers,
        });
        assert.equal(reset.status, 200, JSON.stringify(reset.body));
        const users = await call(eng, "/api/users", { method: "GET", headers: admin.headers });
        assert.equal(users.body.users.find((u: Json) => u.username === "bob").auth_source, "local");
        const gone = await call(eng, `${P}/${id}`, { method: "DELETE", headers: admin.headers });
        assert.equal(gone.status, 204);
      });

      await t.step(
        "type active_directory: memberOf plus the in-chain search run end to end",
        async () => {
          // slapd is no domain controller: it knows no objectGUID and evaluates the
          // matching-rule-in-chain filter (an unknown rule) as no match, so only the
          // direct memberOf groups come back. The filter itself is unit-tested.
          const adId = await create(
            eng,
            admin,
            providerBody(slapd.url, {
              name: "AD flavour",
              type: "active_directory",
              user_search_filter: "(&(objectClass=inetOrgPerson)(uid={username}))",
              username_attribute: "uid",
              disabled_filter: null,
            }),
          );
          const r = await call(eng, `${P}/${adId}/lookup-user`, {
            json: { username: "alice" },
            headers: admin.headers,
          });
          assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.equal(r.body.role, "Admin");
          assert.equal(r.body.disabled, false);
          const view = await call(eng, P, { method: "GET", headers: admin.headers });
          const p = view.body.providers.find((x: Json) => x.id === adId);
          assert.equal(p.type, "active_directory");
          assert.equal(
            (await call(eng, `${P}/${adId}`, { method: "DELETE", headers: admin.headers })).status,
            204,
          );
        },
      );

      await t.step("a vault force-reset clears the bind password and disables", async () => {
        const rid = await create(eng, admin, providerBody(slapd.url, { name: "Reset me" }));
        await testAndEnable(eng, admin, rid);
        await eng.engine.service(vaultKey).forceReset();
        const view = await call(eng, P, { method: "GET", headers: admin.headers });
        const p = view.body.providers.find((x: Json) => x.id === rid);
        assert.equal(p.enabled, false);
        assert.equal(p.bind_password_set, false);
        assert.equal(p.tested, false);
      });

      await t.step(
        "the bind password never appears in a response, the log or the audit",
        async () => {
          const log = await Deno.readTextFile(`${eng.db.dataDir}/Logs/engine.log`);
          const [audit] = await eng.engine.sql<{ all: string }[]>`
          select coalesce(string_agg(details::text || coalesce(target, ''), ' '), '') as all
          from audit_log`;
          for (const secret of [SERVICE_PASSWORD, "Wrong-Bind-Password-7"]) {
            assert.ok(!log.includes(secret), "log");
            assert.ok(!audit!.all.includes(secret), "audit");
            assert.ok(!seen.some((s) => s.includes(secret)), "responses");
          }
          assert.ok(log.length > 0 && seen.length > 20);
        },
      );
    } finally {
      await eng.close();
      silent.close();
      await slapd.stop();
    }
  },
});

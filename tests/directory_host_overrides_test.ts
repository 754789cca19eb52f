/**
 * Host overrides against a real slapd with a certificate from a throwaway CA: the server
 * certificate names `ldap.borealis-test.invalid` (a name that never resolves) besides
 * localhost and 127.0.0.1. With an override the engine connects to 127.0.0.1 and still
 * checks the certificate for the URL's name (LDAPS and StartTLS); a URL name the
 * certificate lacks is refused even though the certificate does cover 127.0.0.1, which
 * proves the override does not turn the name check into an IP check. Also: validation
 * refusals change nothing, an override change needs a new test, re-sending the same
 * overrides does not, and SNI carries the host name (a node:tls server records it).
 */
import assert from "node:assert/strict";
import * as tls from "node:tls";
import aegis from "../plugins/aegis/mod.ts";
import directory from "../plugins/directory/mod.ts";
import { closeClient, openClient } from "../plugins/directory/ldap.ts";
import operators from "../plugins/operators/mod.ts";
import { call, signIn } from "./helpers/directory.ts";
import { createOperator, type TestOperator } from "./helpers/operators.ts";
import {
  makeCertificates,
  providerBody,
  slapdMissing,
  startSlapd,
  USERS,
} from "./helpers/slapd.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

const opensslMissing = (() => {
  try {
    return !new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return true;
  }
})();
if (opensslMissing) console.warn("WARNING: openssl missing; directory host override tests skipped");

const P = "/api/directory/providers";
/** In the certificate, and never resolvable (RFC 6761 reserves .invalid). */
const NAME = "ldap.borealis-test.invalid";
/** Not in the certificate (which does carry IP:127.0.0.1). */
const WRONG = "wrong.borealis-test.invalid";

const portOf = (url: string) => Number(new URL(url).port);

async function runTest(t: TestEngine, admin: TestOperator, id: string, username?: string) {
  const r = await call(t, `${P}/${id}/test`, {
    json: username ? { username } : undefined,
    headers: admin.headers,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as {
    ok: boolean;
    steps: { step: string; ok: boolean; message: string; url?: string; via?: string }[];
  };
}

async function get(t: TestEngine, admin: TestOperator, id: string) {
  const list = await call(t, P, { method: "GET", headers: admin.headers });
  assert.equal(list.status, 200);
  return list.body.providers.find((p: { id: string }) => p.id === id);
}

Deno.test({
  name: "directory host overrides: connect to the address, verify the name (LDAPS, StartTLS)",
  ignore: slapdMissing || opensslMissing,
  async fn(t) {
    const slapd = await startSlapd({ tls: true, certNames: [NAME] });
    const ldapsPort = portOf(slapd.ldapsUrl!);
    const eng = await startTestEngine({
      plugins: [aegis, operators, directory],
      env: { BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "0" },
    });
    try {
      const admin = await createOperator(eng, { role: "Admin" });
      const url = `ldaps://${NAME}:${ldapsPort}`;
      let id = "";

      await t.step("without an override the name does not resolve: connect fails", async () => {
        const created = await call(eng, P, {
          json: providerBody(url, { tls_ca_pem: slapd.caPem }),
          headers: admin.headers,
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.deepEqual(created.body.host_overrides, {});
        id = created.body.id;
        const r = await runTest(eng, admin, id);
        assert.equal(r.ok, false);
        assert.equal(r.steps[0]!.step, "connect");
        assert.equal(r.steps[0]!.ok, false);
        assert.equal(r.steps[0]!.via, undefined);
        assert.match(r.steps[0]!.message, /host name not found .*host_overrides/);
      });

      await t.step(
        "with an override to 127.0.0.1 the test passes and a user signs in",
        async () => {
          // Upper case in the key: matched case-insensitively, stored in lower case.
          const patched = await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { host_overrides: { "LDAP.Borealis-Test.invalid": "127.0.0.1" } },
            headers: admin.headers,
          });
          assert.equal(patched.status, 200, JSON.stringify(patched.body));
          assert.deepEqual(patched.body.host_overrides, { [NAME]: "127.0.0.1" });
          assert.equal(patched.body.needs_test, true);
          const r = await runTest(eng, admin, id);
          assert.equal(r.ok, true, JSON.stringify(r));
          const connect = r.steps[0]!;
          assert.equal(connect.url, url);
          assert.equal(connect.via, "127.0.0.1");
          assert.match(connect.message, /^connected over TLS \(ldaps\)/);
          assert.ok(connect.message.includes(`${url} via 127.0.0.1 (host override`));
          assert.ok(
            connect.message.includes(`certificate is checked for ${NAME}, not for 127.0.0.1`),
          );
          assert.equal(r.steps[1]!.via, "127.0.0.1", "later steps say where they ran too");
          const enabled = await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { enabled: true },
            headers: admin.headers,
          });
          assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
          const { me } = await signIn(eng, "bob", USERS.bob.password);
          assert.equal(me.username, "bob");
          assert.equal((await get(eng, admin, id)).host_overrides[NAME], "127.0.0.1");
        },
      );

      await t.step("bad overrides are refused with 400 and change nothing", async () => {
        const before = await get(eng, admin, id);
        assert.equal(before.enabled, true);
        const many = Object.fromEntries(
          Array.from({ length: 17 }, (_, i) => [`dc${i}.corp.example`, `10.0.0.${i + 1}`]),
        );
        const bad: unknown[] = [
          { "dc1.corp.example": "999.1.1.1" },
          { "dc1.corp.example": "10.0.0.1:636" },
          { "dc1.corp.example": "[::1]" },
          { "dc1.corp.example": "dc2.corp.example" },
          { "dc1.corp.example": "0.0.0.0" },
          { "dc1.corp.example": "224.0.0.1" },
          { "dc1.corp.example": "010.0.0.1" },
          { "dc1.corp.example": "" },
          { "10.0.0.1": "10.0.0.2" },
          { "bad host.example": "10.0.0.2" },
          { "-dc1.corp.example": "10.0.0.2" },
          { "DC1.corp.example": "10.0.0.1", "dc1.corp.example": "10.0.0.2" },
          JSON.parse('{"__proto__": "10.0.0.1"}'),
          many,
          ["10.0.0.1"],
          "dc1.corp.example=10.0.0.1",
          null,
        ];
        for (const host_overrides of bad) {
          const r = await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { host_overrides },
            headers: admin.headers,
          });
          assert.equal(
            r.status,
            400,
            `${JSON.stringify(host_overrides)}: ${JSON.stringify(r.body)}`,
          );
          assert.equal(r.body.error, "validation_failed");
        }
        const tooMany = await call(eng, `${P}/${id}`, {
          method: "PATCH",
          json: { host_overrides: many },
          headers: admin.headers,
        });
        assert.match(tooMany.body.message, /at most 16 host overrides/);
        const refused = await call(eng, P, {
          json: providerBody(url, { name: "refused", host_overrides: { [NAME]: "localhost" } }),
          headers: admin.headers,
        });
        assert.equal(refused.status, 400);
        const after = await get(eng, admin, id);
        assert.deepEqual(after, before, "a refused change leaves the provider as it was");
        const list = await call(eng, P, { method: "GET", headers: admin.headers });
        assert.equal(list.body.providers.length, 1, "a refused create creates nothing");
        const doc = await (await eng.request("/api/openapi.json")).json();
        const schemas = doc.components.schemas;
        for (const name of ["DirectoryProviderCreate", "DirectoryProviderPatch"]) {
          assert.equal(schemas[name].properties.host_overrides.type, "object", name);
        }
        assert.ok(schemas.DirectoryProvider.properties.host_overrides);
      });

      await t.step("changing overrides needs a new test; re-sending them does not", async () => {
        const two = { "dc2.corp.example": "10.0.0.2", [NAME]: "127.0.0.1" };
        const changed = await call(eng, `${P}/${id}`, {
          method: "PATCH",
          json: { host_overrides: two },
          headers: admin.headers,
        });
        assert.equal(changed.status, 200);
        assert.equal(changed.body.enabled, false, "an override change disables until tested");
        assert.equal(changed.body.needs_test, true);
        const early = await call(eng, `${P}/${id}`, {
          method: "PATCH",
          json: { enabled: true },
          headers: admin.headers,
        });
        assert.equal(early.status, 409);
        assert.equal(early.body.error, "provider_not_tested");
        assert.equal((await runTest(eng, admin, id)).ok, true);
        assert.equal(
          (await call(eng, `${P}/${id}`, {
            method: "PATCH",
            json: { enabled: true },
            headers: admin.headers,
          })).status,
          200,
        );
        // Same content, other key order and case: not a change (jsonb reorders keys too).
        const same = await call(eng, `${P}/${id}`, {
          method: "PATCH",
          json: {
            host_overrides: { [NAME.toUpperCase()]: "127.0.0.1", "dc2.corp.example": "10.0.0.2" },
          },
          headers: admin.headers,
        });
        assert.equal(same.status, 200);
        assert.equal(same.body.enabled, true);
        assert.equal(same.body.needs_test, false);
        assert.deepEqual(Object.keys(same.body.host_overrides), ["dc2.corp.example", NAME]);
      });

      await t.step("an override never weakens the name check (LDAPS)", async () => {
        // The certificate covers 127.0.0.1 but not WRONG: checking the IP would pass.
        const created = await call(eng, P, {
          json: providerBody(`ldaps://${WRONG}:${ldapsPort}`, {
            name: "wrong name",
            tls_ca_pem: slapd.caPem,
            host_overrides: { [WRONG]: "127.0.0.1" },
          }),
          headers: admin.headers,
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const r = await runTest(eng, admin, created.body.id);
        assert.equal(r.ok, false);
        assert.equal(r.steps[0]!.via, "127.0.0.1");
        assert.match(r.steps[0]!.message, /TLS failed: Hostname\/IP does not match/);
        assert.ok(r.steps[0]!.message.includes(WRONG));
        const enable = await call(eng, `${P}/${created.body.id}`, {
          method: "PATCH",
          json: { enabled: true },
          headers: admin.headers,
        });
        assert.equal(enable.status, 409);
        // The failover path (lookup-user) names the address it tried as well.
        const lookup = await call(eng, `${P}/${created.body.id}/lookup-user`, {
          json: { username: "bob" },
          headers: admin.headers,
        });
        assert.equal(lookup.status, 503);
        assert.ok(lookup.body.message.includes(`ldaps://${WRONG}:${ldapsPort} via 127.0.0.1`));
      });

      await t.step("StartTLS: override to 127.0.0.1 passes, a wrong name is refused", async () => {
        const good = await call(eng, P, {
          json: providerBody(`ldap://${NAME}:${slapd.port}`, {
            name: "StartTLS override",
            start_tls: true,
            tls_ca_pem: slapd.caPem,
            host_overrides: { [NAME]: "127.0.0.1" },
          }),
          headers: admin.headers,
        });
        assert.equal(good.status, 201, JSON.stringify(good.body));
        const ok = await runTest(eng, admin, good.body.id, "carol");
        assert.equal(ok.ok, true, JSON.stringify(ok));
        assert.match(ok.steps[0]!.message, /^connected, StartTLS negotiated; ldap:\/\//);
        assert.ok(ok.steps[0]!.message.includes(`certificate is checked for ${NAME}`));
        assert.equal(ok.steps[0]!.via, "127.0.0.1");

        const bad = await call(eng, P, {
          json: providerBody(`ldap://${WRONG}:${slapd.port}`, {
            name: "StartTLS wrong name",
            start_tls: true,
            tls_ca_pem: slapd.caPem,
            host_overrides: { [WRONG]: "127.0.0.1" },
          }),
          headers: admin.headers,
        });
        const refused = await runTest(eng, admin, bad.body.id);
        assert.equal(refused.ok, false);
        assert.match(refused.steps[0]!.message, /TLS failed: Hostname\/IP does not match/);
      });
    } finally {
      await eng.close();
      await slapd.stop();
    }
  },
});

Deno.test({
  name: "directory host overrides: SNI carries the URL's host name, TCP goes to the address",
  ignore: opensslMissing,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "borealis-sni-" });
    const sniSeen: string[] = [];
    let server: tls.Server | undefined;
    try {
      const caPem = await makeCertificates(dir, [NAME]);
      const creds = {
        cert: await Deno.readTextFile(`${dir}/server.pem`),
        key: await Deno.readTextFile(`${dir}/server.key`),
      };
      server = tls.createServer({
        ...creds,
        SNICallback: (name, cb) => {
          sniSeen.push(name);
          cb(null, tls.createSecureContext(creds));
        },
      }, (socket) => socket.end());
      await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as { port: number }).port;
      const settings = {
        server_urls: [],
        start_tls: false,
        tls_ca_pem: caPem,
        connect_timeout_ms: 2000,
        operation_timeout_ms: 2000,
        host_overrides: { [NAME]: "127.0.0.1" },
      };
      const client = await openClient(`ldaps://${NAME}:${port}`, settings);
      await closeClient(client);
      assert.deepEqual(sniSeen, [NAME]);
    } finally {
      await new Promise((resolve) => server ? server.close(resolve) : resolve(undefined));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * LDAPS and StartTLS against a real slapd with a certificate from a throwaway CA: the
 * pinned CA is what makes the connection trusted; without it the test step says why.
 */
import assert from "node:assert/strict";
import aegis from "../plugins/aegis/mod.ts";
import directory from "../plugins/directory/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { createOperator } from "./helpers/operators.ts";
import { providerBody, slapdMissing, startSlapd, USERS } from "./helpers/slapd.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

const opensslMissing = (() => {
  try {
    return !new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return true;
  }
})();
if (opensslMissing) console.warn("WARNING: openssl missing; directory TLS tests skipped");

// deno-lint-ignore no-explicit-any
type Json = any;

async function call(
  t: TestEngine,
  path: string,
  init: { method?: string; json?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Json }> {
  const res = await t.request(path, { method: init.method ?? "POST", ...init });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const P = "/api/directory/providers";

Deno.test({
  name: "directory over LDAPS and StartTLS with a pinned CA",
  ignore: slapdMissing || opensslMissing,
  async fn(t) {
    const slapd = await startSlapd({ tls: true });
    const eng = await startTestEngine({
      plugins: [aegis, operators, directory],
      env: { BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "0" },
    });
    try {
      const admin = await createOperator(eng, { role: "Admin" });

      await t.step("ldaps:// with the pinned CA passes and signs in", async () => {
        const created = await call(eng, P, {
          json: providerBody(slapd.ldapsUrl!, { tls_ca_pem: slapd.caPem }),
          headers: admin.headers,
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const id = created.body.id;
        const tested = await call(eng, `${P}/${id}/test`, { headers: admin.headers });
        assert.equal(tested.body.ok, true, JSON.stringify(tested.body));
        assert.match(tested.body.steps[0].message, /TLS/);
        await call(eng, `${P}/${id}`, {
          method: "PATCH",
          json: { enabled: true },
          headers: admin.headers,
        });
        const login = await call(eng, "/api/auth/login", {
          json: { username: "bob", password: USERS.bob.password },
        });
        assert.equal(login.status, 200, JSON.stringify(login.body));
        assert.equal(login.body.status, "mfa_required");

        // Unpinning the CA leaves only the system roots, which do not know this CA.
        const unpinned = await call(eng, `${P}/${id}/certificate`, {
          json: { pem: null },
          headers: admin.headers,
        });
        assert.equal(unpinned.status, 200);
        assert.equal(unpinned.body.enabled, false);
        assert.equal(unpinned.body.needs_test, true);
        const failed = await call(eng, `${P}/${id}/test`, { headers: admin.headers });
        assert.equal(failed.body.ok, false);
        assert.match(failed.body.steps[0].message, /TLS failed: .*certificate/);
        const bad = await call(eng, `${P}/${id}/certificate`, {
          json: { pem: "garbage" },
          headers: admin.headers,
        });
        assert.equal(bad.status, 400);
        const repinned = await call(eng, `${P}/${id}/certificate`, {
          json: { pem: slapd.caPem },
          headers: admin.headers,
        });
        assert.equal(repinned.body.tls_ca_pem, slapd.caPem);
        assert.equal(
          (await call(eng, `${P}/${id}/test`, { headers: admin.headers })).body.ok,
          true,
        );
      });

      await t.step("StartTLS on ldap:// with the pinned CA", async () => {
        const created = await call(eng, P, {
          json: providerBody(slapd.url, {
            name: "StartTLS",
            start_tls: true,
            tls_ca_pem: slapd.caPem,
          }),
          headers: admin.headers,
        });
        assert.equal(created.status, 201);
        const tested = await call(eng, `${P}/${created.body.id}/test`, {
          json: { username: "carol" },
          headers: admin.headers,
        });
        assert.equal(tested.body.ok, true, JSON.stringify(tested.body));
        assert.match(tested.body.steps[0].message, /StartTLS/);
      });
    } finally {
      await eng.close();
      await slapd.stop();
    }
  },
});

/**
 * BOREALIS_TRUSTED_PROXIES end to end: the audit log and per-address throttling see the
 * forwarded client only behind a trusted proxy, a client cannot pick its own address,
 * and a local reverse proxy that is not trusted does not make remote callers "local"
 * to the first-admin setup.
 */
import assert from "node:assert/strict";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

async function failedLoginIp(
  t: Awaited<ReturnType<typeof startTestEngine>>,
  ip: string,
  xff?: string,
): Promise<string | null> {
  const r = await t.request("/api/auth/login", {
    method: "POST",
    json: { username: `nobody-${crypto.randomUUID().slice(0, 8)}`, password: "wrong password 1" },
    headers: xff ? { "x-forwarded-for": xff } : {},
    ip,
  });
  assert.equal(r.status, 401);
  const [row] = await t.engine.sql<{ ip: string | null }[]>`
    select ip from audit_log where action = 'auth.login' order by id desc limit 1`;
  return row?.ip ?? null;
}

Deno.test("trusted proxies: forwarded client in the audit log only behind a trusted proxy", async () => {
  const t = await startTestEngine({
    plugins: [aegis, operators],
    env: { BOREALIS_TRUSTED_PROXIES: "10.0.0.0/8" },
  });
  try {
    assert.equal(await failedLoginIp(t, "10.0.0.2", "198.51.100.7"), "198.51.100.7");
    // The client's own header is to the left of what the proxy appended.
    assert.equal(await failedLoginIp(t, "10.0.0.2", "1.2.3.4, 198.51.100.8"), "198.51.100.8");
    // Not from a trusted proxy: the header is ignored.
    assert.equal(await failedLoginIp(t, "203.0.113.9", "198.51.100.7"), "203.0.113.9");
  } finally {
    await t.close();
  }
});

Deno.test("trusted proxies: a bad entry stops start-up naming it", async () => {
  await assert.rejects(
    startTestEngine({
      plugins: [aegis, operators],
      env: { BOREALIS_TRUSTED_PROXIES: "10.0.0.0/8, 300.1.1.1" },
    }),
    /BOREALIS_TRUSTED_PROXIES.*300\.1\.1\.1/s,
  );
});

Deno.test("bootstrap: a loopback peer forwarding for someone else is not local", async () => {
  const t = await startTestEngine({ plugins: [aegis, operators] });
  try {
    const admin = { username: "first-admin", password: "An admin passphrase 42" };
    // A reverse proxy on this host that is not trusted: remote callers must not pass
    // the loopback rule.
    let r = await t.request("/api/bootstrap/admin/setup", {
      method: "POST",
      json: admin,
      headers: { "x-forwarded-for": "203.0.113.50" },
    });
    assert.equal(r.status, 403);
    const [n] = await t.engine.sql<{ n: number }[]>`select count(*)::int as n from users`;
    assert.equal(n!.n, 0);
    // Really local: allowed.
    r = await t.request("/api/bootstrap/admin/setup", { method: "POST", json: admin });
    assert.equal(r.status, 201);
  } finally {
    await t.close();
  }
});

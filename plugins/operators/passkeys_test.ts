import assert from "node:assert/strict";
import { createOperator } from "../../tests/helpers/operators.ts";
import { startTestEngine } from "../../tests/helpers/test_engine.ts";
import aegis from "../aegis/mod.ts";
import operators, { operatorsKey } from "./mod.ts";
import { SoftAuthenticator } from "./testing/soft_authenticator.ts";

const ORIGIN = "https://rmm.example.test";
const env = { BOREALIS_PUBLIC_BASE_URL: ORIGIN };

Deno.test("passkeys: register with 'none' attestation, sign in, replay refused, rename, delete", async () => {
  const t = await startTestEngine({ plugins: [aegis, operators], env });
  try {
    const op = await createOperator(t, { role: "User" });
    const auth = new SoftAuthenticator(ORIGIN);
    const svc = t.engine.service(operatorsKey);
    const second = await svc.createSession(op.id, "test");
    const other = { Authorization: `Bearer ${second.token}` };

    // Registering a factor needs the password again.
    let r = await t.request("/api/auth/passkeys/register/options", {
      method: "POST",
      headers: op.headers,
      json: { current_password: "not-the-password" },
    });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error, "invalid_password");
    r = await t.request("/api/auth/passkeys/register/options", {
      method: "POST",
      headers: op.headers,
      json: { current_password: op.password },
    });
    assert.equal(r.status, 200);
    const createOpts = await r.json();
    assert.equal(createOpts.rp.id, "rmm.example.test");
    assert.equal(createOpts.attestation, "none");
    const attestation = await auth.create(createOpts);
    r = await t.request("/api/auth/passkeys/register/verify", {
      method: "POST",
      headers: op.headers,
      json: { response: attestation, label: "Laptop" },
    });
    assert.equal(r.status, 201, await r.clone().text());
    const passkey = await r.json();
    assert.equal(passkey.label, "Laptop");
    // A new factor ends the user's other sessions, not the one that added it.
    assert.equal((await t.request("/api/auth/me", { headers: op.headers })).status, 200);
    assert.equal((await t.request("/api/auth/me", { headers: other })).status, 401);
    // The challenge was single use.
    r = await t.request("/api/auth/passkeys/register/verify", {
      method: "POST",
      headers: op.headers,
      json: { response: attestation },
    });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error, "invalid_challenge");

    // Passwordless sign-in.
    r = await t.request("/api/auth/passkeys/authenticate/options", { method: "POST", json: {} });
    const getOpts = await r.json();
    const assertion = await auth.get(getOpts);
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: assertion, bearer: true },
    });
    assert.equal(r.status, 200, await r.clone().text());
    const signedIn = await r.json();
    assert.equal(signedIn.status, "ok");
    assert.equal(signedIn.username, op.username);
    const me = await (await t.request("/api/auth/me", {
      headers: { Authorization: `Bearer ${signedIn.token}` },
    })).json();
    assert.equal(me.method, "session");
    assert.equal(me.passkey_count, 1);
    // Replaying the same assertion fails (challenge consumed).
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: assertion, bearer: true },
    });
    assert.equal(r.status, 401);
    // A tampered signature fails even with a fresh challenge.
    const fresh =
      await (await t.request("/api/auth/passkeys/authenticate/options", { method: "POST" })).json();
    const forged = await auth.get(fresh) as { response: Record<string, string> };
    forged.response.signature = forged.response.signature!.slice(0, -4) + "AAAA";
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: forged },
    });
    assert.equal(r.status, 401);
    // An expired challenge fails.
    const old =
      await (await t.request("/api/auth/passkeys/authenticate/options", { method: "POST" })).json();
    await t.clock.advance(5 * 60_000 + 1000);
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: await auth.get(old) },
    });
    assert.equal(r.status, 401);
    // Wrong origin fails.
    const evil = new SoftAuthenticator("https://evil.example");
    evil.credentials.push(...auth.credentials);
    const o2 =
      await (await t.request("/api/auth/passkeys/authenticate/options", { method: "POST" })).json();
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: await evil.get(o2, auth.credentials[0]) },
    });
    assert.equal(r.status, 401);
    // Garbage is a 400, not a 500.
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: { id: "x", rawId: "x", type: "public-key", response: {} } },
    });
    assert.equal(r.status, 400);

    // Without user verification (possession alone) a passkey is not a second factor.
    auth.userVerified = false;
    const noUv =
      await (await t.request("/api/auth/passkeys/authenticate/options", { method: "POST" })).json();
    assert.equal(noUv.userVerification, "required");
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: await auth.get(noUv) },
    });
    assert.equal(r.status, 401);
    auth.userVerified = true;

    const op2 = await createOperator(t, { role: "User" });
    const list = await (await t.request("/api/auth/passkeys", { headers: op.headers })).json();
    assert.equal(list.passkeys.length, 1);
    r = await t.request(`/api/auth/passkeys/${passkey.id}`, {
      method: "PATCH",
      headers: op2.headers,
      json: { label: "x" },
    });
    assert.equal(r.status, 404);
    r = await t.request(`/api/auth/passkeys/${passkey.id}`, {
      method: "PATCH",
      headers: op.headers,
      json: { label: "Desk" },
    });
    assert.equal((await r.json()).label, "Desk");
    r = await t.request(`/api/auth/passkeys/${passkey.id}`, {
      method: "DELETE",
      headers: op2.headers,
    });
    assert.equal(r.status, 404);
    r = await t.request(`/api/auth/passkeys/${passkey.id}`, {
      method: "DELETE",
      headers: op.headers,
    });
    assert.equal(r.status, 204);
    const o3 =
      await (await t.request("/api/auth/passkeys/authenticate/options", { method: "POST" })).json();
    r = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: await auth.get(o3) },
    });
    assert.equal(r.status, 401);
  } finally {
    await t.close();
  }
});

import assert from "node:assert/strict";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { tokensKey } from "../plugins/tokens/mod.ts";
import { b64url } from "./agent/agent.ts";
import { startIdentity } from "./agent/harness.ts";

const enc = new TextEncoder();

Deno.test("tokens: access token claims, JWKS, and key rotation keeps old tokens verifying", async () => {
  const h = await startIdentity();
  try {
    const a = await h.agent({ hostname: "claims" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("claims");
    const body = (await a.poll()).body;
    const token = a.state.access_token!;
    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, "EdDSA");
    assert.equal(header.typ, "at+jwt");
    assert.match(String(header.kid), /^[0-9a-f]{16}$/);
    const c = decodeJwt(token) as Record<string, unknown>;
    assert.equal(c.sub, `device:${body.guid}`);
    assert.equal(c.guid, body.guid);
    assert.match(String(c.ssl_key_fingerprint), /^[0-9a-f]{64}$/);
    assert.equal(c.token_version, 1);
    assert.equal(typeof (c.cnf as { jkt: string }).jkt, "string");
    assert.equal((c.exp as number) - (c.iat as number), 900);
    assert.equal(c.nbf, c.iat);
    assert.ok(c.iss && c.aud);

    const jwks = await (await h.t.request("/api/agent/jwks")).json();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kid, header.kid);
    assert.equal(jwks.keys[0].d, undefined);
    const sealed = await h.t.engine.sql`select private_sealed from engine_signing_keys`;
    assert.match(sealed[0]!.private_sealed, /^aegis:v1:/);

    const newKid = await h.t.engine.service(tokensKey).keys.rotate();
    assert.notEqual(newKid, header.kid);
    assert.equal(
      (await a.call("POST", "/api/agent/script/request", {}, { retry: false })).status,
      200,
    );
    const both = await (await h.t.request("/api/agent/jwks")).json();
    assert.deepEqual(both.keys.map((k: { kid: string }) => k.kid), [newKid, header.kid]);
    await a.refresh();
    assert.equal(decodeProtectedHeader(a.state.access_token!).kid, newKid);
    // Once every token of the old key has expired it stops verifying and leaves the JWKS.
    await h.t.clock.advance(1_250_000);
    const after = await (await h.t.request("/api/agent/jwks")).json();
    assert.deepEqual(after.keys.map((k: { kid: string }) => k.kid), [newKid]);
  } finally {
    await h.close();
  }
});

Deno.test("tokens: refresh needs a proof by the bound key, refuses a missing proof, expires, and works for an ES256-bound agent", async () => {
  const h = await startIdentity();
  try {
    const a = await h.agent({ hostname: "bound" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("bound");
    await a.poll();
    const refresh = (headers: Record<string, string>, rt = a.state.refresh_token) =>
      h.t.request("/api/agent/token/refresh", {
        method: "POST",
        json: { guid: a.state.guid, refresh_token: rt },
        headers,
      });
    // No proof: refused (upstream cleared the binding instead).
    const none = await refresh({});
    assert.equal(none.status, 400);
    assert.equal((await none.json()).error, "invalid_dpop_proof");
    // A proof by another key.
    const other = await h.agent({ hostname: "other" });
    const wrong = await refresh({
      DPoP: await other.proof("POST", "http://127.0.0.1/api/agent/token/refresh"),
    });
    assert.equal(wrong.status, 400);
    assert.equal((await wrong.json()).error, "invalid_dpop_proof");
    // Garbage token.
    const unknown = await refresh({
      DPoP: await a.proof("POST", "http://127.0.0.1/api/agent/token/refresh"),
    }, "nope");
    assert.equal(unknown.status, 401);
    assert.equal((await unknown.json()).error, "invalid_refresh_token");
    assert.equal((await refresh({}, undefined)).status, 400);
    // The bound key works; nothing was consumed by the failures above.
    await a.refresh();

    // An agent that binds an ES256 DPoP key at poll time.
    const es = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const esJwk = await crypto.subtle.exportKey("jwk", es.publicKey);
    const esProof = async (method: string, url: string, token?: string) => {
      const header = {
        typ: "dpop+jwt",
        alg: "ES256",
        jwk: { kty: "EC", crv: "P-256", x: esJwk.x, y: esJwk.y },
      };
      const claims: Record<string, unknown> = {
        jti: crypto.randomUUID(),
        htm: method,
        htu: url,
        iat: Math.floor(h.t.clock.now() / 1000),
      };
      if (token) {
        claims.ath = b64url(
          new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(token))),
        );
      }
      const input = `${b64url(enc.encode(JSON.stringify(header)))}.${
        b64url(enc.encode(JSON.stringify(claims)))
      }`;
      const sig = await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        es.privateKey,
        enc.encode(input),
      );
      return `${input}.${b64url(new Uint8Array(sig))}`;
    };
    const e = await h.agent({ hostname: "es-agent" });
    await e.requestEnrollment(h.site.enrollment_code);
    await h.approve("es-agent");
    const polled = await h.t.request("/api/agent/enroll/poll", {
      method: "POST",
      json: {
        approval_reference: e.state.approval_reference,
        client_nonce: e.state.client_nonce,
        proof_sig: await e.enrollmentProof(),
      },
      headers: { DPoP: await esProof("POST", "http://127.0.0.1/api/agent/enroll/poll") },
    });
    const tokens = await polled.json();
    assert.equal(tokens.status, "approved");
    const url = "http://127.0.0.1/api/agent/script/request";
    const ok = await h.t.request("/api/agent/script/request", {
      method: "POST",
      json: {},
      headers: {
        Authorization: `DPoP ${tokens.access_token}`,
        DPoP: await esProof("POST", url, tokens.access_token),
      },
    });
    assert.equal(ok.status, 200);
    // The identity key is not the bound key for this agent.
    const mismatch = await h.t.request("/api/agent/script/request", {
      method: "POST",
      json: {},
      headers: {
        Authorization: `DPoP ${tokens.access_token}`,
        DPoP: await e.proof("POST", url, { accessToken: tokens.access_token }),
      },
    });
    assert.equal(mismatch.status, 401);
  } finally {
    await h.close();
  }
});

Deno.test("tokens: refresh tokens expire after the idle window", async () => {
  const h = await startIdentity({ env: { BOREALIS_REFRESH_TOKEN_IDLE_DAYS: "1" } });
  try {
    const a = await h.agent({ hostname: "idle" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("idle");
    await a.poll();
    await h.t.engine.sql`update refresh_tokens set expires_at = expires_at - interval '2 days'`;
    await assert.rejects(a.refresh(), /401 refresh_token_expired/);
  } finally {
    await h.close();
  }
});

/**
 * Unit and property tests of the DPoP verifier with injected clock and replay cache
 * (the seams IdentityServer's validator tests use).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, SignJWT } from "jose";
import {
  accessTokenHash,
  b64urlEncode,
  DpopError,
  normalizeHtu,
  type ReplayCache,
  verifyDpopProof,
} from "./dpop.ts";

const enc = new TextEncoder();
const URL_ = "https://rmm.example.com/api/agent/script/request";
const NOW = Date.UTC(2026, 0, 5, 12);

function memoryReplay(): ReplayCache {
  const seen = new Set<string>();
  return {
    claim: (k) => {
      if (seen.has(k)) return Promise.resolve(false);
      seen.add(k);
      return Promise.resolve(true);
    },
  };
}

const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
  "sign",
  "verify",
]) as CryptoKeyPair;
const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
const pub = { kty: "OKP", crv: "Ed25519", x: jwk.x! };
const jkt = await calculateJwkThumbprint(pub, "sha256");
const TOKEN = "header.payload.signature";

async function proof(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  return await new SignJWT({
    htm: "POST",
    htu: URL_,
    ath: await accessTokenHash(TOKEN),
    jti: crypto.randomUUID(),
    iat: Math.floor(NOW / 1000),
    ...claims,
  })
    .setProtectedHeader({ typ: "dpop+jwt", alg: "EdDSA", jwk: pub, ...header } as never)
    .sign(pair.privateKey);
}

const target = (p: string) => ({
  headers: [p],
  method: "POST",
  url: URL_,
  accessToken: TOKEN,
  expectedJkt: jkt,
});
const deps = () => ({ now: () => NOW, replay: memoryReplay() });

Deno.test("dpop: a good proof passes and returns the RFC 7638 thumbprint; the same proof twice is a replay", async () => {
  const d = deps();
  const p = await proof();
  const ok = await verifyDpopProof(target(p), d);
  assert.equal(ok.jkt, jkt);
  assert.equal(ok.alg, "EdDSA");
  await assert.rejects(verifyDpopProof(target(p), d), /replayed/);
});

Deno.test("dpop: the iat window is ±300 s by default, configurable", async () => {
  const nowS = Math.floor(NOW / 1000);
  for (
    const [delta, ok] of [[-301, false], [301, false], [-300, true], [300, true], [-60, true], [
      60,
      true,
    ]] as const
  ) {
    const p = await proof({ iat: nowS + delta });
    const r = verifyDpopProof(target(p), deps());
    if (ok) await r;
    else await assert.rejects(r, DpopError);
  }
  await assert.rejects(
    verifyDpopProof(target(await proof({ iat: nowS - 31 })), { ...deps(), maxSkewSeconds: 30 }),
    DpopError,
  );
});

Deno.test("dpop: htu normalisation compares scheme, host, port and path only", () => {
  assert.equal(normalizeHtu("HTTPS://RMM.example.com:443/a?b#c"), "https://rmm.example.com/a");
  assert.equal(normalizeHtu("http://h:80/x"), "http://h/x");
  assert.notEqual(normalizeHtu("http://h:8080/x"), normalizeHtu("http://h/x"));
  assert.equal(normalizeHtu("ftp://h/x"), null);
  assert.equal(normalizeHtu("not a url"), null);
});

/** A mutation of a compact JWS string. */
const mutation = fc.oneof(
  // Flip one character anywhere.
  fc.record({
    kind: fc.constant("char" as const),
    at: fc.nat(),
    ch: fc.constantFrom(...'AZaz09-_.=+/ {}"'),
  }),
  // Replace one JSON field of header or payload with an arbitrary JSON value.
  fc.record({
    kind: fc.constant("field" as const),
    part: fc.constantFrom(0, 1),
    field: fc.constantFrom(
      "typ",
      "alg",
      "jwk",
      "crit",
      "kid",
      "jti",
      "htm",
      "htu",
      "iat",
      "ath",
      "nonce",
      "x",
    ),
    value: fc.oneof(fc.jsonValue(), fc.constant(undefined)),
  }),
  // Truncate, or append garbage.
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("append" as const), text: fc.string({ maxLength: 20 }) }),
);

function apply(
  p: string,
  m: fc.Arbitrary<unknown> extends never ? never : Record<string, unknown>,
): string {
  switch (m.kind) {
    case "char": {
      const at = (m.at as number) % p.length;
      return p.slice(0, at) + (m.ch as string) + p.slice(at + 1);
    }
    case "cut":
      return p.slice(0, (m.at as number) % p.length);
    case "append":
      return p + (m.text as string);
    default: {
      const parts = p.split(".");
      const i = m.part as number;
      const obj = JSON.parse(
        new TextDecoder().decode(
          Uint8Array.from(
            atob(parts[i]!.replace(/-/g, "+").replace(/_/g, "/")),
            (c) => c.charCodeAt(0),
          ),
        ),
      );
      if (m.value === undefined) delete obj[m.field as string];
      else obj[m.field as string] = m.value;
      parts[i] = b64urlEncode(enc.encode(JSON.stringify(obj)));
      return parts.join(".");
    }
  }
}

Deno.test("dpop property: random mutations of a valid proof are never accepted and never throw anything but DpopError", async () => {
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      const p = await proof();
      const mutated = apply(p, m as Record<string, unknown>);
      if (mutated === p) return; // a no-op mutation (same character written back)
      try {
        await verifyDpopProof(target(mutated), deps());
      } catch (err) {
        assert.ok(err instanceof DpopError, `unexpected ${err}`);
        return;
      }
      // Only mutations that leave the signed bytes identical could pass; none may.
      assert.fail(`accepted a mutated proof: ${JSON.stringify(m)}`);
    }),
    { numRuns: 400 },
  );
});

Deno.test("dpop differential: whatever the verifier accepts, jose accepts too (signature layer)", async () => {
  // jose checks the JWS itself (embedded jwk, typ, alg); ours adds the RFC 9449 claims,
  // canonical base64url and the replay cache, so it must only ever be stricter.
  const joseAccepts = async (p: string) => {
    try {
      await jwtVerify(p, EmbeddedJWK, {
        typ: "dpop+jwt",
        algorithms: ["EdDSA", "ES256"],
        currentDate: new Date(NOW),
      });
      return true;
    } catch {
      return false;
    }
  };
  const oursAccepts = async (p: string) => {
    try {
      await verifyDpopProof(target(p), deps());
      return true;
    } catch (err) {
      assert.ok(err instanceof DpopError, `unexpected ${err}`);
      return false;
    }
  };
  const good = await proof();
  assert.equal(await oursAccepts(good), true);
  assert.equal(await joseAccepts(good), true);
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      const mutated = apply(await proof(), m as Record<string, unknown>);
      if (await oursAccepts(mutated)) assert.equal(await joseAccepts(mutated), true, mutated);
    }),
    { numRuns: 300 },
  );
});

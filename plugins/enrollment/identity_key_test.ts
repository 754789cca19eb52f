import assert from "node:assert/strict";
import { calculateJwkThumbprint } from "jose";
import { decodeBase64Loose, parseAgentKey, proofInput } from "./identity_key.ts";

const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
  "sign",
  "verify",
]) as CryptoKeyPair;
const der = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
const std = btoa(String.fromCharCode(...der));

Deno.test("identity key: standard, URL-safe, unpadded and wrapped base64 all decode", () => {
  const urlSafe = std.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const wrapped = std.slice(0, 20) + "\n  " + std.slice(20);
  for (const text of [std, urlSafe, wrapped]) assert.deepEqual(decodeBase64Loose(text), der);
  assert.equal(decodeBase64Loose("not base64!"), null);
  assert.equal(decodeBase64Loose("A"), null);
});

Deno.test("identity key: only Ed25519 SPKI is accepted; fingerprint and jkt are derived", async () => {
  const key = await parseAgentKey(der);
  assert.ok(key);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  assert.equal(
    key.fingerprint,
    Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
  );
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  assert.equal(
    key.jkt,
    await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: jwk.x! }, "sha256"),
  );
  const ec = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
  ]) as CryptoKeyPair;
  const ecDer = new Uint8Array(await crypto.subtle.exportKey("spki", ec.publicKey));
  assert.equal(await parseAgentKey(ecDer), null);
  assert.equal(await parseAgentKey(der.subarray(0, 43)), null);
  assert.equal(await parseAgentKey(new Uint8Array(44)), null);
});

Deno.test("identity key: the proof input is server_nonce ‖ reference ‖ client_nonce, and signs", async () => {
  const server = new Uint8Array(32).fill(1);
  const client = new Uint8Array(16).fill(2);
  const ref = "6f1c0000-0000-4000-8000-000000000000";
  const input = proofInput(server, ref, client);
  assert.equal(input.length, 32 + ref.length + 16);
  assert.deepEqual(input.subarray(0, 32), server);
  assert.equal(new TextDecoder().decode(input.subarray(32, 32 + ref.length)), ref);
  assert.deepEqual(input.subarray(32 + ref.length), client);
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, input as BufferSource);
  const key = (await parseAgentKey(der))!;
  assert.ok(await crypto.subtle.verify({ name: "Ed25519" }, key.key, sig, input as BufferSource));
  assert.ok(
    !await crypto.subtle.verify(
      { name: "Ed25519" },
      key.key,
      sig,
      proofInput(server, ref + "x", client) as BufferSource,
    ),
  );
});

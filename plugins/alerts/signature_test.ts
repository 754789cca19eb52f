import assert from "node:assert/strict";
import fc from "fast-check";
import { newSigningSecret, sign, verify } from "./signature.ts";

Deno.test("signature: HMAC-SHA256 over timestamp and body, checked with a time window", () => {
  const secret = newSigningSecret();
  assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);
  const body = '{"version":1,"type":"test"}';
  const header = sign(secret, 1_767_225_600, body);
  assert.match(header, /^v1=[0-9a-f]{64}$/);
  assert.equal(verify(secret, header, "1767225600", body, 1_767_225_600), true);
  assert.equal(verify(secret, header, "1767225600", body, 1_767_225_600 + 299), true);
  assert.equal(verify(secret, header, "1767225600", body, 1_767_225_600 + 301), false, "too old");
  assert.equal(verify(secret, header, "1767225601", body, 1_767_225_600), false, "timestamp");
  assert.equal(verify(secret, header, "1767225600", body + " ", 1_767_225_600), false, "body");
  assert.equal(verify(newSigningSecret(), header, "1767225600", body, 1_767_225_600), false);
  assert.equal(verify(secret, null, "1767225600", body, 1_767_225_600), false);
  assert.equal(verify(secret, header, null, body, 1_767_225_600), false);
  // Several signatures in one header (a secret change): one matching is enough.
  assert.equal(
    verify(secret, `v1=${"0".repeat(64)}, ${header}`, "1767225600", body, 1_767_225_600),
    true,
  );
});

Deno.test("signature: any change to the body breaks it (property)", () => {
  const secret = "whsec_property";
  fc.assert(fc.property(fc.string(), fc.string({ minLength: 1 }), (body, extra) => {
    const header = sign(secret, 100, body);
    return verify(secret, header, "100", body, 100) &&
      !verify(secret, header, "100", body + extra, 100);
  }));
});

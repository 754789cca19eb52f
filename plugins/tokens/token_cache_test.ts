import assert from "node:assert/strict";
import type { AccessClaims } from "./access.ts";
import { VerifiedTokenCache } from "./token_cache.ts";

const claims = (guid: string, exp: number): AccessClaims => ({
  sub: `device:${guid}`,
  guid,
  ssl_key_fingerprint: "f".repeat(64),
  token_version: 1,
  cnf: { jkt: "jkt" },
  iat: exp - 900,
  nbf: exp - 900,
  exp,
  iss: "urn:test",
  aud: "urn:test",
  jti: crypto.randomUUID(),
});

Deno.test("token cache: bounded — at capacity the oldest token goes, and its device index with it", () => {
  const cache = new VerifiedTokenCache(3);
  for (let i = 0; i < 5; i++) cache.set({ claims: claims(`D${i}`, 2000), ath: `h${i}` });
  assert.equal(cache.size, 3);
  assert.equal(cache.get("h0", 1000), undefined);
  assert.equal(cache.get("h1", 1000), undefined);
  assert.equal(cache.get("h4", 1000)?.claims.guid, "D4");
  // Forgetting an evicted device is harmless; forgetting a held one drops its tokens.
  cache.forgetDevice("d0");
  cache.forgetDevice("d3");
  assert.equal(cache.get("h3", 1000), undefined);
  assert.equal(cache.size, 2);
});

Deno.test("token cache: an expired token is a miss and is dropped; a device's tokens go together", () => {
  const cache = new VerifiedTokenCache();
  cache.set({ claims: claims("A", 1000), ath: "a1" });
  cache.set({ claims: claims("A", 1900), ath: "a2" });
  cache.set({ claims: claims("B", 1900), ath: "b1" });
  assert.ok(cache.get("a1", 999));
  assert.equal(cache.get("a1", 1000), undefined, "exp is exclusive, as in the JWT check");
  assert.equal(cache.size, 2);
  cache.forgetDevice("a");
  assert.equal(cache.get("a2", 1000), undefined);
  assert.ok(cache.get("b1", 1000));
  assert.deepEqual(cache.stats, { hits: 2, misses: 2 });
});

import assert from "node:assert/strict";
import { parseTrustedProxies, type ProxyMatcher, resolveClientIp } from "./client_ip.ts";

const matcher = (list: string[]): ProxyMatcher => {
  const m = parseTrustedProxies(list);
  if (Array.isArray(m)) throw new Error(`bad: ${m}`);
  return m;
};

Deno.test("trusted proxies: addresses and ranges parse; anything else is named", () => {
  const m = matcher(["10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1"]);
  assert.ok(m.trusts("10.9.8.7"));
  assert.ok(m.trusts("127.0.0.1"));
  assert.ok(!m.trusts("127.0.0.2"));
  assert.ok(m.trusts("fd12::1"));
  assert.ok(m.trusts("::1"));
  assert.ok(!m.trusts("11.0.0.1"));
  assert.ok(!m.trusts("not an ip"));
  assert.deepEqual(
    parseTrustedProxies([
      "10.0.0.0/33",
      "1.2.3",
      "fd00::/129",
      "10.0.0.0/8/1",
      "x/8",
      "10.0.0.0/-1",
    ]),
    ["10.0.0.0/33", "1.2.3", "fd00::/129", "10.0.0.0/8/1", "x/8", "10.0.0.0/-1"],
  );
});

Deno.test("client address: the rightmost hop that is not a trusted proxy", () => {
  const m = matcher(["10.0.0.0/8"]);
  // No proxies configured, or an untrusted peer: the header is ignored.
  assert.equal(resolveClientIp("10.0.0.1", "198.51.100.7", undefined), "10.0.0.1");
  assert.equal(resolveClientIp("203.0.113.5", "198.51.100.7", m), "203.0.113.5");
  // A trusted peer: the forwarded client.
  assert.equal(resolveClientIp("10.0.0.1", "198.51.100.7", m), "198.51.100.7");
  // A client that sends its own X-Forwarded-For cannot choose its address: the proxy
  // appended the real one on the right.
  assert.equal(resolveClientIp("10.0.0.1", "1.1.1.1, 198.51.100.7", m), "198.51.100.7");
  // Chains of trusted proxies are skipped.
  assert.equal(resolveClientIp("10.0.0.1", "198.51.100.7, 10.1.1.1, 10.2.2.2", m), "198.51.100.7");
  // Ports and brackets are removed; IPv6 works.
  assert.equal(resolveClientIp("10.0.0.1", "198.51.100.7:5555", m), "198.51.100.7");
  assert.equal(resolveClientIp("10.0.0.1", "[2001:db8::1]:443", m), "2001:db8::1");
  assert.equal(resolveClientIp("10.0.0.1", "2001:db8::2", m), "2001:db8::2");
  // A malformed hop ends the walk at the last address the proxies vouched for.
  assert.equal(resolveClientIp("10.0.0.1", "198.51.100.7, garbage", m), "10.0.0.1");
  assert.equal(resolveClientIp("10.0.0.1", "garbage, 10.3.3.3", m), "10.3.3.3");
  // Only trusted hops: the leftmost of them.
  assert.equal(resolveClientIp("10.0.0.1", "10.4.4.4, 10.5.5.5", m), "10.4.4.4");
});

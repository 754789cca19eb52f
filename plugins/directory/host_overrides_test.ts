import assert from "node:assert/strict";
import { overrideFor, tlsOptionsFor } from "./ldap.ts";
import {
  HostOverrides,
  isOverridableHost,
  isOverrideAddress,
  MAX_HOST_OVERRIDES,
} from "./providers.ts";

const settings = (host_overrides: Record<string, string>) => ({
  server_urls: [],
  host_overrides,
  start_tls: false,
  tls_ca_pem: null,
  connect_timeout_ms: 1000,
  operation_timeout_ms: 1000,
});

Deno.test("host override keys are host names, never addresses", () => {
  for (const h of ["dc1.corp.example", "DC1.Corp.Example", "localhost", "xn--bcher-kva.example"]) {
    assert.ok(isOverridableHost(h), h);
  }
  for (
    const h of [
      "",
      "10.0.0.1",
      "::1",
      "1.2.3",
      "dc1.corp.123",
      "-dc1.example",
      "dc1-.example",
      "dc1..example",
      "dc1.example.",
      "dc_1.example",
      "bücher.example",
      "__proto__",
      `${"a".repeat(64)}.example`,
      Array.from({ length: 130 }, () => "ab").join("."),
    ]
  ) {
    assert.ok(!isOverridableHost(h), h);
  }
});

Deno.test("host override values are server addresses", () => {
  for (const a of ["10.0.0.5", "127.0.0.1", "192.168.1.255", "::1", "fd00::5", "::ffff:10.0.0.1"]) {
    assert.ok(isOverrideAddress(a), a);
  }
  for (
    const a of [
      "",
      "0.0.0.0",
      "0.1.2.3",
      "224.0.0.1",
      "255.255.255.255",
      "::",
      "0:0:0:0:0:0:0:0",
      "ff02::1",
      "010.0.0.1",
      "10.0.0",
      "10.0.0.1:389",
      "[::1]",
      "fe80::1%eth0",
      "dc1.example",
    ]
  ) {
    assert.ok(!isOverrideAddress(a), a);
  }
});

Deno.test("the schema lower-cases, sorts, and counts", () => {
  const ok = HostOverrides.safeParse({ "b.example": "FD00::5", "A.example": "10.0.0.1" });
  assert.ok(ok.success);
  assert.deepEqual(ok.data, { "a.example": "10.0.0.1", "b.example": "fd00::5" });
  assert.deepEqual(Object.keys(ok.data!), ["a.example", "b.example"]);
  const full = Object.fromEntries(
    Array.from({ length: MAX_HOST_OVERRIDES }, (_, i) => [`h${i}.example`, `10.0.0.${i + 1}`]),
  );
  assert.ok(HostOverrides.safeParse(full).success);
  assert.ok(!HostOverrides.safeParse({ ...full, "one-more.example": "10.0.1.1" }).success);
  assert.ok(!HostOverrides.safeParse({ "A.example": "10.0.0.1", "a.example": "10.0.0.1" }).success);
  assert.ok(!HostOverrides.safeParse(JSON.parse('{"__proto__":"10.0.0.1"}')).success);
  assert.ok(!HostOverrides.safeParse(["10.0.0.1"]).success);
});

Deno.test("an override applies to its host name only, and TLS keeps the name", () => {
  const s = settings({ "dc1.corp.example": "10.0.0.5" });
  assert.equal(overrideFor("ldaps://DC1.corp.example:636", s), "10.0.0.5");
  assert.equal(overrideFor("ldap://dc1.corp.example", s), "10.0.0.5");
  assert.equal(overrideFor("ldaps://dc2.corp.example", s), undefined);
  assert.equal(overrideFor("ldaps://10.0.0.5", s), undefined);
  assert.equal(overrideFor("ldaps://constructor", settings({})), undefined);
  assert.equal(
    overrideFor("ldaps://dc1.corp.example", { ...s, host_overrides: undefined }),
    undefined,
  );
  // servername (SNI + certificate check) stays the URL's name, as written.
  assert.equal(tlsOptionsFor("ldaps://DC1.corp.example:636", s).servername, "DC1.corp.example");
  assert.equal(tlsOptionsFor("ldaps://10.0.0.5", s).servername, undefined);
});

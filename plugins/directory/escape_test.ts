import assert from "node:assert/strict";
import fc from "fast-check";
import { AndFilter, EqualityFilter, ExtensibleFilter, FilterParser, OrFilter } from "ldapts";
import {
  AD_IN_CHAIN_OID,
  adNestedGroupsFilter,
  directMembersFilter,
  domainRoot,
  escapeDnValue,
  escapeFilterBytes,
  escapeFilterValue,
  isDn,
  normalizeDn,
  renderFilter,
} from "./escape.ts";
import { mapGroups } from "./mapping.ts";

const HOSTILE = [
  "*)(uid=*",
  "admin)(|(uid=*",
  "*",
  "\\",
  "\u0000",
  "a\u0000b",
  "x)(objectClass=*))(&(uid=y",
  ")(",
  "\\2a",
  "é*ü(",
  "x".repeat(5000),
];

Deno.test("filter escaping (RFC 4515): hostile values stay one equality assertion", () => {
  for (const v of HOSTILE) {
    const f = FilterParser.parseString(`(uid=${escapeFilterValue(v)})`);
    assert.ok(f instanceof EqualityFilter, v);
    assert.equal((f as EqualityFilter).value, v);
  }
  assert.equal(escapeFilterValue("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
  assert.equal(escapeFilterValue("a\\b\u0000"), "a\\5cb\\00");
});

Deno.test("filter escaping: any string round-trips through ldapts' parser (property)", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), (v) => {
      const f = FilterParser.parseString(`(&(objectClass=person)(uid=${escapeFilterValue(v)}))`);
      assert.ok(f instanceof AndFilter);
      const eq = (f as AndFilter).filters[1];
      assert.ok(eq instanceof EqualityFilter);
      assert.equal(eq.value, v);
    }),
    { numRuns: 500 },
  );
});

Deno.test("renderFilter escapes every {username} and nothing else", () => {
  const t = "(|(uid={username})(mail={username}))";
  assert.equal(renderFilter(t, "a*"), "(|(uid=a\\2a)(mail=a\\2a))");
  const f = FilterParser.parseString(renderFilter(t, "admin)(|(uid=*"));
  assert.ok(f instanceof OrFilter);
  assert.equal(f.filters.length, 2);
});

Deno.test("DN escaping (RFC 4514)", () => {
  assert.equal(escapeDnValue("Smith, John"), "Smith\\, John");
  assert.equal(escapeDnValue('a+b;c<d>e"f\\g'), 'a\\+b\\;c\\<d\\>e\\"f\\\\g');
  assert.equal(escapeDnValue(" lead"), "\\ lead");
  assert.equal(escapeDnValue("#hash"), "\\#hash");
  assert.equal(escapeDnValue("trail "), "trail\\ ");
  assert.equal(escapeDnValue("back\\ "), "back\\\\\\ ");
  assert.equal(escapeDnValue(" "), "\\ ");
  assert.equal(escapeDnValue("nul\u0000"), "nul\\00");
  // An escaped value is one RDN value: a DN built from it has exactly the intended RDNs.
  const dn = `uid=${escapeDnValue("x,ou=admins")},ou=people,dc=example,dc=org`;
  assert.equal(normalizeDn(dn), "uid=x\\,ou=admins,ou=people,dc=example,dc=org");
  assert.ok(isDn(dn));
});

Deno.test("normalizeDn treats spellings of the same DN alike", () => {
  const a = normalizeDn("CN=Ops Team, OU=Groups,DC=Example,DC=org");
  assert.equal(a, "cn=ops team,ou=groups,dc=example,dc=org");
  assert.equal(normalizeDn("cn=Smith\\2C John,dc=x"), normalizeDn("cn=smith\\, john,dc=x"));
  assert.equal(normalizeDn("cn=Caf\\C3\\A9,dc=x"), normalizeDn("cn=café,dc=x"));
  assert.notEqual(normalizeDn("cn=a+uid=b,dc=x"), normalizeDn("cn=a,uid=b,dc=x"));
  assert.equal(isDn("not a dn"), false);
  assert.equal(isDn("dc=example,dc=org"), true);
});

Deno.test("AD matching-rule-in-chain filter: OID, escaped DN, parsed as extensible match", () => {
  const dn = "CN=Smith\\, John (IT)*,OU=Users,DC=corp,DC=example";
  const filter = adNestedGroupsFilter(dn);
  assert.equal(
    filter,
    "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=" +
      "CN=Smith\\5c, John \\28IT\\29\\2a,OU=Users,DC=corp,DC=example))",
  );
  const parsed = FilterParser.parseString(filter) as AndFilter;
  const ext = parsed.filters[1] as ExtensibleFilter;
  assert.ok(ext instanceof ExtensibleFilter);
  assert.equal(ext.rule, AD_IN_CHAIN_OID);
  assert.equal(ext.matchType, "member");
  assert.equal(ext.value, dn);
});

Deno.test("member filter for iterative nesting escapes each DN", () => {
  const f = directMembersFilter(["cn=a*,dc=x", "cn=b),dc=x"]);
  assert.equal(f, "(|(member=cn=a\\2a,dc=x)(member=cn=b\\29,dc=x))");
  const parsed = FilterParser.parseString(f) as OrFilter;
  assert.deepEqual(parsed.filters.map((x) => (x as EqualityFilter).value), [
    "cn=a*,dc=x",
    "cn=b),dc=x",
  ]);
});

Deno.test("mapping: highest privilege wins, sites unite, no match means no role", () => {
  const p = {
    group_mappings: [
      { group_dn: "cn=ops,dc=x", role: "User" as const },
      { group_dn: "CN=Admins, DC=x", role: "Admin" as const },
    ],
    site_mappings: [
      { label: "a", group_dns: ["cn=ops,dc=x"], site_ids: [3, 1] },
      { label: "b", group_dns: ["cn=field,dc=x"], site_ids: [2] },
    ],
  };
  assert.deepEqual(mapGroups(p, ["cn=ops,dc=x", "cn=field,dc=x"]), {
    role: "User",
    site_ids: [1, 2, 3],
    matched_groups: ["cn=ops,dc=x", "cn=field,dc=x"],
  });
  assert.equal(mapGroups(p, ["cn=admins,dc=x", "cn=ops,dc=x"]).role, "Admin");
  assert.deepEqual(mapGroups(p, ["cn=admins,dc=x"]).site_ids, []);
  // Site mappings alone grant no role.
  assert.equal(mapGroups(p, ["cn=field,dc=x"]).role, null);
  assert.equal(mapGroups(p, []).role, null);
});

Deno.test("domainRoot: the trailing dc= components of a DN, re-escaped", () => {
  assert.equal(
    domainRoot("CN=Ann Smith,OU=Staff,DC=corp,DC=example,DC=com"),
    "DC=corp,DC=example,DC=com",
  );
  assert.equal(domainRoot("uid=a,ou=people,dc=example,dc=org"), "dc=example,dc=org");
  assert.equal(domainRoot("CN=Smith\\, John,DC=corp , DC=com"), "DC=corp,DC=com");
  assert.equal(domainRoot("cn=x,dc=a+dc=b,dc=c"), "dc=c", "a multi-valued RDN ends it");
  assert.equal(domainRoot("cn=x,o=Example"), null);
  assert.equal(domainRoot("dc=we\\,ird,dc=org"), "dc=we\\,ird,dc=org");
  assert.equal(domainRoot("not a dn"), null);
});

Deno.test("escapeFilterBytes: every octet as \\XX", () => {
  assert.equal(escapeFilterBytes(new Uint8Array([0, 0x28, 0x5c, 0xff])), "\\00\\28\\5c\\ff");
  assert.equal(escapeFilterBytes(new Uint8Array()), "");
});

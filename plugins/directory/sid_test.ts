/**
 * SID parsing and building with known values (a real Active Directory is not available
 * here): well-known SIDs whose binary forms Microsoft documents, a domain user SID with
 * its published `objectSid` hex, and the primary-group SID and filter built from it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { BerWriter, FilterParser } from "ldapts";
import {
  encodeSid,
  objectSidFilter,
  parseSid,
  parseSidString,
  primaryGroupSid,
  sidToString,
} from "./sid.ts";

const hex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** [string form, binary form (hex)] — MS-DTYP §2.4.2.4 well-known SIDs and a domain user. */
const VECTORS: Array<[string, string]> = [
  ["S-1-1-0", "010100000000000100000000"], // Everyone
  ["S-1-5-18", "010100000000000512000000"], // Local System
  ["S-1-5-32-544", "01020000000000052000000020020000"], // BUILTIN\Administrators
  // A domain user: the objectSid hex as an LDAP browser shows it.
  [
    "S-1-5-21-2562418665-3218585558-1813906818-1576",
    "010500000000000515000000e967bb98d6b7d7bf82051e6c28060000",
  ],
  // Identifier authority ≥ 2^32: written in hex (MS-DTYP §2.4.2.1).
  ["S-1-0x123456789ABC-1", "0101123456789abc01000000"],
];

Deno.test("SIDs: known binary ⇄ string vectors", () => {
  for (const [text, bin] of VECTORS) {
    const parsed = parseSid(hex(bin));
    assert.ok(parsed, text);
    assert.equal(sidToString(parsed), text);
    assert.deepEqual(parseSidString(text), parsed);
    assert.equal(toHex(encodeSid(parsed)), bin, text);
  }
});

Deno.test("SIDs: the primary group's SID is the user's domain SID + primaryGroupID", () => {
  const user = hex("010500000000000515000000e967bb98d6b7d7bf82051e6c28060000");
  const group = primaryGroupSid(user, 513)!;
  assert.equal(toHex(group), "010500000000000515000000e967bb98d6b7d7bf82051e6c01020000");
  assert.equal(sidToString(parseSid(group)!), "S-1-5-21-2562418665-3218585558-1813906818-513");
  // Every byte escaped (RFC 4515 §3), so NUL and bytes ≥ 0x80 travel safely.
  const { text, filter } = objectSidFilter(group);
  assert.equal(
    text,
    "(objectSid=\\01\\05\\00\\00\\00\\00\\00\\05\\15\\00\\00\\00\\e9\\67\\bb\\98\\d6\\b7\\d7\\bf" +
      "\\82\\05\\1e\\6c\\01\\02\\00\\00)",
  );
  // What goes on the wire holds the SID's bytes unchanged…
  const encoded = (f: { write(w: BerWriter): void }) => {
    const w = new BerWriter();
    f.write(w);
    return Buffer.from(w.buffer);
  };
  assert.ok(encoded(filter).includes(Buffer.from(group)));
  // …which is why the filter is an object: ldapts turns the `\XX` escapes of a string
  // filter into characters and sends them as UTF-8, so 0xe9 would become c3 a9.
  assert.ok(!encoded(FilterParser.parseString(text)).includes(Buffer.from(group)));
});

Deno.test("SIDs: malformed input is refused, not guessed", () => {
  assert.equal(parseSid(hex("")), null);
  assert.equal(parseSid(hex("0101000000000005")), null, "count says 1, no sub-authority");
  assert.equal(parseSid(hex("020100000000000512000000")), null, "revision 2");
  assert.equal(parseSid(hex("01010000000000051200000000")), null, "a trailing byte");
  assert.equal(parseSid(hex("0110" + "000000000005" + "00".repeat(64))), null, "16 sub-auths");
  const user = hex("010500000000000515000000e967bb98d6b7d7bf82051e6c28060000");
  assert.equal(primaryGroupSid(user, 0), null);
  assert.equal(primaryGroupSid(user, 2 ** 32), null);
  assert.equal(primaryGroupSid(user, 1.5), null);
  assert.equal(primaryGroupSid(hex("010100000000000512000000"), 513), null, "not a domain SID");
  assert.equal(primaryGroupSid(hex("garbage"), 513), null);
  for (const bad of ["S-1-5-21-", "S-2-5-21", "S-1-5-4294967296", "s-1-5-x", "S-1-5-21-1-2-3 "]) {
    assert.equal(parseSidString(bad), null, bad);
  }
  assert.throws(() => encodeSid({ revision: 1, authority: 5, subAuthorities: [-1] }), RangeError);
});

Deno.test("SIDs: binary ⇄ string round trip for any SID", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 48 - 1 }),
      fc.array(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { maxLength: 15 }),
      (authority, subAuthorities) => {
        const sid = { revision: 1, authority, subAuthorities };
        const bin = encodeSid(sid);
        assert.deepEqual(parseSid(bin), sid);
        assert.deepEqual(parseSidString(sidToString(sid)), sid);
        if (subAuthorities.length >= 2) {
          const g = parseSid(primaryGroupSid(bin, 513)!)!;
          assert.deepEqual(g.subAuthorities, [...subAuthorities.slice(0, -1), 513]);
        }
      },
    ),
  );
});

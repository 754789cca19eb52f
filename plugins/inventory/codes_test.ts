import assert from "node:assert/strict";
import {
  digestsEqual,
  generateEnrollmentCode,
  hashEnrollmentCode,
  maskEnrollmentCode,
  normalizeEnrollmentCode,
} from "./codes.ts";

Deno.test("codes: 128 random bits as eight dash-separated groups of four hex digits", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const code = generateEnrollmentCode();
    assert.match(code, /^([0-9A-F]{4}-){7}[0-9A-F]{4}$/);
    seen.add(code);
  }
  assert.equal(seen.size, 200);
});

Deno.test("codes: case, dashes and whitespace do not change the lookup hash", async () => {
  const code = "3F9A-0C1B-77D2-9E40-1B2C-3D4E-5F60-7182";
  assert.equal(
    normalizeEnrollmentCode(" 3f9a 0c1b-77d2\t9e40 1b2c3d4e5f607182 "),
    code.replaceAll("-", ""),
  );
  const h = await hashEnrollmentCode(code);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(await hashEnrollmentCode(code.toLowerCase().replaceAll("-", " ")), h);
  assert.notEqual(await hashEnrollmentCode(code.replace("3F9A", "3F9B")), h);
});

Deno.test("codes: masked form keeps only the first and last three characters", () => {
  assert.equal(maskEnrollmentCode("ABCD-EF01-2345-6789"), "ABC***789");
  assert.equal(maskEnrollmentCode("  ABCDEFG "), "ABC***EFG");
  assert.equal(maskEnrollmentCode("ABCDEF"), "***");
  assert.equal(maskEnrollmentCode(""), "***");
});

Deno.test("codes: digest comparison is exact and length-safe", () => {
  assert.equal(digestsEqual("ab".repeat(32), "ab".repeat(32)), true);
  assert.equal(digestsEqual("ab".repeat(32), "ac".repeat(32)), false);
  assert.equal(digestsEqual("ab", "abab"), false);
});

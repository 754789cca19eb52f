import assert from "node:assert/strict";
import { count, duration } from "./format.ts";

Deno.test("duration leaves out a zero second part", () => {
  assert.equal(duration(4 * 3600), "4 h");
  assert.equal(duration(4 * 3600 + 90), "4 h 1 min");
  assert.equal(duration(2 * 86_400), "2 d");
  assert.equal(duration(2 * 86_400 + 3 * 3600), "2 d 3 h");
  assert.equal(duration(300), "5 min");
  assert.equal(duration(301), "5 min 1 s");
  assert.equal(duration(59), "59 s");
  assert.equal(duration(null), "—");
});

Deno.test("count says one or many", () => {
  assert.equal(count(1, "value"), "1 value");
  assert.equal(count(0, "value"), "0 values");
  assert.equal(count(3, "audit entry", "audit entries"), "3 audit entries");
  assert.equal(count(1, "audit entry", "audit entries"), "1 audit entry");
});

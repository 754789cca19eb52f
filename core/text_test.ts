import assert from "node:assert/strict";
import {
  cleanString,
  cleanText,
  findTextProblems,
  MAX_INPUT_DEPTH,
  nestsDeeperThan,
  textProblem,
} from "./text.ts";

const deep = (n: number): unknown => {
  let v: unknown = "x";
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

Deno.test("text rule: NUL and unpaired surrogates are refused; paired surrogates and other controls are fine", () => {
  assert.match(textProblem("a\u0000b")!, /NUL/);
  assert.match(textProblem("\ud800")!, /surrogate/);
  assert.match(textProblem("x\udc00")!, /surrogate/);
  assert.match(textProblem("\udc00\ud800")!, /surrogate/, "a low then high is not a pair");
  assert.equal(textProblem("😀 \u0001\t\n\u007f é"), null);
});

Deno.test("text rule: problems are reported with their path, keys included, and too deep nesting is one problem", () => {
  const problems = findTextProblems({
    name: "ok",
    list: ["fine", "bad\u0000"],
    nested: { "key\ud800": 1, deeper: { v: "\udfff" } },
  });
  assert.deepEqual(problems.map((p) => p.field), ["list.1", "nested.key\ud800", "nested.deeper.v"]);
  assert.match(problems[1]!.message, /^key /);
  assert.deepEqual(findTextProblems("\u0000").map((p) => p.field), ["(root)"]);
  const tooDeep = findTextProblems({ a: deep(MAX_INPUT_DEPTH + 5) });
  assert.equal(tooDeep.length, 1);
  assert.match(tooDeep[0]!.message, /deeper than 64/);
  assert.deepEqual(findTextProblems({ a: deep(MAX_INPUT_DEPTH - 2) }), []);
});

Deno.test("text rule: a hostile value costs no stack (100,000 levels, 100,000 bad strings)", () => {
  assert.equal(nestsDeeperThan(deep(100_000)), true);
  assert.equal(nestsDeeperThan(deep(10)), false);
  assert.equal(findTextProblems(deep(100_000)).length, 1);
  assert.equal(findTextProblems(Array(100_000).fill("\u0000")).length, 20, "stops at the limit");
  const d = deep(100_000);
  assert.equal(cleanText(d), d, "cleaning stops below the depth limit");
});

Deno.test("text rule for agents: NUL removed, unpaired surrogates replaced, everything else kept as it was", () => {
  assert.equal(cleanString("Reg\u0000Value\u0000"), "RegValue");
  assert.equal(cleanString("a\ud800b"), "a\ufffdb");
  assert.equal(cleanString("😀"), "😀");
  const untouched = { a: ["x", 1, null, true], b: { c: "y" } };
  assert.equal(cleanText(untouched), untouched, "no copy when nothing changes");
  assert.deepEqual(
    cleanText({ "k\u0000": ["v\u0000", 2, { w: "\udc00" }], keep: 3.5, n: null }),
    { k: ["v", 2, { w: "\ufffd" }], keep: 3.5, n: null },
  );
});

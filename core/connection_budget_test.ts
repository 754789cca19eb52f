import assert from "node:assert/strict";
import { connectionBudget, descriptorLimit } from "./connection_budget.ts";

const base = {
  httpHeaderTimeoutMs: 10_000,
  httpIdleTimeoutMs: 30_000,
  httpMaxConnections: 0,
  httpMaxPending: 0,
  httpMaxPendingPerAddress: 128,
  dbPoolSize: 10,
};

Deno.test("budget: derived from the open-file limit, a reserve kept, a quarter pending", () => {
  const big = connectionBudget(base, 20_000);
  assert.equal(big.reserve, 2010);
  assert.equal(big.limits.maxConnections, 17_990);
  assert.equal(big.limits.maxPending, 4096); // the ceiling
  assert.equal(big.limits.maxPendingPerAddress, 128);

  const small = connectionBudget(base, 512);
  assert.equal(small.reserve, 74);
  assert.equal(small.limits.maxConnections, 438);
  assert.equal(small.limits.maxPending, 109);

  const tiny = connectionBudget({ ...base, httpMaxPendingPerAddress: 500 }, 128);
  assert.ok(tiny.limits.maxPendingPerAddress <= tiny.limits.maxPending);
  assert.ok(tiny.limits.maxPending <= tiny.limits.maxConnections);
});

Deno.test("budget: explicit settings win below the budget, are lowered to it above; an unknown limit assumes 1024", () => {
  const set = connectionBudget(
    { ...base, httpMaxConnections: 5_000, httpMaxPending: 900, httpMaxPendingPerAddress: 20 },
    20_000,
  );
  assert.equal(set.limits.maxConnections, 5_000);
  assert.equal(set.limits.maxPending, 900);
  assert.equal(set.limits.maxPendingPerAddress, 20);
  assert.equal(set.clamped, undefined);
  const above = connectionBudget({ ...base, httpMaxConnections: 100_000 }, 1024);
  assert.equal(above.limits.maxConnections, 1024 - 113);
  assert.match(above.clamped ?? "", /above the descriptor budget/);
  const unknown = connectionBudget(base, null);
  assert.equal(unknown.descriptorLimit, null);
  assert.equal(unknown.limits.maxConnections, 1024 - 113);
});

Deno.test("budget: the process's own limit is read", () => {
  const limit = descriptorLimit();
  if (Deno.build.os === "linux") assert.ok(limit === null || limit > 0);
});

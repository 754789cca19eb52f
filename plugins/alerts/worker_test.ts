import assert from "node:assert/strict";
import { retryDelayMs } from "./worker.ts";

Deno.test("retries: exponential backoff with jitter in the upper half, capped at an hour", () => {
  const base = 30_000;
  assert.equal(retryDelayMs(1, base, () => 0), 15_000);
  assert.equal(retryDelayMs(1, base, () => 1), 30_000);
  assert.equal(retryDelayMs(2, base, () => 1), 60_000);
  assert.equal(retryDelayMs(4, base, () => 0.5), Math.round(240_000 * 0.75));
  assert.equal(retryDelayMs(30, base, () => 1), 3_600_000);
  assert.equal(retryDelayMs(30, base, () => 0), 1_800_000);
  // Jitter spreads a burst of failures.
  const spread = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, base, Math.random)));
  assert.ok(spread.size > 40);
  for (const d of spread) assert.ok(d >= 60_000 && d <= 120_000);
});

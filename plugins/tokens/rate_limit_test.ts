import assert from "node:assert/strict";
import { ManualClock } from "../../core/clock.ts";
import { HttpError } from "../../core/errors.ts";
import { RateLimiter } from "./rate_limit.ts";

Deno.test("rate limit: a sliding window per key, 429 with Retry-After, 0 disables", async () => {
  const clock = new ManualClock();
  const limiter = new RateLimiter(clock, 3, 60_000);
  for (let i = 0; i < 3; i++) {
    limiter.hit("a");
    await clock.advance(10_000);
  }
  limiter.hit("b"); // other keys are independent
  const err = (() => {
    try {
      limiter.hit("a");
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof HttpError);
  assert.equal(err.status, 429);
  assert.equal(err.code, "rate_limited");
  // The oldest hit (t=0) leaves the window at t=60 s; now is t=30 s.
  assert.equal(new Headers(err.headers).get("Retry-After"), "30");
  await clock.advance(30_001);
  limiter.hit("a");
  const off = new RateLimiter(clock, 0, 60_000);
  for (let i = 0; i < 1000; i++) off.hit("x");
});

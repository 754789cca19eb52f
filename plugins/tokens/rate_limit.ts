/**
 * In-memory sliding-window rate limits (per engine instance), on the injected clock.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import { tooManyRequests } from "../../core/errors.ts";

/** At most `limit` hits per `windowMs` per key; `limit` 0 disables the limiter. */
export class RateLimiter {
  #hits = new Map<string, number[]>();
  #lastSweep = 0;

  constructor(
    private readonly clock: Clock,
    readonly limit: number,
    readonly windowMs: number,
    private readonly message = "too many requests",
  ) {}

  /** Records a hit; throws 429 with Retry-After when the key is over its limit. */
  hit(key: string): void {
    if (this.limit <= 0) return;
    const now = this.clock.now();
    this.#sweep(now);
    const since = now - this.windowMs;
    let list = this.#hits.get(key);
    if (!list) this.#hits.set(key, list = []);
    while (list.length && list[0]! <= since) list.shift();
    if (list.length >= this.limit) {
      const retryMs = list[0]! + this.windowMs - now;
      throw tooManyRequests(Math.max(1, retryMs / 1000), this.message);
    }
    list.push(now);
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < this.windowMs) return;
    this.#lastSweep = now;
    const since = now - this.windowMs;
    for (const [k, list] of this.#hits) {
      if (!list.length || list[list.length - 1]! <= since) this.#hits.delete(k);
    }
  }
}

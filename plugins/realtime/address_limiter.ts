/**
 * A token bucket per client address for agent socket upgrades, so one address cannot
 * spend the engine's accept budget (or its token checks) for everybody. Buckets that
 * are full again are forgotten, so memory follows the addresses active in the last
 * few seconds.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets keyed by client address. */
export class AddressLimiter {
  #buckets = new Map<string, Bucket>();
  #lastSweep = 0;
  rejected = 0;

  constructor(
    private readonly clock: Clock,
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes a token for `address`; null when admitted, else the Retry-After seconds. */
  take(address: string): number | null {
    if (this.perSecond <= 0) return null;
    const now = this.clock.now();
    this.#sweep(now);
    const b = this.#buckets.get(address) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) / 1000 * this.perSecond);
    b.at = now;
    this.#buckets.set(address, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return null;
    }
    this.rejected++;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }

  /** Addresses currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    const refillMs = (this.burst / this.perSecond) * 1000;
    if (now - this.#lastSweep < Math.max(1000, refillMs)) return;
    this.#lastSweep = now;
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.#buckets.delete(k);
    }
  }
}

/**
 * Shapes how fast an engine accepts agent sockets. After an outage thousands of agents
 * come back at once; beyond the configured rate the engine answers 503 with a
 * Retry-After spread over a window (full jitter), so the herd thins out instead of
 * the engine falling over.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";

/** A token bucket refilled continuously. */
export class AcceptLimiter {
  #tokens: number;
  #last: number;
  rejected = 0;

  constructor(
    private readonly clock: Clock,
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxRetryAfterSeconds: number,
  ) {
    this.#tokens = burst;
    this.#last = clock.now();
  }

  /** Takes a token; returns null when admitted, else the Retry-After seconds to send. */
  take(): number | null {
    if (this.perSecond <= 0) return null;
    const now = this.clock.now();
    this.#tokens = Math.min(
      this.burst,
      this.#tokens + ((now - this.#last) / 1000) * this.perSecond,
    );
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return null;
    }
    this.rejected++;
    // Full jitter: a uniform delay in [1, max] spreads the retries evenly.
    return 1 + Math.floor(Math.random() * this.maxRetryAfterSeconds);
  }
}

/**
 * Time for the engine. Everything time-based takes a {@link Clock} so tests can
 * drive it with {@link ManualClock} instead of sleeping.
 *
 * @module
 */

/** A handle returned by {@link Clock.setTimeout}. */
export type TimerId = number;

/** The source of time and timers the engine uses. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds of this clock's time. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer made by {@link Clock.setTimeout}. */
  clearTimeout(id: TimerId): void;
}

/** The real wall clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)) as unknown as TimerId,
  clearTimeout: (id) => clearTimeout(id),
};

interface PendingTimer {
  id: TimerId;
  at: number;
  fn: () => void;
}

/**
 * A clock that only moves when a test says so. Timers fire in time order during
 * {@link ManualClock.advance}, and the promise returned lets async work started by a
 * timer settle before the next timer fires.
 */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers: PendingTimer[] = [];

  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.#now = typeof start === "number" ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#nextId++;
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await settle();
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
    await settle();
  }

  /** Jumps to an absolute time (forward only), firing timers on the way. */
  async set(time: number | Date): Promise<void> {
    const t = typeof time === "number" ? time : time.getTime();
    await this.advance(Math.max(0, t - this.#now));
  }
}

/** Lets promise chains started by fired timers run (including a few I/O turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setTimeout(r, 0));
}

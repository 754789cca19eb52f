/**
 * Knows whether the database can be reached, so callers fail fast while it cannot. A
 * failed connection attempt opens the circuit, unless another query completed while it
 * was being made: queries are refused at once (the HTTP layer answers 503 with
 * Retry-After) instead of each waiting for its own connect timeout; one query per probe
 * interval is let through, and the first that succeeds closes the circuit again.
 * Transitions are logged once each.
 *
 * @module
 */
import { DatabaseUnavailableError } from "./db_errors.ts";
import type { Logger } from "./log.ts";

/** Options of {@link DatabaseCircuit}. */
export interface CircuitOptions {
  log: Logger;
  /** How often a query may test the database while the circuit is open (ms). */
  probeIntervalMs?: number;
  now?: () => number;
}

/** The open/closed state of the database connection. */
export class DatabaseCircuit {
  #open = false;
  #openedAt = 0;
  #nextProbeAt = 0;
  #probing = false;
  #reason = "";
  #refused = 0;
  #lastSuccessAt = -Infinity;
  #isolated = 0;
  readonly #probeMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  /** Times the circuit opened (tests, operators). */
  opened = 0;

  /** Connection failures that did not open the circuit (other queries succeeded meanwhile). */
  get isolatedFailures(): number {
    return this.#isolated;
  }

  constructor(o: CircuitOptions) {
    this.#log = o.log;
    this.#probeMs = o.probeIntervalMs ?? 1000;
    // Real time on purpose: an outage is measured in wall-clock seconds, and tests that
    // drive the engine's manual clock would otherwise never probe again.
    this.#now = o.now ?? (() => performance.now());
  }

  /** True while queries are refused. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Why the circuit opened (the last connection error), while open. */
  get reason(): string {
    return this.#open ? this.#reason : "";
  }

  /** Seconds a client should wait before retrying (for Retry-After). */
  retryAfterSeconds(): number {
    if (!this.#open) return 1;
    return Math.max(1, Math.ceil((this.#nextProbeAt - this.#now()) / 1000) + 1);
  }

  /**
   * Whether a query may run now. While open, one caller per probe interval is let
   * through as the probe; `force` lets a retry through regardless (it is a probe).
   */
  allow(force = false): boolean {
    if (!this.#open || force) return true;
    const now = this.#now();
    if (!this.#probing && now >= this.#nextProbeAt) {
      this.#probing = true;
      return true;
    }
    this.#refused++;
    return false;
  }

  /** The error a refused caller throws. */
  refusal(): DatabaseUnavailableError {
    return new DatabaseUnavailableError(
      `the database is unreachable (${this.#reason}); retry shortly`,
      this.retryAfterSeconds(),
    );
  }

  /** A query completed: the database answers. */
  succeeded(): void {
    this.#lastSuccessAt = this.#now();
    this.#probing = false;
    if (!this.#open) return;
    this.#open = false;
    const seconds = ((this.#now() - this.#openedAt) / 1000).toFixed(1);
    this.#log.info(
      `database reachable again after ${seconds} s; ${this.#refused} queries were refused ` +
        `meanwhile`,
    );
  }

  /** The circuit's clock (ms); pass a reading taken before a query to {@link failed}. */
  now(): number {
    return this.#now();
  }

  /**
   * A connection could not be opened: open the circuit (or keep it open). With
   * `attemptStartedAt` (a {@link now} reading taken before the query), a failure is
   * ignored when another query completed since then: the database answers, only this
   * one connection did not open (a backend ended during its start-up, one slow fork), and
   * failing every request for a probe interval would turn that into an outage.
   */
  failed(reason: string, attemptStartedAt?: number): void {
    const now = this.#now();
    if (
      !this.#open && attemptStartedAt !== undefined && this.#lastSuccessAt >= attemptStartedAt
    ) {
      this.#isolated++;
      return;
    }
    this.#probing = false;
    this.#nextProbeAt = now + this.#probeMs;
    this.#reason = reason;
    if (this.#open) return;
    this.#open = true;
    this.#openedAt = now;
    this.#refused = 0;
    this.opened++;
    this.#log.warn(
      `database unreachable (${reason}): requests that need it answer 503 at once; probing ` +
        `every ${this.#probeMs} ms`,
    );
  }
}

/**
 * The postgres.js client is replaced, not reused, once the server has ended its
 * sessions. postgres.js 3.4.9 keeps each pooled connection's protocol state (the
 * statement in flight, its error, its row count, a pending write) across the
 * connection's close and reopen. After backends are terminated under load that state
 * leaks into the reopened connection: its start-up message is never written (it waits
 * for its connect timeout, then fails the same way at every reopen), statements queued
 * behind a stale one never settle, and a statement can get another one's error or rows.
 * Seen here: requests hanging for good after a burst of `pg_terminate_backend`, an
 * insert whose `returning` row came back missing, 3-second connect timeouts that
 * opened the circuit. None of it is reachable from outside the library, so the engine
 * starts a fresh client (a new pool) and lets the old one finish what it can: new
 * statements go to the fresh client at once, the old one is ended after a grace period
 * and whatever is still stuck in it fails as a lost connection (reads are repeated on
 * the fresh client, writes answer 503).
 *
 * @module
 */
import type postgres from "postgres";
import type { Logger } from "./log.ts";

type Sql = postgres.Sql;

/** Options of {@link RenewingClient}. */
export interface RenewingClientOptions {
  /** Makes a client with the engine's options (its connections open lazily). */
  create: () => Sql;
  log: Logger;
  /** At most one renewal per this interval; one asked for meanwhile runs at its end (ms). */
  minIntervalMs?: number;
  /** How long a replaced client may finish its statements before it is ended (s). */
  drainSeconds?: number;
  now?: () => number;
}

/** Options the first client learned from the server that a fresh one must share. */
interface LearnedOptions {
  parsers: Record<string, unknown>;
  serializers: Record<string, unknown>;
  shared: { typeArrayMap: Record<string, unknown> };
  fetch_types: boolean;
}

/** The current postgres.js client and its replacement after sessions were ended. */
export class RenewingClient {
  #current: Sql;
  readonly #retired = new Set<Promise<void>>();
  readonly #o: RenewingClientOptions;
  readonly #learned: LearnedOptions;
  readonly #minMs: number;
  readonly #now: () => number;
  #lastAt: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #reasons = new Set<string>();
  #closed = false;
  /** Times the client was replaced (tests, logs). */
  renewals = 0;

  /**
   * `first` has already connected: the array types it loaded from the server are
   * copied into every client made here, which then does not load them itself. `first`
   * itself is never used for statements nor ended here: it keeps the long-lived parts
   * (LISTEN), which a renewal must not end.
   */
  constructor(first: Sql, o: RenewingClientOptions) {
    this.#o = o;
    this.#learned = first.options as unknown as LearnedOptions;
    this.#minMs = o.minIntervalMs ?? 250;
    this.#now = o.now ?? (() => performance.now());
    this.#lastAt = this.#now();
    this.#current = this.#make();
  }

  /** A fresh client sharing what the first one learned from the server. */
  #make(): Sql {
    const fresh = this.#o.create();
    const o = fresh.options as unknown as LearnedOptions;
    Object.assign(o.parsers, this.#learned.parsers);
    Object.assign(o.serializers, this.#learned.serializers);
    Object.assign(o.shared.typeArrayMap, this.#learned.shared.typeArrayMap);
    o.fetch_types = false;
    return fresh;
  }

  /** The client new statements use. */
  get current(): Sql {
    return this.#current;
  }

  /**
   * The server ended a session of the current client (`reason`, for the log): replace
   * it now, or at the end of the interval when it was replaced a moment ago.
   */
  renew(reason: string): void {
    if (this.#closed) return;
    this.#reasons.add(reason);
    if (this.#timer !== undefined) return;
    const wait = this.#lastAt + this.#minMs - this.#now();
    if (wait <= 0) return this.#swap();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#swap();
    }, wait);
  }

  #swap(): void {
    if (this.#closed) return;
    const old = this.#current;
    this.#current = this.#make();
    this.#lastAt = this.#now();
    this.renewals++;
    const why = [...this.#reasons].join("; ");
    this.#reasons.clear();
    this.#o.log.info(
      `database sessions were ended by the server (${why}): new statements use a fresh ` +
        `connection pool; the previous one is closed within ${this.#drainSeconds} s`,
    );
    const ending = old.end({ timeout: this.#drainSeconds }).catch(() => {}).finally(() =>
      this.#retired.delete(ending)
    );
    this.#retired.add(ending);
  }

  get #drainSeconds(): number {
    return this.#o.drainSeconds ?? 5;
  }

  /** Ends the current client and waits for replaced ones (at most `timeout` seconds). */
  async end(timeout = 5): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.all([
      this.#current.end({ timeout }).catch(() => {}),
      ...this.#retired,
    ]);
  }
}

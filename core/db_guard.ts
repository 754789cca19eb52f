/**
 * Wraps the postgres.js client so that a database outage costs callers little and a
 * server restart costs them nothing:
 *
 * - every query asks the {@link DatabaseCircuit} first; while the database is known to
 *   be unreachable it is refused at once (503 upstream) instead of waiting for a
 *   connect timeout;
 * - a query that failed because its connection could not be opened is run once more
 *   when the circuit stayed closed (other queries completed meanwhile), else it answers
 *   503 at once;
 * - one whose session the server ended before it ran (57P01/57P02: restart, terminated
 *   backend), and a read whose connection closed under it, is run again until it runs.
 *   After a restart every pooled connection is dead, and the client learns it only when
 *   it next uses each one (the server's backends also exit one by one, after the
 *   restart was asked for); every failed attempt retires one dead connection, so the
 *   repetitions are bounded by the pool's size plus one, not by a pause that happens to
 *   be long enough on an idle machine. A repetition starts only within a window (the
 *   connection open timeout) of the first failure, so a database that keeps ending
 *   sessions answers 503 instead of holding requests.
 *   A write whose connection merely closed is not repeated (it may have committed); it
 *   surfaces as 503.
 *
 * - a session the server ended (or a connection that never finished starting) also
 *   replaces the client (core/db_renewal.ts): postgres.js carries a closed connection's
 *   state into its next use, so repetitions and new statements go to a fresh pool.
 *
 * postgres.js queries run when awaited (`then`); fragments nested in other queries are
 * never awaited, so patching `then` of each tagged query leaves them untouched. Queries
 * inside `sql.begin` use the transaction's own client and are never repeated
 * individually; `begin` itself is repeated only when it failed before its callback ran.
 *
 * @module
 */
import type postgres from "postgres";
import type { DatabaseCircuit } from "./db_circuit.ts";
import { classifyDbError, type DbFailure } from "./db_errors.ts";

type Sql = postgres.Sql;
type Thenable = Promise<unknown> & { strings?: readonly string[] };

const READ_ONLY = /^\s*(select|show|values|table)\b/i;
// Whole words only: a column such as updated_at must not make a read look like a write.
const WRITES =
  /\b(insert|update|delete|merge|nextval|setval|pg_notify|pg_advisory\w*|for\s+(no\s+key\s+)?update|for\s+(key\s+)?share)\b/i;

/** True when repeating the statement cannot change data. */
function isRead(text: string): boolean {
  return READ_ONLY.test(text) && !WRITES.test(text);
}

function textOf(args: unknown[]): string {
  const first = args[0];
  if (typeof first === "string") return first; // sql.unsafe(text, …)
  const raw = (first as { raw?: readonly string[] })?.raw;
  return raw ? raw.join("?") : "";
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * Closes the gap postgres.js 3.4.9 leaves at the front of a result. It counts received
 * rows per connection and resets the count only when a statement completes, so after a
 * statement failed part-way through its rows (a connection that closed under it, an
 * error on a later row) the next statement on that connection stores its rows from that
 * index on: `[row] = await sql…` read undefined although the statement ran (an insert
 * "returning *" looked like a conflict). The rows themselves are whole and in order.
 */
export function repairRows<T>(result: T): T {
  if (!Array.isArray(result) || result.length === 0 || 0 in result) return result;
  let first = 1;
  while (first < result.length && !(first in result)) first++;
  result.splice(0, first);
  return result;
}

/** Where statements go: the current client, replaced once the server ended sessions. */
export interface SqlSource {
  readonly current: Sql;
  /** The server ended a session of the current client (core/db_renewal.ts). */
  renew(reason: string): void;
}

/** Options of {@link guardSql}. */
export interface GuardOptions {
  circuit: DatabaseCircuit;
  /** The client statements run on; without it, the `sql` given to {@link guardSql}. */
  source?: SqlSource;
  /** Sees every failed statement (storage failures feed readiness). */
  onError?: (err: unknown) => void;
  /** Pause before repeating a query whose connection could not be opened (ms). */
  reconnectDelayMs?: number;
  /** Connections the pool holds: bounds the repetitions of an ended statement. */
  poolSize?: number;
  /** No repetition starts later than this after the first failure (ms). */
  retryWindowMs?: number;
  /** Real time (ms), for the window. */
  now?: () => number;
}

/**
 * Pause before repetition `attempt` (1, 2, …) of an ended statement: just long enough
 * for the client to process the close of other dead connections; correctness does not
 * depend on it (the count does).
 */
function pauseBefore(attempt: number): number {
  return Math.min(5 * 2 ** attempt, 200);
}

/**
 * Returns a client with the circuit and the bounded repetition wrapped around every
 * query. Statements run on `o.source.current` (else `sql`); `sql` itself keeps the
 * long-lived parts (`listen`, `notify`, `subscribe`), which a renewal must not end.
 */
export function guardSql(sql: Sql, o: GuardOptions): Sql {
  const circuit = o.circuit;
  const source: SqlSource = o.source ?? { current: sql, renew() {} };
  const delay = o.reconnectDelayMs ?? 200;
  // Each failed attempt retires one connection that was dead: pool size + 1 attempts
  // reach a live one unless the server ends sessions again meanwhile (then the window).
  const maxRepeats = Math.max(2, (o.poolSize ?? 10) + 1);
  const windowMs = o.retryWindowMs ?? 3000;
  const now = o.now ?? (() => performance.now());

  /** How long to wait before trying again, or null when the failure is final. */
  function nextTry(
    failure: DbFailure,
    text: string | null,
    attempt: number,
    connectRetried: boolean,
    failingSince: number,
  ): number | null {
    if (failure === null) return null;
    // Repeated once only when the circuit stayed closed (other queries succeed: this one
    // connection did not open); once it opened, the request answers 503 now instead of
    // paying a second connect timeout.
    if (failure === "connect") return connectRetried || circuit.isOpen ? null : delay;
    if (failure === "unsent") return attempt >= maxRepeats ? null : 0;
    // `text` null: a transaction whose callback never ran, so nothing of it ran.
    if (failure === "lost" && text !== null && !isRead(text)) return null;
    if (attempt >= maxRepeats || now() - failingSince > windowMs) return null;
    return pauseBefore(attempt + 1);
  }

  /**
   * A session the server ended, a connection lost under a statement, or one that never
   * finished starting (CONNECT_TIMEOUT while the server answers others) leaves the
   * client's state unreliable: it is replaced.
   */
  function renewAfter(failure: DbFailure, err: unknown): void {
    const code = (err as { code?: unknown })?.code;
    if (failure === "aborted" || failure === "lost" || code === "CONNECT_TIMEOUT") {
      source.renew(describe(err));
    }
  }

  async function run(
    query: Thenable,
    again: () => Thenable,
    text: string,
  ): Promise<unknown> {
    let failingSince = 0;
    let connectRetried = false;
    for (let attempt = 0;; attempt++) {
      if (!circuit.allow(attempt > 0)) throw circuit.refusal();
      const since = circuit.now();
      try {
        const q = attempt === 0 ? query : again();
        const original = Object.getPrototypeOf(q).then as Promise<unknown>["then"];
        const result = repairRows(await original.call(q, (x: unknown) => x));
        circuit.succeeded();
        return result;
      } catch (err) {
        o.onError?.(err);
        const failure = classifyDbError(err);
        if (failure === "connect") circuit.failed(describe(err), since);
        else if (failure === null) circuit.succeeded(); // the server answered
        renewAfter(failure, err);
        if (attempt === 0) failingSince = now();
        const wait = nextTry(failure, text, attempt, connectRetried, failingSince);
        if (wait === null) throw err;
        if (failure === "connect") connectRetried = true;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Makes an executable query retry-aware; a fragment is never awaited, so never runs. */
  function patch(query: Thenable, make: () => Thenable, text: string): Thenable {
    let outcome: Promise<unknown> | undefined;
    const settle = () => (outcome ??= run(query, make, text));
    Object.defineProperties(query, {
      then: {
        value: (f?: (v: unknown) => unknown, r?: (e: unknown) => unknown) => settle().then(f, r),
      },
      catch: { value: (r?: (e: unknown) => unknown) => settle().catch(r) },
      finally: { value: (f?: () => void) => settle().finally(f) },
    });
    return query;
  }

  const unsafe = (...args: unknown[]) => {
    const make = () => (source.current.unsafe as (...a: unknown[]) => Thenable)(...args);
    return patch(make(), make, textOf(args));
  };

  const begin = async (...args: unknown[]) => {
    const fn = args[args.length - 1] as (tx: unknown) => unknown;
    const head = args.slice(0, -1);
    let failingSince = 0;
    let connectRetried = false;
    for (let attempt = 0;; attempt++) {
      if (!circuit.allow(attempt > 0)) throw circuit.refusal();
      const since = circuit.now();
      let started = false;
      try {
        const result = await (source.current.begin as (...a: unknown[]) => Promise<unknown>)(
          ...head,
          (tx: unknown) => {
            started = true;
            return fn(tx);
          },
        );
        circuit.succeeded();
        return result;
      } catch (err) {
        o.onError?.(err);
        const failure = classifyDbError(err);
        if (failure === "connect") circuit.failed(describe(err), since);
        else if (failure === null) circuit.succeeded();
        renewAfter(failure, err);
        if (attempt === 0) failingSince = now();
        // Once the callback ran, its statements may have committed: never repeated.
        const wait = started ? null : nextTry(failure, null, attempt, connectRetried, failingSince);
        if (wait === null) throw err;
        if (failure === "connect") connectRetried = true;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  };

  const lasting = new Set<PropertyKey>(["listen", "notify", "subscribe"]);
  return new Proxy(sql, {
    apply(_target, thisArg, args: unknown[]) {
      const make = () => Reflect.apply(source.current, thisArg, args) as Thenable;
      const result = make() as unknown;
      if (!(result instanceof Promise) || !Array.isArray((args[0] as { raw?: unknown })?.raw)) {
        return result; // a helper (identifiers, values, json), not a query
      }
      return patch(result as Thenable, make, textOf(args));
    },
    get(target, key) {
      if (key === "unsafe") return unsafe;
      if (key === "begin") return begin;
      if (lasting.has(key)) return Reflect.get(target, key);
      return Reflect.get(source.current, key);
    },
  }) as Sql;
}

/**
 * Wraps the postgres.js client so that a database outage costs callers little and a
 * server restart costs them nothing:
 *
 * - every query asks the {@link DatabaseCircuit} first; while the database is known to
 *   be unreachable it is refused at once (503 upstream) instead of waiting for a
 *   connect timeout;
 * - a query that failed because its connection could not be opened is run once more;
 *   one whose session the server ended before it ran (57P01/57P02: restart, terminated
 *   backend), and a read whose connection closed under it, up to twice, each on a fresh
 *   connection. A write whose connection merely closed is not repeated (it may have
 *   committed); it surfaces as 503.
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
const WRITES = /\b(insert|update|delete|merge|for\s+update|for\s+share|nextval|pg_advisory)/i;

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

function repeatable(failure: DbFailure, text: string): boolean {
  return failure === "connect" || failure === "aborted" || (failure === "lost" && isRead(text));
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Options of {@link guardSql}. */
export interface GuardOptions {
  circuit: DatabaseCircuit;
  /** Sees every failed statement (storage failures feed readiness). */
  onError?: (err: unknown) => void;
  /** Pause before repeating a query whose connection could not be opened (ms). */
  reconnectDelayMs?: number;
}

/** Returns `sql` with the circuit and the single retry wrapped around every query. */
export function guardSql(sql: Sql, o: GuardOptions): Sql {
  const circuit = o.circuit;
  const delay = o.reconnectDelayMs ?? 200;

  async function run(
    query: Thenable,
    again: () => Thenable,
    text: string,
    attempt: number,
  ): Promise<unknown> {
    if (!circuit.allow(attempt > 0)) throw circuit.refusal();
    try {
      const original = Object.getPrototypeOf(query).then as Promise<unknown>["then"];
      const result = await original.call(query, (x: unknown) => x);
      circuit.succeeded();
      return result;
    } catch (err) {
      o.onError?.(err);
      const failure = classifyDbError(err);
      if (failure === "connect") circuit.failed(describe(err));
      else if (failure === null) circuit.succeeded(); // the server answered
      // A connect failure is repeated once (then the circuit decides); a statement the
      // server ended, or a read, up to twice: when several sessions are terminated in a
      // row the first retry can land on another connection that is already dead.
      const limit = failure === "connect" ? 1 : 2;
      if (attempt < limit && repeatable(failure, text)) {
        // After a restart every pooled connection is dead at once; a short pause lets
        // the client notice the others closing, so the retry gets a fresh one.
        await new Promise((r) => setTimeout(r, failure === "connect" ? delay : 25));
        return await run(again(), again, text, attempt + 1);
      }
      throw err;
    }
  }

  /** Makes an executable query retry-aware; a fragment is never awaited, so never runs. */
  function patch(query: Thenable, make: () => Thenable, text: string): Thenable {
    let outcome: Promise<unknown> | undefined;
    const settle = () => (outcome ??= run(query, make, text, 0));
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
    const make = () => (sql.unsafe as (...a: unknown[]) => Thenable)(...args);
    return patch(make(), make, textOf(args));
  };

  const begin = async (...args: unknown[]) => {
    const fn = args[args.length - 1] as (tx: unknown) => unknown;
    const head = args.slice(0, -1);
    for (let attempt = 0;; attempt++) {
      if (!circuit.allow(attempt > 0)) throw circuit.refusal();
      let started = false;
      try {
        const result = await (sql.begin as (...a: unknown[]) => Promise<unknown>)(
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
        if (failure === "connect") circuit.failed(describe(err));
        else if (failure === null) circuit.succeeded();
        if (attempt > 0 || started || failure === null || failure === "lost") throw err;
        await new Promise((r) => setTimeout(r, failure === "connect" ? delay : 25));
      }
    }
  };

  return new Proxy(sql, {
    apply(target, thisArg, args: unknown[]) {
      const result = Reflect.apply(target, thisArg, args) as unknown;
      if (!(result instanceof Promise) || !Array.isArray((args[0] as { raw?: unknown })?.raw)) {
        return result; // a helper (identifiers, values, json), not a query
      }
      const make = () => Reflect.apply(target, thisArg, args) as Thenable;
      return patch(result as Thenable, make, textOf(args));
    },
    get(target, key, receiver) {
      if (key === "unsafe") return unsafe;
      if (key === "begin") return begin;
      return Reflect.get(target, key, receiver);
    },
  }) as Sql;
}

/**
 * Request field schemas every route builds from, so a value is refused (400 naming the
 * field) before any SQL runs instead of failing inside PostgreSQL:
 *
 * - integers are bounded to the column they end in — `int4` unless a wider bound is
 *   asked for (`int({ max: MAX_INT8_SAFE })` for a `bigint`);
 * - path and query integers are decimal digits only: `""`, `1e10`, `0x1f`, ` 5` and
 *   `NaN` are refused, where `z.coerce.number()` would read them as 0, 10000000000, 31,
 *   5 and NaN. The kernel refuses to register a route whose path or query uses a coerced
 *   schema (core/input_guard.ts), so these helpers are the way to take a number there.
 *
 * Strings need nothing here: the kernel refuses NUL characters and unpaired surrogates
 * in every path, query and JSON value (core/text.ts).
 *
 * @module
 */
import { z } from "@hono/zod-openapi";

/** Largest `int4` (PostgreSQL `integer`, `serial`). */
export const MAX_INT4 = 2_147_483_647;
/** Smallest `int4`. */
export const MIN_INT4 = -2_147_483_648;
/** Largest integer a JSON number carries exactly (and a `bigint` column holds). */
export const MAX_INT8_SAFE = Number.MAX_SAFE_INTEGER;

/** Bounds of an integer field. */
export interface IntBounds {
  min?: number;
  max?: number;
}

/** A JSON integer within `[min, max]`, by default the `int4` range. */
export function int(b: IntBounds = {}): z.ZodNumber {
  return z.number().int().min(b.min ?? MIN_INT4).max(b.max ?? MAX_INT4);
}

/** A JSON id of an `int4` serial column: 1 … 2,147,483,647. */
export function id(): z.ZodNumber {
  return int({ min: 1 });
}

const DECIMAL = /^-?[0-9]{1,16}$/;

/**
 * An integer in a path or query value: decimal digits with an optional minus sign,
 * within `[min, max]` (by default the `int4` range). Documented as an integer.
 */
export function intParam(b: IntBounds = {}) {
  return z.preprocess(
    (v) => (typeof v === "string" && DECIMAL.test(v) ? Number(v) : v),
    z.number({ error: "must be a decimal integer" }).int().min(b.min ?? MIN_INT4).max(
      b.max ?? MAX_INT4,
    ),
  );
}

/** An `int4` serial id in a path or query value: 1 … 2,147,483,647. */
export function idParam() {
  return intParam({ min: 1 });
}

/** A JSON id of a `bigint` identity column: 1 … 2^53 − 1. */
export function bigId(): z.ZodNumber {
  return int({ min: 1, max: MAX_INT8_SAFE });
}

/** A `bigint` identity id in a path or query value: 1 … 2^53 − 1. */
export function bigIdParam() {
  return intParam({ min: 1, max: MAX_INT8_SAFE });
}

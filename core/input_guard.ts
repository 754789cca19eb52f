/**
 * What the kernel checks around every route's own validation, so no plugin has to
 * remember it:
 *
 * - every path, query and JSON value passes the text rule (core/text.ts) and nests at
 *   most {@link MAX_INPUT_DEPTH} levels, or the request gets a 400 naming the field;
 * - a route that declares a JSON body gets one: a request without a JSON body is a 400,
 *   not an empty object the route's defaults turn into a valid request;
 * - at registration, a path or query value is never read with a coercing schema
 *   (`z.coerce.number()` reads `""` as 0 and `1e10` as ten billion); core/fields.ts has
 *   the strict ones;
 * - a PostgreSQL data exception (SQLSTATE class 22: a value out of range, invalid text,
 *   a bad datetime…) that still reaches the database is the client's bad value, so it
 *   answers 400 with the request id instead of a 500 (a validation gap, logged as one);
 *   a unique or foreign-key violation (two requests racing to create one name) is a 409.
 *
 * @module
 */
import type { Context } from "hono";
import { findTextProblems, MAX_INPUT_DEPTH } from "./text.ts";

export { MAX_INPUT_DEPTH };

/** One refused field, in the shape of the validation errors' `details`. */
export interface InputIssue {
  field: string;
  in?: string;
  message: string;
  code: string;
}

/** A refusal the validation hook answers with. */
export interface InputRefusal {
  error: string;
  message: string;
  details: InputIssue[];
}

const JSON_MEDIA = /^application\/([\w.-]+\+)?json$/i;

/**
 * Checks one validation target of a request (`query`, `param`, `json`…) given what the
 * validator saw; null when the kernel has nothing against it.
 */
export function screenInput(
  result: { success: boolean; data?: unknown; target?: string },
  c: Context,
): InputRefusal | null {
  const target = result.target ?? "request";
  if (target === "json") {
    // The validator of a required body runs even without one (with {}): refuse that.
    const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim();
    if (!JSON_MEDIA.test(type)) {
      return {
        error: "body_required",
        message: "this route needs a JSON body (Content-Type: application/json)",
        details: [{ field: "(root)", in: "json", message: "required", code: "required" }],
      };
    }
  }
  const problems = findTextProblems(result.data);
  if (!problems.length) return null;
  const details = problems.map((p) => ({
    field: p.field,
    in: target,
    message: p.message,
    code: p.message.includes("deeper") ? "too_deep" : "invalid_text",
  }));
  return {
    error: "validation_failed",
    message: `invalid ${target}: ${details.map((d) => `${d.field}: ${d.message}`).join("; ")}`,
    details,
  };
}

/** How the kernel answers an error PostgreSQL raised because of a request's values. */
export interface DatabaseRefusal {
  status: 400 | 409;
  error: "invalid_value" | "conflict";
  message: string;
  sqlstate: string;
}

/**
 * A PostgreSQL error that is the request's fault, or null for any other error: a data
 * exception (class 22) is a value the route's validation should have refused (400
 * `invalid_value`); a unique or foreign-key violation is a conflict with what exists,
 * typically two requests racing (409 `conflict`). Other integrity violations (check,
 * not-null) stay 500s: they may as well come from the engine's own data.
 */
export function databaseRefusal(err: unknown): DatabaseRefusal | null {
  if (!err || typeof err !== "object") return null;
  const e = err as { code?: unknown; severity?: unknown; name?: unknown };
  if (typeof e.code !== "string" || !/^2[23][0-9A-Z]{3}$/.test(e.code)) return null;
  if (e.severity === undefined && e.name !== "PostgresError") return null;
  const sqlstate = e.code;
  if (sqlstate.startsWith("22")) {
    return {
      status: 400,
      error: "invalid_value",
      message: `a value in the request cannot be stored (SQLSTATE ${sqlstate})`,
      sqlstate,
    };
  }
  if (sqlstate === "23505" || sqlstate === "23503") {
    return {
      status: 409,
      error: "conflict",
      message: sqlstate === "23505"
        ? "the request conflicts with an existing record (perhaps created at the same moment)"
        : "the request refers to a record that does not exist (any more)",
      sqlstate,
    };
  }
  return null;
}

type SchemaLike = { _zod?: { def?: Record<string, unknown> } };

/** The named fields of an object schema (unwrapping pipes), or none. */
function shapeOf(schema: unknown): Record<string, unknown> {
  const def = (schema as SchemaLike)?._zod?.def;
  if (!def) return {};
  if (def.type === "object") return (def.shape as Record<string, unknown>) ?? {};
  if (def.type === "pipe") return shapeOf(def.in);
  return {};
}

/** True when a field schema (under optional/default/nullable wrappers) coerces its input. */
function coerces(schema: unknown, depth = 0): boolean {
  const def = (schema as SchemaLike)?._zod?.def;
  if (!def || depth > 10) return false;
  if (def.coerce === true) return true;
  for (const k of ["innerType", "in"]) if (def[k] && coerces(def[k], depth + 1)) return true;
  return false;
}

/**
 * Refuses, at registration, a route whose path or query reads a value with a coercing
 * schema; throws naming the route and the field.
 */
export function checkRouteInputs(route: {
  method: string;
  path: string;
  request?: { params?: unknown; query?: unknown };
}): void {
  for (const where of ["params", "query"] as const) {
    for (const [name, field] of Object.entries(shapeOf(route.request?.[where]))) {
      if (coerces(field)) {
        throw new Error(
          `${route.method.toUpperCase()} ${route.path}: ${where} value "${name}" uses a coercing ` +
            `schema (z.coerce reads "" as 0 and 1e10 as ten billion); use intParam() or ` +
            `idParam() from core/fields.ts`,
        );
      }
    }
  }
}

/**
 * The text rule of every input: PostgreSQL stores neither a NUL character (`text`,
 * `jsonb`) nor an unpaired UTF-16 surrogate (`jsonb` refuses the `\ud800` escape that
 * `JSON.stringify` writes for one; UTF-8 has no encoding for it), so such a string can
 * only end in a database error. The kernel refuses them in every path, query and JSON
 * value before a handler runs (core/http.ts); what agents report about their machines is
 * cleaned instead, because a real registry value can hold a NUL and the rest of the
 * report is worth keeping.
 *
 * @module
 */

/** One refused string: where it was (`a.b.0`, `(root)`) and why. */
export interface TextProblem {
  field: string;
  message: string;
}

/** Why a string cannot be stored, or null when it can. */
export function textProblem(s: string): string | null {
  if (s.includes("\0")) return "must not contain a NUL character (\\u0000)";
  if (!s.isWellFormed()) return "must not contain an unpaired UTF-16 surrogate";
  return null;
}

/** Deepest nesting of arrays and objects an input may have. */
export const MAX_INPUT_DEPTH = 64;

/**
 * Every string in `value` (object keys included) that cannot be stored, with its path,
 * and any array or object nested deeper than `maxDepth` (serialising or storing such a
 * value exhausts the stack long before it exhausts the body limit); stops after `limit`
 * problems. The walk is iterative, so a hostile value costs no stack here.
 */
export function findTextProblems(
  value: unknown,
  limit = 20,
  maxDepth = MAX_INPUT_DEPTH,
): TextProblem[] {
  const out: TextProblem[] = [];
  const stack: Array<{ v: unknown; path: string[] }> = [{ v: value, path: [] }];
  const at = (path: string[]) => path.join(".") || "(root)";
  while (stack.length && out.length < limit) {
    const { v, path } = stack.pop()!;
    if (path.length > maxDepth && v !== null && typeof v === "object") {
      out.push({
        field: at(path.slice(0, maxDepth)),
        message: `nests deeper than ${maxDepth} levels`,
      });
      continue;
    }
    if (typeof v === "string") {
      const why = textProblem(v);
      if (why) out.push({ field: at(path), message: why });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, String(i)] });
    } else if (v !== null && typeof v === "object") {
      const entries = Object.entries(v as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i]!;
        const why = textProblem(k);
        if (why) out.push({ field: at([...path, k]), message: `key ${why}` });
        stack.push({ v: child, path: [...path, k] });
      }
    }
  }
  return out.slice(0, limit);
}

/** A string made storable: NUL characters removed, unpaired surrogates replaced by U+FFFD. */
export function cleanString(s: string): string {
  const noNul = s.includes("\0") ? s.replaceAll("\0", "") : s;
  return noNul.isWellFormed() ? noNul : noNul.toWellFormed();
}

/** True when arrays and objects in `value` nest deeper than `maxDepth` (iterative). */
export function nestsDeeperThan(value: unknown, maxDepth = MAX_INPUT_DEPTH): boolean {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === "object") stack.push({ v: child, depth: depth + 1 });
    }
  }
  return false;
}

/**
 * A copy of `value` whose every string (keys included) is {@link cleanString}ed; values
 * that need no change are returned as they are. The rule for what agents report. Below
 * {@link MAX_INPUT_DEPTH} levels nothing is touched (such a value is refused anyway).
 */
export function cleanText<T>(value: T, depth = 0): T {
  if (typeof value === "string") return cleanString(value) as T;
  if (depth > MAX_INPUT_DEPTH) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v) => {
      const c = cleanText(v, depth + 1);
      if (c !== v) changed = true;
      return c;
    });
    return (changed ? out : value) as T;
  }
  if (value !== null && typeof value === "object") {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const ck = cleanString(k);
      const cv = cleanText(v, depth + 1);
      if (ck !== k || cv !== v) changed = true;
      out[ck] = cv;
    }
    return (changed ? out : value) as T;
  }
  return value;
}

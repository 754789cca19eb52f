/**
 * Deep merge for agent details: new values win, except that an empty new value
 * ("", null, [], {}) never erases a stored non-empty one — agents often send partial
 * documents (upstream behaviour).
 *
 * @module
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return false;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Merges `incoming` over `stored` (neither is modified). */
export function mergeDetails(stored: unknown, incoming: unknown, depth = 0): Json {
  if (depth > 32) return incoming as Json;
  if (isObject(stored) && isObject(incoming)) {
    const out: Record<string, Json> = { ...(stored as Record<string, Json>) };
    for (const [k, v] of Object.entries(incoming)) {
      out[k] = k in stored ? mergeDetails(stored[k], v, depth + 1) : v as Json;
    }
    return out;
  }
  if (isEmpty(incoming) && !isEmpty(stored)) return stored as Json;
  return incoming as Json;
}

/** Lower-cased, whitespace-collapsed name for software matching. */
export function normalizeSoftwareName(name: string): string {
  return name.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

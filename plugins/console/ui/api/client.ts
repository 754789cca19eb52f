/**
 * The typed API client: same-origin `fetch` with the session cookie (never a token in
 * script), JSON in and out, and the engine's one error model turned into {@link ApiError}
 * (code, message, details, request id). A 401 tells the session layer, which sends the
 * operator to sign-in and back.
 *
 * @module
 */

/** An error answer of the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    readonly details?: unknown,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Listener = (err: ApiError, path: string) => void;
const unauthorizedListeners = new Set<Listener>();
const lockedListeners = new Set<Listener>();

/** Calls `fn` whenever a request answers 401 (returns an unsubscribe function). */
export function onUnauthorized(fn: Listener): () => void {
  unauthorizedListeners.add(fn);
  return () => void unauthorizedListeners.delete(fn);
}

/** Calls `fn` whenever a request answers 423 (vault locked). */
export function onLocked(fn: Listener): () => void {
  lockedListeners.add(fn);
  return () => void lockedListeners.delete(fn);
}

/** Options of {@link api}. */
export interface ApiOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  body?: unknown;
  signal?: AbortSignal;
  /** Do not report a 401 to the session layer (sign-in forms expect them). */
  quiet401?: boolean;
}

/** Turns a failed response into an {@link ApiError}. */
export async function toApiError(res: Response): Promise<ApiError> {
  const requestId = res.headers.get("x-request-id");
  const retry = Number(res.headers.get("retry-after") ?? "");
  let code = `http_${res.status}`;
  let message = res.statusText || `request failed with status ${res.status}`;
  let details: unknown;
  try {
    const body = await res.json() as {
      error?: unknown;
      message?: unknown;
      details?: unknown;
      request_id?: unknown;
    };
    if (typeof body.error === "string") code = body.error;
    if (typeof body.message === "string") message = body.message;
    details = body.details;
    if (typeof body.request_id === "string" && !requestId) {
      return new ApiError(res.status, code, message, body.request_id, details);
    }
  } catch { /* not JSON */ }
  return new ApiError(
    res.status,
    code,
    message,
    requestId,
    details,
    Number.isFinite(retry) && retry > 0 ? retry : undefined,
  );
}

/** Calls the API; resolves with the parsed JSON body (undefined for 204). */
export async function api<T>(path: string, o: ApiOptions = {}): Promise<T> {
  const method = o.method ?? (o.body === undefined ? "GET" : "POST");
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        ...(o.body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: o.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "the engine cannot be reached", null);
  }
  if (!res.ok) {
    const err = await toApiError(res);
    if (res.status === 401 && !o.quiet401) {
      for (const fn of unauthorizedListeners) fn(err, path);
    }
    if (res.status === 423) { for (const fn of lockedListeners) fn(err, path); }
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Builds a query string from defined values (`?a=1&b=x`, or ""). */
export function query(
  params: Record<string, string | number | boolean | undefined | null>,
): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    sp.set(k, String(v));
  }
  const s = sp.toString();
  return s ? `?${s}` : "";
}

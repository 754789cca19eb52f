/**
 * The one error model of the HTTP surface: `{error, message, details?}` with a status.
 * Throw an {@link HttpError} anywhere in a handler or service; the app turns it into
 * the JSON reply. Anything else thrown becomes a logged 500 that shows only the
 * request id.
 *
 * @module
 */

/** A failure the caller caused or may act on. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** 400 with a machine code. */
export const badRequest = (code: string, message: string, details?: unknown): HttpError =>
  new HttpError(400, code, message, details);

/** 401; `challenge` becomes `WWW-Authenticate`. */
export const unauthorized = (message = "authentication required", challenge?: string): HttpError =>
  new HttpError(
    401,
    "unauthorized",
    message,
    undefined,
    challenge ? { "WWW-Authenticate": challenge } : undefined,
  );

/** 403 with a machine code. */
export const forbidden = (code = "forbidden", message = "not allowed"): HttpError =>
  new HttpError(403, code, message);

/** 404. */
export const notFound = (message = "not found"): HttpError =>
  new HttpError(404, "not_found", message);

/** 409 with a machine code. */
export const conflict = (code: string, message: string, details?: unknown): HttpError =>
  new HttpError(409, code, message, details);

/** 429 with Retry-After in whole seconds. */
export const tooManyRequests = (
  retryAfterSeconds: number,
  message = "too many requests",
): HttpError =>
  new HttpError(429, "rate_limited", message, { retry_after: Math.ceil(retryAfterSeconds) }, {
    "Retry-After": String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });

/**
 * Database failures that are about reaching the database, not about the statement: the
 * engine answers them with 503 and Retry-After (a client should try again), never 500.
 *
 * @module
 */

/** The database cannot be reached now (at start: within the connect timeout). */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, readonly retryAfterSeconds = 5) {
    super(message);
    this.name = "DatabaseUnavailableError";
  }
}

/**
 * How a database error relates to the connection:
 * - `connect`: no connection could be opened, so the statement never reached a server;
 * - `lost`: the connection ended under the statement (server restart, terminated
 *   backend, network), so the statement may or may not have run;
 * - `aborted`: the server ended the statement's session before it committed (57P01,
 *   57P02): it did not run;
 * - `unsent`: the client refused it before sending it (its pool was being closed,
 *   core/db_renewal.ts): it did not run and says nothing about the database;
 * - `null`: anything else (the statement's own error).
 */
export type DbFailure = "connect" | "lost" | "aborted" | "unsent" | null;

const CONNECT = new Set([
  "ECONNREFUSED",
  "CONNECT_TIMEOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "57P03", // cannot_connect_now: starting up or shutting down
  "53300", // too_many_connections
  "08001",
  "08004",
]);
const ABORTED = new Set(["57P01", "57P02"]); // admin_shutdown, crash_shutdown
const LOST = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
  "08000",
  "08003",
  "08006",
]);

/** Classifies `err` (see {@link DbFailure}). */
export function classifyDbError(err: unknown): DbFailure {
  if (err instanceof DatabaseUnavailableError) return "connect";
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string") {
    if (CONNECT.has(code)) return "connect";
    if (ABORTED.has(code)) return "aborted";
    if (code === "CONNECTION_ENDED") return "unsent";
    if (LOST.has(code)) return "lost";
  }
  // Deno's socket errors sometimes carry only a name and a message.
  const name = (err as { name?: unknown })?.name;
  if (name === "ConnectionRefused") return "connect";
  if (name === "ConnectionReset" || name === "BrokenPipe") return "lost";
  return null;
}

/** True for errors the HTTP layer answers with 503 instead of 500. */
export function isDatabaseUnavailable(err: unknown): boolean {
  return classifyDbError(err) !== null;
}

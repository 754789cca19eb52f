/**
 * Whether the database can write, for readiness. A database that answers `select 1`
 * may still refuse every write: a full disk, a read-only data dir, a server in
 * read-only mode. Storage failures of real statements and of the periodic write probe
 * mark writes as failing; they count as working again once a probe succeeds with no new
 * failure for a whole probe interval (a tiny probe row can fit where real writes do
 * not). Transitions are logged once each.
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** SQLSTATEs that mean the storage under the database failed, not the statement. */
const STORAGE_CODES = new Set([
  "53100", // disk_full
  "58030", // io_error
  "58P01", // undefined_file
  "58P02", // duplicate_file
  "25006", // read_only_sql_transaction (a server in read-only mode)
]);
const FILE_ACCESS = /could not (create|write|extend|open|fsync|rename|truncate|link|remove)/i;

/** True when `err` is a storage failure (disk full, read-only, I/O error). */
export function isStorageError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  if (STORAGE_CODES.has(code)) return true;
  // Permission and unclassified errors count only when they are about a file.
  const message = err instanceof Error ? err.message : "";
  return (code === "42501" || code === "XX000") && FILE_ACCESS.test(message);
}

/** What readiness reports about writes. */
export interface WriteState {
  ok: boolean;
  /** Why writes fail (the last storage error or probe failure). */
  reason?: string;
  since?: string;
}

/** Tracks whether writes work. */
export class StorageHealth {
  #failingSince: number | null = null;
  #lastFailure = 0;
  #reason = "";
  /** Set while the embedded database is being reopened. */
  reopening = false;

  constructor(
    private readonly log: Logger,
    private readonly probeIntervalMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** A write failed because of storage. */
  failed(reason: string): void {
    const now = this.now();
    this.#lastFailure = now;
    this.#reason = reason;
    if (this.#failingSince !== null) return;
    this.#failingSince = now;
    this.log.error(
      `writes to the database are failing (${reason}): readiness answers 503 until a write ` +
        `probe succeeds again`,
    );
  }

  /** A write probe succeeded. */
  probeSucceeded(): void {
    if (this.#failingSince === null) return;
    if (this.now() - this.#lastFailure < this.probeIntervalMs) return;
    const seconds = ((this.now() - this.#failingSince) / 1000).toFixed(0);
    this.#failingSince = null;
    this.log.info(`writes to the database work again (they failed for ${seconds} s)`);
  }

  /** True while writes are failing. */
  get failing(): boolean {
    return this.#failingSince !== null;
  }

  /** The state for readiness. */
  state(): WriteState {
    if (this.reopening) return { ok: false, reason: "the embedded database is being reopened" };
    if (this.#failingSince === null) return { ok: true };
    return {
      ok: false,
      reason: this.#reason,
      since: new Date(this.#failingSince).toISOString(),
    };
  }
}

/**
 * The database: a postgres.js pool to `BOREALIS_DATABASE_URL`, or, with no URL, an
 * embedded PGlite (PostgreSQL compiled to WASM) persisted under the data dir and served
 * to the same postgres.js client through pglite-socket on a loopback port. Callers get a
 * {@link Database} and cannot tell which one is behind it.
 *
 * @module
 */
import postgres from "postgres";
import { join } from "node:path";
import { DatabaseCircuit } from "./db_circuit.ts";
import { DatabaseUnavailableError } from "./db_errors.ts";
import { guardSql } from "./db_guard.ts";
import { RenewingClient } from "./db_renewal.ts";
import type { Logger } from "./log.ts";
import { isStorageError, StorageHealth } from "./storage_health.ts";

export { DatabaseUnavailableError } from "./db_errors.ts";

/** The SQL client every plugin uses (postgres.js). */
export type Sql = postgres.Sql;

/** An open database. */
export interface Database {
  /** The client, behind the circuit and the single retry (core/db_guard.ts). */
  readonly sql: Sql;
  /** Whether the database is known to be unreachable right now. */
  readonly circuit: DatabaseCircuit;
  /** Whether writes work (readiness). */
  readonly storage: StorageHealth;
  /** A description safe to log (no password). */
  readonly label: string;
  /**
   * Checks that a write succeeds (a row in `kernel_write_probe` keyed by `key`; for the
   * embedded database also a file in its folder) and updates {@link storage}. The
   * embedded database is reopened here after its folder was unwritable.
   */
  probeWrites(key: string): Promise<void>;
  close(): Promise<void>;
}

/** Options for {@link openDatabase}. */
export interface DatabaseOptions {
  url?: string;
  dataDir: string;
  poolSize: number;
  connectTimeoutSeconds: number;
  /** How long opening one pool connection may take once running (default 3000 ms). */
  openTimeoutMs?: number;
  idleInTxnTimeoutMs: number;
  log: Logger;
  /** Interval of the write probe (ms), for how long a failure keeps writes "failing". */
  writeProbeMs?: number;
  /** Time for {@link StorageHealth} (the engine's clock). */
  now?: () => number;
}

/** Writes the probe row: the cheapest statement that must reach the database's storage. */
async function probeRow(sql: Sql, key: string, now: number): Promise<void> {
  await sql`
    insert into kernel_write_probe (probe_key, probed_at) values (${key}, ${new Date(now)})
    on conflict (probe_key) do update set probed_at = excluded.probed_at`;
}

function message(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const text = err instanceof Error ? err.message : String(err);
  return typeof code === "string" ? `${code} ${text}` : text;
}

/** Opens the configured database, retrying with backoff up to the connect timeout. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) return await openServer(options.url, options);
  return await openEmbedded(options);
}

/** Pause before reopening a closed pooled connection (postgres.js `backoff`), seconds. */
export function reconnectBackoffSeconds(closedInARow: number): number {
  return Math.min(0.025 * closedInARow, 0.25);
}

function clientOptions(options: DatabaseOptions): postgres.Options<Record<string, never>> {
  const log = options.log;
  return {
    max: options.poolSize,
    idle_timeout: 60,
    // postgres.js waits before reopening a closed connection, 3^n/100 s for the n-th
    // connection in a row that closed with an error, shared by the pool, up to 20 s, and
    // reset only by a successful connect. After a restart (every pooled connection closes
    // with an error) that held queries for many seconds after the server was back. The
    // circuit (core/db_circuit.ts) already spaces attempts against a server that is down.
    backoff: reconnectBackoffSeconds,
    // Per connection attempt: while the database is down, a request waits at most this
    // long before the circuit opens and the rest fail fast.
    connect_timeout: Math.min(
      options.connectTimeoutSeconds,
      (options.openTimeoutMs ?? 3000) / 1000,
    ),
    onnotice: (n) => log.debug(`notice: ${n.message ?? ""}`),
    connection: {
      application_name: "borealis-engine",
      idle_in_transaction_session_timeout: options.idleInTxnTimeoutMs,
      TimeZone: "UTC",
    } as Record<string, string | number>,
  } as postgres.Options<Record<string, never>>;
}

/** A URL with the password masked, for logs and errors. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid url)";
  }
}

async function waitUntilReachable(sql: Sql, label: string, options: DatabaseOptions) {
  const deadline = Date.now() + options.connectTimeoutSeconds * 1000;
  let delay = 100;
  let attempt = 0;
  for (;;) {
    attempt++;
    try {
      await sql`select 1`;
      // The first connection has loaded the server's array types into the client, which
      // shares them with every connection. postgres.js would load them again on each new
      // connection, in a promise nothing awaits: a connection ended during that query (a
      // restart) rejected it unhandled, which ends the process, and left its stale state
      // to the next connection. They do not change while the engine runs.
      (sql.options as { fetch_types: boolean }).fetch_types = false;
      return;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (isPermanent(err) || Date.now() + delay > deadline) {
        await sql.end({ timeout: 1 }).catch(() => {});
        throw new DatabaseUnavailableError(
          `cannot reach PostgreSQL at ${label} after ${attempt} attempt(s) over ` +
            `${options.connectTimeoutSeconds}s: ${reason}`,
        );
      }
      options.log.warn(`database not reachable yet (${reason}); retrying in ${delay} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

/** Authentication and missing-database errors will not heal by waiting. */
function isPermanent(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === "28P01" || code === "28000" || code === "3D000";
}

async function openServer(url: string, options: DatabaseOptions): Promise<Database> {
  const label = safeUrl(url);
  const sql = postgres(url, clientOptions(options));
  await waitUntilReachable(sql, label, options);
  // `sql` keeps LISTEN and NOTIFY; statements go to a client replaced once the server
  // ended its sessions (core/db_renewal.ts).
  const statements = new RenewingClient(sql, {
    create: () => postgres(url, clientOptions(options)),
    log: options.log,
  });
  const circuit = new DatabaseCircuit({ log: options.log });
  const now = options.now ?? Date.now;
  const storage = new StorageHealth(options.log, options.writeProbeMs ?? 10_000, now);
  const onError = (err: unknown) => {
    if (isStorageError(err)) storage.failed(message(err));
  };
  const guarded = guardSql(sql, {
    circuit,
    source: statements,
    onError,
    poolSize: options.poolSize,
    retryWindowMs: options.openTimeoutMs ?? 3000,
  });
  return {
    sql: guarded,
    circuit,
    storage,
    label,
    async probeWrites(key) {
      try {
        await probeRow(guarded, key, now());
        storage.probeSucceeded();
      } catch (err) {
        if (!isStorageError(err)) throw err; // unreachable: the circuit and readiness say so
      }
    },
    close: async () => {
      await Promise.all([statements.end(5), sql.end({ timeout: 5 })]);
    },
  };
}

async function openEmbedded(options: DatabaseOptions): Promise<Database> {
  // Imported lazily so a server deployment never loads the WASM build.
  const { PGlite } = await import("@electric-sql/pglite");
  const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
  const dir = join(options.dataDir, "pglite");
  await Deno.mkdir(dir, { recursive: true });
  const release = await lockDataDir(dir);
  const log = options.log;
  const maxConnections = Math.max(options.poolSize + 8, 16);
  let db: InstanceType<typeof PGlite> | undefined;
  let server: InstanceType<typeof PGLiteSocketServer> | undefined;
  try {
    db = await PGlite.create(dir);
    // Several pooled connections are multiplexed onto PGlite's single backend;
    // pglite-socket keeps a transaction's statements together.
    server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections });
    await server.start();
    const [host, port] = server.getServerConn().split(":");
    const label = `embedded PGlite (${dir})`;
    const sql = postgres({
      ...clientOptions(options),
      // One connection: pglite-socket queues protocol messages from all connections onto
      // PGlite's single backend and only keeps a *transaction's* messages together, so
      // two connections' unnamed statements/portals interleave ("portal does not exist").
      // PGlite runs one query at a time anyway, so this costs no throughput.
      max: 1,
      host,
      port: Number(port),
      user: "postgres",
      database: "postgres",
    });
    await waitUntilReachable(sql, label, options);
    const circuit = new DatabaseCircuit({ log });
    const now = options.now ?? Date.now;
    const storage = new StorageHealth(log, options.writeProbeMs ?? 10_000, now);
    // PGlite's WASM file system caches the folder's entries: a file it failed to create
    // while the folder was read-only stays "existing" there ("could not create file …:
    // File exists") until the database is opened again.
    let reopenNeeded = false;
    const onError = (err: unknown) => {
      if (!isStorageError(err)) return;
      storage.failed(message(err));
      const code = (err as { code?: string }).code;
      if (code === "58P02" || code === "42501") reopenNeeded = true;
    };
    const guarded = guardSql(sql, {
      circuit,
      onError,
      poolSize: 1,
      retryWindowMs: options.openTimeoutMs ?? 3000,
    });
    const reopen = async () => {
      storage.reopening = true;
      log.warn(`reopening the embedded database in ${dir} after a storage failure`);
      try {
        await server!.stop().catch(() => {});
        const old = db!;
        // A database stuck in a failed state may never finish closing; it is let go.
        await Promise.race([
          old.close().catch(() => {}),
          new Promise((r) => setTimeout(r, 10_000)),
        ]);
        db = await PGlite.create(dir);
        server = new PGLiteSocketServer({ db, host, port: Number(port), maxConnections });
        await server.start();
        reopenNeeded = false;
        log.info("the embedded database was reopened");
      } finally {
        storage.reopening = false;
      }
    };
    return {
      sql: guarded,
      circuit,
      storage,
      label,
      async probeWrites(key) {
        try {
          const probe = join(dir, ".borealis-write-probe");
          await Deno.writeTextFile(probe, String(now()));
          await Deno.remove(probe);
        } catch (err) {
          storage.failed(`the data dir ${dir} is not writable: ${message(err)}`);
          if (err instanceof Deno.errors.PermissionDenied || /read-only/i.test(message(err))) {
            reopenNeeded = true;
          }
          return;
        }
        if (reopenNeeded) {
          try {
            await reopen();
          } catch (err) {
            storage.failed(`reopening the embedded database failed: ${message(err)}`);
            log.error(
              `the embedded database could not be reopened (${message(err)}); it is tried ` +
                `again at the next write probe; restart the engine if this persists`,
            );
            return;
          }
        }
        try {
          await probeRow(guarded, key, now());
          storage.probeSucceeded();
        } catch (err) {
          if (!isStorageError(err)) throw err;
        }
      },
      async close() {
        await sql.end({ timeout: 5 }).catch(() => {});
        await server!.stop().catch(() => {});
        await db!.close().catch(() => {});
        release();
      },
    };
  } catch (err) {
    await server?.stop().catch(() => {});
    await db?.close().catch(() => {});
    release();
    throw err;
  }
}

/**
 * PGlite is a single-process database: a second engine on the same folder would
 * corrupt it, so the folder is locked with a pid file.
 */
async function lockDataDir(dir: string): Promise<() => void> {
  const path = join(dir, "borealis-engine.pid");
  try {
    const pid = Number((await Deno.readTextFile(path)).trim());
    if (pid && pid !== Deno.pid && processAlive(pid)) {
      throw new DatabaseUnavailableError(
        `the embedded database in ${dir} is in use by another engine (pid ${pid}); ` +
          `stop it, or set BOREALIS_DATABASE_URL to share a PostgreSQL server between engines`,
      );
    }
  } catch (err) {
    if (err instanceof DatabaseUnavailableError) throw err;
  }
  const token = `${Deno.pid}\n`;
  await Deno.writeTextFile(path, token);
  return () => {
    try {
      if (Deno.readTextFileSync(path) === token) Deno.removeSync(path);
    } catch { /* already gone */ }
  };
}

function processAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

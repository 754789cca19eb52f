/**
 * The kernel's test helper for plugin authors, inside this repository and outside it:
 * `startTestEngine` starts a real engine with the plugins under test on a real, fresh
 * database and calls its HTTP app like a loopback client; `createTestDatabase` gives that
 * database (shareable by several engines). With `BOREALIS_TEST_DATABASE_URL` each database
 * is a new one on that PostgreSQL server; otherwise a copy of a once-initialised PGlite
 * data folder (initdb takes seconds, a copy milliseconds) in a new temporary data dir.
 *
 * @module
 */
import postgres from "postgres";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ManualClock } from "./clock.ts";
import { Engine, withRequirements } from "./engine.ts";
import { createLogSink, type LogSink } from "./log.ts";
import type { AnyPlugin } from "./plugin.ts";

/** The environment variables that point an engine at its test database. */
export interface TestDatabase {
  /** Put these into the engine's env. */
  env: Record<string, string>;
  /** The data dir (always set; the embedded database lives in it when no URL). */
  dataDir: string;
  /** The database URL when a server is used. */
  url?: string;
  /** Drops the database / removes the folder. */
  drop(): Promise<void>;
}

/** The server URL tests use, if any. */
export const serverUrl: string | undefined = Deno.env.get("BOREALIS_TEST_DATABASE_URL") ||
  undefined;

const TEMPLATE = join(tmpdir(), "borealis-pglite-template-0.5.16");

async function ensureTemplate(): Promise<string> {
  try {
    await Deno.stat(join(TEMPLATE, "PG_VERSION"));
    return TEMPLATE;
  } catch { /* build it */ }
  const { PGlite } = await import("@electric-sql/pglite");
  const building = `${TEMPLATE}.${crypto.randomUUID()}`;
  const db = await PGlite.create(building);
  await db.query("select 1");
  await db.close();
  try {
    await Deno.rename(building, TEMPLATE);
  } catch {
    // Another test process won the race; its template is as good as ours.
    await Deno.remove(building, { recursive: true }).catch(() => {});
  }
  return TEMPLATE;
}

async function copyDir(from: string, to: string): Promise<void> {
  const cmd = new Deno.Command("cp", { args: ["-r", from, to] });
  const { success } = await cmd.output();
  if (!success) throw new Error(`cp -r ${from} ${to} failed`);
}

/** Creates a fresh database for one test engine (or several sharing it). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const dataDir = await Deno.makeTempDir({ prefix: "borealis-test-" });
  if (serverUrl) {
    const name = `borealis_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    await admin.end();
    const u = new URL(serverUrl);
    u.pathname = `/${name}`;
    const url = u.toString();
    return {
      env: { BOREALIS_DATABASE_URL: url, BOREALIS_DATA_DIR: dataDir },
      dataDir,
      url,
      async drop() {
        const a = postgres(serverUrl!, { max: 1, onnotice: () => {} });
        await a.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
        await a.end();
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      },
    };
  }
  await copyDir(await ensureTemplate(), join(dataDir, "pglite"));
  return {
    env: { BOREALIS_DATA_DIR: dataDir },
    dataDir,
    async drop() {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** Options for {@link startTestEngine}. */
export interface TestEngineOptions {
  plugins: readonly AnyPlugin[];
  env?: Record<string, string>;
  /** Share an existing database (several instances, or a restart). */
  db?: TestDatabase;
  clock?: ManualClock;
  /**
   * Plugins the listed ones may require by name and that are not listed: they come along
   * (the engine's suite passes its built-in plugins).
   */
  available?: readonly AnyPlugin[];
  /** Print log lines to stderr (default: only when BOREALIS_TEST_LOG is set). */
  verbose?: boolean;
}

/** A running test engine and its helpers. */
export interface TestEngine {
  engine: Engine;
  db: TestDatabase;
  clock: ManualClock;
  /** Calls the app like a loopback client would. */
  request(path: string, init?: RequestInit & { json?: unknown; ip?: string }): Promise<Response>;
  /** Stops the engine (keeps the database). */
  stop(): Promise<void>;
  /** Stops the engine and drops its database unless shared via options.db. */
  close(): Promise<void>;
}

/** Starts an engine on a fresh (or given) database with a manual clock. */
export async function startTestEngine(options: TestEngineOptions): Promise<TestEngine> {
  const db = options.db ?? await createTestDatabase();
  const clock = options.clock ?? new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0));
  const sink: LogSink = createLogSink({
    dir: `${db.dataDir}/Logs`,
    stderr: options.verbose ?? !!Deno.env.get("BOREALIS_TEST_LOG"),
    level: "DEBUG",
    clock,
  });
  let engine: Engine;
  try {
    engine = await Engine.create({
      env: { BOREALIS_PORT: "0", ...db.env, ...options.env },
      // The plugins a test lists, with what they require from `available`.
      plugins: withRequirements(options.plugins, options.available ?? []),
      clock,
      logSink: sink,
    });
  } catch (err) {
    if (!options.db) await db.drop();
    throw err;
  }
  return {
    engine,
    db,
    clock,
    request(path, init = {}) {
      const { json, ip, ...rest } = init;
      const headers = new Headers(rest.headers);
      let body = rest.body;
      if (json !== undefined) {
        headers.set("content-type", "application/json");
        body = JSON.stringify(json);
      }
      const req = new Request(`http://127.0.0.1${path}`, { ...rest, headers, body });
      return Promise.resolve(
        engine.fetch(req, {
          remoteAddr: { hostname: ip ?? "127.0.0.1", port: 40000, transport: "tcp" },
        }),
      );
    },
    stop: () => engine.stop("test finished"),
    async close() {
      await engine.stop("test finished");
      if (!options.db) await db.drop();
    },
  };
}

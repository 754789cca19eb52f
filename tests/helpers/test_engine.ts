/**
 * Starts real engines for tests: real plugins, a real database (see test_db.ts), the
 * real HTTP app. `request()` goes through `app.fetch` with a loopback remote address;
 * `listen()` opens a real port when a test needs sockets or a separate process.
 *
 * @module
 */
import { ManualClock } from "../../core/clock.ts";
import { Engine, withRequirements } from "../../core/engine.ts";
import { createLogSink, type LogSink } from "../../core/log.ts";
import type { AnyPlugin } from "../../core/plugin.ts";
import { builtinPlugins, optionalPlugins } from "../../plugins/mod.ts";
import { createTestDatabase, type TestDatabase } from "./test_db.ts";

/** Options for {@link startTestEngine}. */
export interface TestEngineOptions {
  plugins: readonly AnyPlugin[];
  env?: Record<string, string>;
  /** Share an existing database (several instances, or a restart). */
  db?: TestDatabase;
  clock?: ManualClock;
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
      // A test lists the plugins it is about; what they require comes along, as it does
      // for BOREALIS_PLUGINS.
      plugins: withRequirements(options.plugins, [...builtinPlugins, ...optionalPlugins]),
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

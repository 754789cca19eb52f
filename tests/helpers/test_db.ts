/**
 * A fresh, isolated database for each test engine. With `BOREALIS_TEST_DATABASE_URL`
 * each call creates a new database on that PostgreSQL server; otherwise it copies a
 * once-initialised PGlite data folder (initdb takes seconds, a copy milliseconds) into
 * a new temporary data dir.
 *
 * @module
 */
import postgres from "postgres";
import { join } from "node:path";
import { tmpdir } from "node:os";

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

/**
 * Storage faults: readiness must say whether the engine can write, and the embedded
 * database must recover without a restart.
 *
 * - A read-only data dir (embedded): the engine runs as a process without the
 *   capabilities that let root ignore file modes, and its `pglite` folder is made
 *   read-only and writable again. Without a reopen, PGlite's in-memory view of the
 *   folder keeps refusing to create files ("File exists") until a restart.
 * - A full disk (embedded): the data dir lives on a small tmpfs that is filled up.
 * - A read-only server (PostgreSQL): `default_transaction_read_only` on the test
 *   database.
 *
 * Each needs something only some machines allow (setpriv, mounting a tmpfs, a server);
 * where it is missing the test is skipped and says why.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ManualClock } from "../core/clock.ts";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import inventory from "../plugins/inventory/mod.ts";
import {
  type EngineProcess,
  hasProgram,
  startEngineProcess,
  until,
} from "./helpers/engine_process.ts";
import { createOperator } from "./helpers/operators.ts";
import { createTestDatabase, serverUrl, type TestDatabase } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators, inventory];
const isRoot = Deno.uid() === 0;
const canSetpriv = isRoot && await hasProgram("setpriv");
const canMount = isRoot && await tryMount();

async function tryMount(): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "borealis-mount-probe-" });
  try {
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
    if (mounted) await run("umount", [dir]);
    return mounted;
  } finally {
    await Deno.remove(dir).catch(() => {});
  }
}

async function run(cmd: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

if (serverUrl) {
  console.warn("the embedded-database storage tests run without BOREALIS_TEST_DATABASE_URL");
} else {
  if (!canSetpriv) {
    console.warn("not root or no setpriv: the read-only data dir test is skipped");
  }
  if (!canMount) {
    console.warn(
      "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): the full disk test is skipped",
    );
  }
}

/** An admin session written by an in-process engine (then stopped). */
async function prepare(db: TestDatabase): Promise<Record<string, string>> {
  const t = await startTestEngine({ plugins, db, clock: new ManualClock(Date.now()) });
  try {
    return (await createOperator(t, { role: "Admin" })).headers;
  } finally {
    await t.stop();
  }
}

async function ready(engine: EngineProcess) {
  const r = await fetch(`${engine.url}/health/ready`);
  return { status: r.status, body: await r.json() };
}

/** Creates sites until one answers other than 201; returns the statuses seen. */
async function writeUntilRefused(
  engine: EngineProcess,
  headers: Record<string, string>,
  tag: string,
  max: number,
): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < max; i++) {
    const r = await fetch(`${engine.url}/api/sites`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ name: `${tag} ${i} ${"x".repeat(400)}`.slice(0, 120) }),
    });
    const body = await r.json();
    seen.push(r.status);
    if (r.status !== 201) {
      assert.equal(r.status, 503, JSON.stringify(body));
      assert.equal(body.error, "storage_unavailable");
      break;
    }
  }
  return seen;
}

async function writes(
  engine: EngineProcess,
  headers: Record<string, string>,
  tag: string,
  n: number,
) {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${engine.url}/api/sites`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ name: `${tag} ${i}` }),
    });
    const text = await r.text();
    assert.equal(r.status, 201, `${tag} ${i}: ${text}`);
  }
}

Deno.test({
  name:
    "storage: a read-only data dir turns readiness to 503 and writes to 503; once writable, the embedded database is reopened and writes work without a restart",
  ignore: !!serverUrl || !canSetpriv,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const db = await createTestDatabase();
    const pglite = `${db.dataDir}/pglite`;
    let engine: EngineProcess | undefined;
    try {
      const headers = await prepare(db);
      engine = await startEngineProcess({
        honourFileModes: true,
        env: {
          ...db.env,
          BOREALIS_PLUGINS: plugins.map((p) => p.name).join(","),
          BOREALIS_DB_WRITE_PROBE_SECONDS: "1",
        },
      });
      assert.deepEqual((await ready(engine)).body, { status: "ok", database: "ok", writes: "ok" });
      await writes(engine, headers, "before", 3);

      assert.ok(await run("chmod", ["-R", "a-w", pglite]));
      await until(async () => (await ready(engine!)).status === 503, 20_000, "readiness 503");
      const r = await ready(engine);
      assert.equal(r.body.writes, "failing");
      assert.match(r.body.reason, /not writable|Permission denied/);
      // Writes that need a new file (the table outgrows its first pages) are refused
      // with 503, never 500.
      const statuses = await writeUntilRefused(engine, headers, "read-only", 400);
      assert.equal(statuses.at(-1), 503, `statuses: ${statuses.join(",")}`);

      assert.ok(await run("chmod", ["-R", "u+w", pglite]));
      await engine.waitForLine(/the embedded database was reopened/, 30_000);
      await until(async () => (await ready(engine!)).status === 200, 30_000, "readiness 200");
      // Enough writes to create the files that failed before (PGlite's stale view would
      // answer "File exists" to these).
      await writes(engine, headers, "after", 200);
      assert.ok(
        engine.lines.some((l) => /ERROR-db: writes to the database are failing/.test(l)),
        "the failure was logged once as an error",
      );
      assert.ok(engine.lines.some((l) => /writes to the database work again/.test(l)));
      assert.equal(engine.exited, false);
    } finally {
      await run("chmod", ["-R", "u+w", pglite]);
      if (engine) await engine.stop();
      await db.drop();
    }
  },
});

Deno.test({
  name:
    "storage: a full disk turns readiness to 503 and writes to 503; freeing space brings both back by itself",
  ignore: !!serverUrl || !canMount,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const mount = await Deno.makeTempDir({ prefix: "borealis-full-disk-" });
    assert.ok(await run("mount", ["-t", "tmpfs", "-o", "size=96m", "tmpfs", mount]));
    let engine: EngineProcess | undefined;
    const source = await createTestDatabase();
    try {
      // The test database, moved onto the small file system.
      assert.ok(await run("cp", ["-r", `${source.dataDir}/pglite`, `${mount}/pglite`]));
      const db: TestDatabase = {
        env: { BOREALIS_DATA_DIR: mount },
        dataDir: mount,
        drop: () => Promise.resolve(),
      };
      const headers = await prepare(db);
      engine = await startEngineProcess({
        env: {
          ...db.env,
          BOREALIS_PLUGINS: plugins.map((p) => p.name).join(","),
          BOREALIS_DB_WRITE_PROBE_SECONDS: "1",
        },
      });
      await writes(engine, headers, "before", 3);
      // Fill what is left (dd stops at ENOSPC and reports failure; that is the point).
      await run("dd", ["if=/dev/zero", `of=${mount}/filler`, "bs=1M", "count=200"]);
      await until(async () => (await ready(engine!)).status === 503, 20_000, "readiness 503");
      assert.equal((await ready(engine)).body.writes, "failing");
      const statuses = await writeUntilRefused(engine, headers, "full", 400);
      assert.equal(statuses.at(-1), 503, `statuses: ${statuses.join(",")}`);
      assert.equal(engine.exited, false);

      await Deno.remove(`${mount}/filler`);
      await until(async () => (await ready(engine!)).status === 200, 30_000, "readiness 200");
      await writes(engine, headers, "after", 50);
    } finally {
      if (engine) await engine.stop();
      await run("umount", ["-l", mount]);
      await Deno.remove(mount, { recursive: true }).catch(() => {});
      await source.drop();
    }
  },
});

Deno.test({
  name:
    "storage: a PostgreSQL server in read-only mode turns readiness to 503 and writes to 503, and back",
  ignore: !serverUrl,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await startTestEngine({ plugins, env: { BOREALIS_DB_WRITE_PROBE_SECONDS: "1" } });
    const admin = postgres(serverUrl!, { max: 1, onnotice: () => {} });
    try {
      const op = await createOperator(t, { role: "Admin" });
      const name = new URL(t.db.url!).pathname.slice(1);
      const probe = async () => {
        await t.clock.advance(1000);
        await t.engine.tasks.idle();
        await t.engine.tasks.runNow("kernel.write_probe");
        return await (await t.request("/health/ready")).json();
      };
      assert.equal((await probe()).writes, "ok");
      await admin.unsafe(`alter database ${name} set default_transaction_read_only = on`);
      await admin`select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = ${name} and pid <> pg_backend_pid()`;
      const body = await probe();
      assert.equal(body.writes, "failing", JSON.stringify(body));
      assert.match(body.reason, /25006|read-only/);
      const refused = await t.request("/api/sites", {
        method: "POST",
        headers: op.headers,
        json: { name: "while read-only" },
      });
      assert.equal(refused.status, 503);
      assert.equal((await refused.json()).error, "storage_unavailable");

      await admin.unsafe(`alter database ${name} reset default_transaction_read_only`);
      await admin`select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = ${name} and pid <> pg_backend_pid()`;
      await probe(); // succeeds, but within a probe interval of the last failure
      assert.equal((await probe()).writes, "ok");
      const created = await t.request("/api/sites", {
        method: "POST",
        headers: op.headers,
        json: { name: "writable again" },
      });
      assert.equal(created.status, 201);
    } finally {
      await admin.end();
      await t.close();
    }
  },
});

import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase } from "../tests/helpers/test_db.ts";
import { openDatabase } from "./db.ts";
import { repairRows } from "./db_guard.ts";
import { createLogSink } from "./log.ts";

const log = createLogSink({ stderr: false }).logger("db");

Deno.test("repairRows: closes a gap at the front of a result, keeps its fields", () => {
  const result = Object.assign([] as unknown[], { count: 2, command: "SELECT" });
  result[3] = { x: 1 };
  result[4] = { x: 2 };
  assert.equal(repairRows(result), result);
  assert.deepEqual([...result], [{ x: 1 }, { x: 2 }]);
  assert.equal(result.count, 2);
  const whole = [{ x: 1 }];
  assert.deepEqual(repairRows(whole), [{ x: 1 }]);
  assert.deepEqual(repairRows([]), []);
  assert.equal(repairRows(null), null);
});

Deno.test({
  name:
    "database client: a statement that failed part-way through its rows does not shift the next one's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await createTestDatabase();
    // One connection, so the second statement runs where the first one failed.
    const db = await openDatabase({
      url: t.url,
      dataDir: t.dataDir,
      poolSize: 1,
      connectTimeoutSeconds: 10,
      idleInTxnTimeoutMs: 60_000,
      log,
    });
    try {
      // Rows 1 and 2 reach the client before the division by zero on row 3.
      await assert.rejects(
        db.sql`select x, 10 / (3 - x) as q from generate_series(1, 5) x`,
        (err: { code?: string }) => err.code === "22012",
      );
      const rows = await db.sql<{ x: number }[]>`select x from generate_series(1, 3) x`;
      assert.deepEqual(rows.map((r) => r.x), [1, 2, 3]);
      assert.equal(rows.length, 3);
      const [first] = await db.sql<{ x: number }[]>`select 7 as x`;
      assert.equal(first?.x, 7);
    } finally {
      await db.close();
      await t.drop();
    }
  },
});

Deno.test({
  name:
    "database client: reads are repeated after a restart ended every pooled connection; a read that mentions updated_at is a read",
  ignore: !Deno.env.get("BOREALIS_TEST_DATABASE_URL"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await createTestDatabase();
    const poolSize = 4;
    const db = await openDatabase({
      url: t.url,
      dataDir: t.dataDir,
      poolSize,
      connectTimeoutSeconds: 10,
      idleInTxnTimeoutMs: 60_000,
      log,
    });
    const admin = postgres(t.url!, { max: 1, onnotice: () => {} });
    try {
      await db.sql`create table items (id int primary key, updated_at timestamptz)`;
      await db.sql`insert into items values (1, now())`;
      const dbName = new URL(t.url!).pathname.slice(1);
      for (let round = 0; round < 5; round++) {
        // Every pooled connection is open and busy, so each holds a backend...
        await Promise.all(
          Array.from({ length: poolSize }, () => db.sql`select pg_sleep(0.02)`),
        );
        // ...then all of them end, as in a restart, while reads are already queued on
        // connections the client has not yet seen close.
        const reads = Array.from(
          { length: 2 * poolSize },
          () =>
            (async () =>
              await db.sql<{ id: number }[]>`select id, updated_at from items where id = 1`)(),
        );
        await admin`
          select pg_terminate_backend(pid) from pg_stat_activity
          where datname = ${dbName} and pid <> pg_backend_pid()`;
        for (const rows of await Promise.all(reads)) assert.equal(rows[0]?.id, 1);
        const after = await db.sql<{ id: number }[]>`select id, updated_at from items`;
        assert.equal(after[0]?.id, 1, `round ${round}`);
      }
      assert.equal(db.circuit.isOpen, false);
    } finally {
      await admin.end();
      await db.close();
      await t.drop();
    }
  },
});

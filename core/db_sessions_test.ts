import assert from "node:assert/strict";
import postgres from "postgres";
import {
  ENGINE_APPLICATION_NAME,
  formatAge,
  listSessions,
  renderSessions,
  type SessionInfo,
} from "./db_sessions.ts";

const DATABASE_URL = Deno.env.get("BOREALIS_TEST_DATABASE_URL");

function session(overrides: Partial<SessionInfo>): SessionInfo {
  return {
    pid: 100,
    applicationName: ENGINE_APPLICATION_NAME,
    userName: "borealis",
    clientAddr: "127.0.0.1",
    backendType: "client backend",
    state: "idle",
    waitEventType: "Client",
    waitEvent: "ClientRead",
    backendAgeSeconds: 120,
    transactionAgeSeconds: null,
    stateAgeSeconds: 0.25,
    query: "ROLLBACK",
    idleInTransactionTooLong: false,
    ...overrides,
  };
}

Deno.test("renderSessions draws a table and explains flagged sessions", () => {
  const text = renderSessions([
    session({
      pid: 4242,
      state: "idle in transaction",
      transactionAgeSeconds: 75,
      stateAgeSeconds: 74.5,
      query: "SELECT *\n  FROM devices",
      idleInTransactionTooLong: true,
    }),
    session({ pid: 4343, applicationName: "psql" }),
  ]);
  const lines = text.split("\n");
  assert.match(lines[0]!, /PID\s+APPLICATION\s+STATE\s+BACKEND\s+TXN\s+STATE AGE\s+WAIT\s+QUERY/);
  assert.match(
    lines[1]!,
    /^!\s+4242\s+borealis-engine\s+idle in transaction\s+2m00s\s+1m15s\s+1m14s/,
  );
  assert.match(lines[1]!, /Client:ClientRead\s+SELECT \* FROM devices$/);
  assert.match(lines[2]!, /^\s+4343\s+psql\s+idle\s+2m00s\s+-\s+250ms/);
  assert.match(text, /2 session\(s\), 1 from borealis-engine\./);
  assert.match(text, /! 1 session\(s\) idle in transaction past the threshold/);
});

Deno.test("renderSessions says so when there is nothing to show", () => {
  assert.equal(renderSessions([]), "No other sessions on this database.\n");
  assert.doesNotMatch(renderSessions([session({})]), /past the threshold/);
});

Deno.test("formatAge picks a readable unit", () => {
  assert.equal(formatAge(null), "-");
  assert.equal(formatAge(0.0123), "12ms");
  assert.equal(formatAge(5.25), "5.3s");
  assert.equal(formatAge(65), "1m05s");
  assert.equal(formatAge(7380), "2h03m");
  assert.equal(formatAge(273600), "3d04h");
});

Deno.test({
  name: "listSessions lists and flags a connection held idle in a transaction",
  ignore: !DATABASE_URL,
  async fn() {
    const sql = postgres(DATABASE_URL!, { max: 1, onnotice: () => {} });
    const engine = postgres(DATABASE_URL!, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: ENGINE_APPLICATION_NAME },
    });
    const held = await engine.reserve();
    try {
      const [{ pid }] = await held<[{ pid: number }]>`SELECT pg_backend_pid() AS pid`;
      await held`BEGIN`;
      await held`SELECT 1 AS held_open`;
      const [{ pid: ownPid }] = await sql<[{ pid: number }]>`SELECT pg_backend_pid() AS pid`;

      const flagged = await listSessions(sql, { idleInTxnWarnSeconds: 0 });
      assert.ok(!flagged.some((s) => s.pid === ownPid), "own session is left out");
      const row = flagged.find((s) => s.pid === pid);
      assert.ok(row, "the held session is listed");
      assert.equal(row.applicationName, ENGINE_APPLICATION_NAME);
      assert.equal(row.state, "idle in transaction");
      assert.equal(row.query, "SELECT 1 AS held_open");
      assert.equal(row.idleInTransactionTooLong, true);
      assert.ok(row.transactionAgeSeconds !== null && row.transactionAgeSeconds >= 0);
      assert.ok(row.stateAgeSeconds !== null && row.stateAgeSeconds >= 0);
      assert.ok(row.backendAgeSeconds >= row.transactionAgeSeconds);
      assert.match(renderSessions(flagged), new RegExp(`^!\\s+${pid}\\s`, "m"));

      const relaxed = await listSessions(sql, { idleInTxnWarnSeconds: 3600 });
      assert.equal(relaxed.find((s) => s.pid === pid)?.idleInTransactionTooLong, false);

      await held`ROLLBACK`;
      const after = await listSessions(sql, { idleInTxnWarnSeconds: 0 });
      const idle = after.find((s) => s.pid === pid);
      assert.equal(idle?.state, "idle");
      assert.equal(idle?.transactionAgeSeconds, null);
      assert.equal(idle?.idleInTransactionTooLong, false);
    } finally {
      held.release();
      await engine.end();
      await sql.end();
    }
  },
});

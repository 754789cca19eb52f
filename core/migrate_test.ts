import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogSink } from "./log.ts";
import { openDatabase } from "./db.ts";
import { applyMigrations, MigrationError, migrationStatus } from "./migrate.ts";
import { createTestDatabase } from "../tests/helpers/test_db.ts";
import { startTestEngine } from "../tests/helpers/test_engine.ts";
import { definePlugin } from "./plugin.ts";

const log = createLogSink({ stderr: false }).logger("test");

async function withDb(fn: (open: () => ReturnType<typeof openDatabase>) => Promise<void>) {
  const db = await createTestDatabase();
  const opened: Array<Awaited<ReturnType<typeof openDatabase>>> = [];
  try {
    await fn(async () => {
      const d = await openDatabase({
        url: db.url,
        dataDir: db.dataDir,
        poolSize: 4,
        connectTimeoutSeconds: 5,
        idleInTxnTimeoutMs: 10_000,
        log,
      });
      opened.push(d);
      return d;
    });
  } finally {
    for (const d of opened) await d.close();
    await db.drop();
  }
}

async function migrationDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  return dir;
}

Deno.test("migrate: two engines migrating one database at the same moment apply each file once", async () => {
  await withDb(async (open) => {
    const dir = await migrationDir({
      // Not idempotent on purpose: a second application would fail.
      "001_widgets.sql":
        "create table widgets (id int primary key); insert into widgets values (1);",
      "002_gadgets.sql":
        "create table gadgets (id int primary key); insert into widgets values (2);",
      "003_slow.sql": "select pg_sleep(0.2); insert into widgets values (3);",
    });
    const a = await open();
    // On a server, a second pool is a second engine; the embedded database is one
    // process, so there the race runs through one pool's connections.
    const b = a.label.startsWith("embedded") ? a : await open();
    const sources = [{ owner: "demo", dir }];
    const [na, nb] = await Promise.all([
      applyMigrations(a.sql, sources, log),
      applyMigrations(b.sql, sources, log),
    ]);
    assert.equal(na + nb, 3);
    const rows = await a
      .sql`select owner, version from schema_migrations where owner = 'demo' order by version`;
    assert.deepEqual(rows.map((r) => r.version), [1, 2, 3]);
    const widgets = await a.sql`select id from widgets order by id`;
    assert.deepEqual(widgets.map((r) => r.id), [1, 2, 3]);
  });
});

Deno.test("migrate: an applied file whose checksum changed stops start-up with a clear message", async () => {
  await withDb(async (open) => {
    const d = await open();
    const dir = await migrationDir({ "001_things.sql": "create table things (id int);" });
    await applyMigrations(d.sql, [{ owner: "demo", dir }], log);
    await Deno.writeTextFile(join(dir, "001_things.sql"), "create table things (id bigint);");
    await assert.rejects(
      applyMigrations(d.sql, [{ owner: "demo", dir }], log),
      (e: Error) =>
        e instanceof MigrationError && /demo\/001_things.sql/.test(e.message) &&
        /Never edit an applied migration/.test(e.message),
    );
    await assert.rejects(migrationStatus(d.sql, [{ owner: "demo", dir }]), MigrationError);
  });
});

Deno.test("migrate: status lists applied and pending per owner; bad file names are refused", async () => {
  await withDb(async (open) => {
    const d = await open();
    const dir = await migrationDir({ "001_a.sql": "create table a (id int);" });
    await applyMigrations(d.sql, [{ owner: "demo", dir }], log);
    await Deno.writeTextFile(join(dir, "002_b.sql"), "create table b (id int);");
    const [status] = await migrationStatus(d.sql, [{ owner: "demo", dir }]);
    assert.deepEqual(status!.applied.map((a) => a.name), ["a"]);
    assert.deepEqual(status!.pending, [{ version: 2, name: "b" }]);
    await Deno.writeTextFile(join(dir, "3-bad.sql"), "select 1");
    await assert.rejects(
      applyMigrations(d.sql, [{ owner: "demo", dir }], log),
      /must be named NNN_description.sql/,
    );
  });
});

Deno.test("migrate: a failing file rolls back alone and names itself", async () => {
  await withDb(async (open) => {
    const d = await open();
    const dir = await migrationDir({
      "001_ok.sql": "create table ok1 (id int);",
      "002_broken.sql": "create table broken (id int); select no_such_function();",
    });
    await assert.rejects(
      applyMigrations(d.sql, [{ owner: "demo", dir }], log),
      /demo\/002_broken.sql failed/,
    );
    const [row] = await d
      .sql`select count(*)::int as n from schema_migrations where owner = 'demo'`;
    assert.equal(row!.n, 1);
    const [gone] = await d.sql`select to_regclass('broken') is null as t`;
    assert.equal(gone!.t, true);
  });
});

Deno.test("migrate: with auto-migrate off the engine refuses to start while migrations are pending", async () => {
  const dir = await migrationDir({ "001_x.sql": "create table x (id int);" });
  const plugin = definePlugin({
    name: "needs_x",
    migrations: new URL(`file://${dir}/`),
    setup() {},
  });
  const db = await createTestDatabase();
  try {
    await assert.rejects(
      startTestEngine({ plugins: [plugin], db, env: { BOREALIS_ENGINE_AUTO_MIGRATE: "false" } }),
      /migration\(s\) pending \(kernel\/001_kernel, .*needs_x\/001_x\) and BOREALIS_ENGINE_AUTO_MIGRATE=false/,
    );
    const t = await startTestEngine({ plugins: [plugin], db });
    await t.stop();
    const again = await startTestEngine({
      plugins: [plugin],
      db,
      env: { BOREALIS_ENGINE_AUTO_MIGRATE: "false" },
    });
    await again.stop();
  } finally {
    await db.drop();
  }
});

Deno.test("migrate: a baseline starts a new database; a database that began with the files goes on through them; both end alike", async () => {
  // The history: things were created with a column that version 2 moves out again.
  const history = {
    "001_things.sql": "create table demo_things (id int primary key, label text, extra text);",
    "002_move_extra.sql": "create table demo_extras (id int primary key references demo_things," +
      " extra text); insert into demo_extras select id, extra from demo_things" +
      " where extra is not null; alter table demo_things drop column extra;",
  };
  // Later the same history plus a baseline written anew, and a file after it.
  const today = {
    ...history,
    "baseline_002.sql": "create table demo_things (id int primary key, label text);" +
      " create table demo_extras (id int primary key references demo_things, extra text);",
    "003_more.sql": "alter table demo_things add column more int;",
  };
  const shapes: string[][] = [];
  let oldData: unknown[] = [];
  await withDb(async (open) => {
    const d = await open();
    await applyMigrations(d.sql, [{ owner: "demo", dir: await migrationDir(history) }], log);
    await d.sql`insert into demo_things values (1, 'one')`;
    const dir = await migrationDir(today);
    // The database that ran 001 and 002 keeps them and runs only 003.
    assert.equal(await applyMigrations(d.sql, [{ owner: "demo", dir }], log), 1);
    oldData = [...await d.sql`select id, label, more from demo_things`];
    shapes.push(await shape(d.sql));
  });
  await withDb(async (open) => {
    const a = await open();
    const b = a.label.startsWith("embedded") ? a : await open();
    const dir = await migrationDir(today);
    const [na, nb] = await Promise.all([
      applyMigrations(a.sql, [{ owner: "demo", dir }], log),
      applyMigrations(b.sql, [{ owner: "demo", dir }], log),
    ]);
    assert.equal(na + nb, 3, "the baseline counts for the files it covers, applied once");
    const rows = await a.sql<{ version: number; name: string }[]>`
      select version, name from schema_migrations where owner = 'demo' order by version`;
    assert.deepEqual(rows.map((r) => `${r.version}_${r.name}`), [
      "1_things",
      "2_move_extra",
      "3_more",
    ]);
    const [status] = await migrationStatus(a.sql, [{ owner: "demo", dir }]);
    assert.deepEqual(status!.pending, []);
    shapes.push(await shape(a.sql));
  });
  assert.deepEqual(shapes[1], shapes[0]);
  assert.deepEqual(oldData, [{ id: 1, label: "one", more: null }]);
});

async function shape(sql: Awaited<ReturnType<typeof openDatabase>>["sql"]): Promise<string[]> {
  const rows = await sql<{ t: string; c: string; type: string }[]>`
    select table_name as t, column_name as c, data_type as type
    from information_schema.columns where table_schema = 'public' and table_name like 'demo_%'
    order by table_name, ordinal_position`;
  return rows.map((r) => `${r.t}.${r.c}:${r.type}`);
}

Deno.test("migrate: a baseline must stand for a file that exists", async () => {
  await withDb(async (open) => {
    const d = await open();
    const dir = await migrationDir({ "001_a.sql": "select 1", "baseline_002.sql": "select 1" });
    await assert.rejects(
      applyMigrations(d.sql, [{ owner: "demo", dir }], log),
      /baseline_002.sql replaces files up to version 2, but there is no such file/,
    );
  });
});

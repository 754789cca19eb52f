/**
 * Assemblies through the service layer and the real database: load, dirty state and
 * flush timing on the injected clock, retries of rejected writes, payload integrity,
 * stale versions, import/export round trips and the official sync.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { HttpError } from "../core/errors.ts";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import assemblies, { assembliesService } from "../plugins/assemblies/mod.ts";
import { uuidV5 } from "../plugins/assemblies/model.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators, assemblies];

async function emptyCatalog(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "borealis-catalog-" });
}

async function start(env: Record<string, string> = {}): Promise<TestEngine> {
  return await startTestEngine({
    plugins,
    env: { BOREALIS_ASSEMBLIES_CATALOG_DIR: await emptyCatalog(), ...env },
  });
}

async function rowCount(t: TestEngine, guid?: string): Promise<number> {
  const [r] = guid
    ? await t.engine.sql<{ n: number }[]>`
      select count(*)::int as n from assemblies.assemblies where assembly_guid = ${guid}`
    : await t.engine.sql<{ n: number }[]>`select count(*)::int as n from assemblies.assemblies`;
  return r!.n;
}

async function rejects(p: Promise<unknown> | (() => unknown), status: number, code: string) {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    assert.ok(err instanceof HttpError, `expected HttpError, got ${err}`);
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    return err;
  }
  assert.fail(`expected ${status} ${code}`);
}

const script = (name: string, text = "Write-Output 'hi'\n") => ({
  domain: "user_created" as const,
  display_name: name,
  assembly_kind: "script" as const,
  assembly_type: "powershell" as const,
  payload: text,
});

Deno.test("assemblies: the shipped catalog loads into the official domain at boot", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const s = t.engine.service(assembliesService);
    const { items, total } = s.cache.list({ domain: "official", limit: 1000, offset: 0 }, true);
    const scripts = items.filter((i) => i.assembly_kind === "script");
    const workflows = items.filter((i) => i.assembly_kind === "workflow");
    assert.ok(scripts.length >= 12, `${scripts.length} scripts`);
    assert.equal(workflows.length, 2);
    assert.deepEqual(
      new Set(scripts.map((i) => i.assembly_type)),
      new Set(["powershell", "bash", "batch"]),
    );
    assert.equal(await rowCount(t), total);
    for (const item of items) {
      assert.equal(item.is_dirty, false);
      const { record, payload } = await s.detail(item.assembly_guid);
      assert.ok(record.summary.length > 20, `${record.display_name} has a description`);
      const vars = (record.metadata.variables ?? []) as Array<Record<string, unknown>>;
      for (const v of vars) {
        assert.ok(typeof v.description === "string" && v.description.length > 10, `${v.name}`);
      }
      if (record.assembly_kind === "script") {
        assert.ok(typeof payload === "string" && payload.length > 50);
      } else {
        assert.ok((payload as { nodes: unknown[] }).nodes.length >= 3);
      }
      assert.equal(
        record.assembly_guid,
        await uuidV5(`official:${record.source_path}`),
        "GUID derives from the relative path",
      );
    }
    assert.deepEqual(s.cache.problems(), []);
  } finally {
    await t.close();
  }
});

Deno.test("assemblies: a staged change is dirty until the flush timer writes it", async () => {
  const t = await start();
  try {
    const s = t.engine.service(assembliesService);
    const r = await s.create(script("Dirty one"));
    assert.equal(await rowCount(t, r.assembly_guid), 0);
    const st = s.cache.state(r.assembly_guid)!;
    assert.equal(st.is_dirty, true);
    assert.equal(st.dirty_since, new Date(t.clock.now()).toISOString());
    assert.equal(st.last_persisted, null);
    assert.equal(s.cache.queue().dirty_count, 1);

    await t.clock.advance(59_000);
    await t.engine.tasks.idle();
    assert.equal(await rowCount(t, r.assembly_guid), 0, "not before the interval");

    await t.clock.advance(1_000);
    await t.engine.tasks.idle();
    assert.equal(await rowCount(t, r.assembly_guid), 1);
    const after = s.cache.describe()[r.assembly_guid]!;
    assert.equal(after.is_dirty, false);
    assert.equal(after.dirty_since, null);
    assert.equal(after.last_persisted, new Date(t.clock.now()).toISOString());
    assert.equal(s.cache.queue().dirty_count, 0);

    // Deletes are queued the same way; the payload folder goes with the row.
    s.remove(r.assembly_guid);
    assert.equal(s.get(r.assembly_guid), null);
    assert.equal(await rowCount(t, r.assembly_guid), 1);
    await t.clock.advance(60_000);
    await t.engine.tasks.idle();
    assert.equal(await rowCount(t, r.assembly_guid), 0);
    await assert.rejects(
      Deno.stat(join(t.db.dataDir, "Assemblies", "Payloads", r.payload_guid)),
      Deno.errors.NotFound,
    );
  } finally {
    await t.close();
  }
});

Deno.test("assemblies: the flush interval is configurable with a 5 second minimum", async () => {
  const t = await start({ BOREALIS_ASSEMBLIES_FLUSH_SECONDS: "5" });
  try {
    const s = t.engine.service(assembliesService);
    const r = await s.create(script("Fast"));
    await t.clock.advance(5_000);
    await t.engine.tasks.idle();
    assert.equal(await rowCount(t, r.assembly_guid), 1);
  } finally {
    await t.close();
  }
  await assert.rejects(start({ BOREALIS_ASSEMBLIES_FLUSH_SECONDS: "4" }), /FLUSH_SECONDS/);
});

Deno.test("assemblies: reads return copies", async () => {
  const t = await start();
  try {
    const s = t.engine.service(assembliesService);
    const r = await s.create({ ...script("Copy"), metadata: { variables: [{ name: "a" }] } });
    const got = s.get(r.assembly_guid)!;
    got.display_name = "changed";
    (got.metadata.variables as Array<{ name: string }>)[0]!.name = "changed";
    got.tags.push("x");
    const again = s.get(r.assembly_guid)!;
    assert.equal(again.display_name, "Copy");
    assert.deepEqual(again.metadata, { variables: [{ name: "a" }] });
    assert.deepEqual(again.tags, []);
  } finally {
    await t.close();
  }
});

Deno.test("assemblies: a write the database rejects stays dirty and is retried with backoff", async () => {
  const t = await start();
  try {
    const s = t.engine.service(assembliesService);
    await t.engine.sql.unsafe(`
      create function assemblies.test_reject() returns trigger language plpgsql as $$
      begin
        if new.display_name = 'Rejected' then raise exception 'test refuses this row'; end if;
        return new;
      end $$;
      create trigger test_reject before insert or update on assemblies.assemblies
        for each row execute function assemblies.test_reject();`);
    const good = await s.create(script("Accepted"));
    const bad = await s.create(script("Rejected"));

    await t.clock.advance(60_000);
    await t.engine.tasks.idle();
    assert.equal(await rowCount(t, good.assembly_guid), 1, "the good entry is not held back");
    assert.equal(await rowCount(t, bad.assembly_guid), 0);
    let st = s.cache.state(bad.assembly_guid)!;
    assert.equal(st.is_dirty, true);
    assert.equal(st.attempts, 1);
    assert.match(st.last_error!, /test refuses this row/);
    assert.equal(s.cache.state(good.assembly_guid)!.is_dirty, false);
    assert.equal(s.cache.queue().failing_count, 1);
    assert.match(s.cache.queue().last_flush_error!, /refused/);

    // First retry at the next tick, then the delay doubles: 60 s, 120 s, …
    await t.clock.advance(60_000);
    await t.engine.tasks.idle();
    assert.equal(s.cache.state(bad.assembly_guid)!.attempts, 2);
    await t.clock.advance(60_000);
    await t.engine.tasks.idle();
    assert.equal(s.cache.state(bad.assembly_guid)!.attempts, 2, "backing off");

    await t.engine.sql.unsafe(`drop trigger test_reject on assemblies.assemblies`);
    await t.clock.advance(60_000);
    await t.engine.tasks.idle();
    st = s.cache.state(bad.assembly_guid)!;
    assert.equal(st.is_dirty, false);
    assert.equal(st.attempts, 0);
    assert.equal(await rowCount(t, bad.assembly_guid), 1);
  } finally {
    await t.close();
  }
});

Deno.test("assemblies: an edit with a stale version gets 409 stale_version", async () => {
  const t = await start();
  try {
    const s = t.engine.service(assembliesService);
    const r = await s.create(script("Versioned"));
    assert.equal(r.version, 1);
    const v2 = await s.update(r.assembly_guid, 1, { payload: "Write-Output 'v2'\n" });
    assert.equal(v2.version, 2);
    const err = await rejects(
      s.update(r.assembly_guid, 1, { summary: "late" }),
      409,
      "stale_version",
    );
    assert.deepEqual(err.details, { current_version: 2, sent_version: 1 });
    // Two edits racing from the same version: exactly one wins.
    const results = await Promise.allSettled([
      s.update(r.assembly_guid, 2, { payload: "a" }),
      s.update(r.assembly_guid, 2, { payload: "b" }),
    ]);
    assert.equal(results.filter((x) => x.status === "fulfilled").length, 1);
    assert.equal(s.get(r.assembly_guid)!.version, 3);
    await s.flush();
    const [row] = await t.engine.sql`
      select version, checksum from assemblies.assemblies where assembly_guid = ${r.assembly_guid}`;
    assert.equal(row!.version, 3);
    // Only the payload the row points at is left on disk.
    const dirs = [];
    for await (const d of Deno.readDir(join(t.db.dataDir, "Assemblies", "Payloads"))) {
      dirs.push(d.name);
    }
    assert.deepEqual(dirs, [s.get(r.assembly_guid)!.payload_guid]);
    // A change without new content keeps the payload and applies every field.
    const renamed = await s.update(r.assembly_guid, 3, {
      display_name: "Renamed",
      summary: "now described",
      tags: ["t"],
    });
    assert.equal(renamed.display_name, "Renamed");
    assert.equal(renamed.summary, "now described");
    assert.deepEqual(renamed.tags, ["t"]);
    assert.equal(renamed.payload_guid, s.get(r.assembly_guid)!.payload_guid);
    assert.notEqual(renamed.checksum, s.get(r.assembly_guid) && row!.checksum);
  } finally {
    await t.close();
  }
});

Deno.test("assemblies: a deleted or corrupted payload is reported on read, at load and by the integrity check", async () => {
  const t = await start();
  let t2: TestEngine | undefined;
  try {
    const s = t.engine.service(assembliesService);
    const gone = await s.create(script("Gone"));
    const bent = await s.create(script("Bent", "Write-Output 'original'\n"));
    const fine = await s.create(script("Fine"));
    await s.flush();
    const payloads = join(t.db.dataDir, "Assemblies", "Payloads");
    await Deno.remove(join(payloads, gone.payload_guid, "payload.ps1"));
    await Deno.writeTextFile(
      join(payloads, bent.payload_guid, "payload.ps1"),
      "Write-Output 'evil!!'\n",
    );

    await rejects(s.detail(gone.assembly_guid), 409, "payload_missing");
    await rejects(s.detail(bent.assembly_guid), 409, "payload_corrupt");
    await rejects(s.exportDocument(bent.assembly_guid), 409, "payload_corrupt");
    await rejects(s.clone(gone.assembly_guid, "user_created"), 409, "payload_missing");
    assert.equal((await s.detail(fine.assembly_guid)).payload, "Write-Output 'hi'\n");

    const problems = await s.cache.checkIntegrity();
    assert.deepEqual(
      problems.map((p) => [p.assembly_guid, p.problem]).sort(),
      [[gone.assembly_guid, "missing"], [bent.assembly_guid, "corrupt"]].sort(),
    );

    await t.stop();
    t2 = await startTestEngine({
      plugins,
      db: t.db,
      env: { BOREALIS_ASSEMBLIES_CATALOG_DIR: await emptyCatalog() },
    });
    const s2 = t2.engine.service(assembliesService);
    assert.equal(s2.cache.problems().length, 2, "found at load");
    // Re-saving the content heals the entry.
    await s2.update(bent.assembly_guid, 1, { payload: "Write-Output 'restored'\n" });
    assert.equal((await s2.detail(bent.assembly_guid)).payload, "Write-Output 'restored'\n");
    assert.equal((await s2.cache.checkIntegrity()).length, 1);
  } finally {
    await t2?.stop();
    await t.close();
  }
});

Deno.test("assemblies: import → export → import → export is byte-for-byte stable, files included", async () => {
  const t = await start();
  let t2: TestEngine | undefined;
  try {
    const s = t.engine.service(assembliesService);
    const fileData = new Uint8Array([0, 1, 2, 250, 255, 10, 13]);
    const script64 = btoa('param()\n$x = $env:TARGET\nWrite-Output "é ${x}"\n'.replace("é", "e"));
    const { record, created } = await s.importDocument({
      name: "Imported script",
      description: "from an upstream export",
      category: "application",
      type: "powershell",
      script: script64,
      script_encoding: "base64",
      timeout_seconds: 120,
      variables: [{
        name: "target",
        label: "Target",
        type: "string",
        required: true,
        description: "where",
      }],
      files: [{
        file_name: "helper.bin",
        size: fileData.length,
        mime_type: "application/octet-stream",
        data: btoa(String.fromCharCode(...fileData)),
      }],
      tags: ["imported"],
    }, "user_created");
    assert.equal(created, true);
    assert.equal(record.assembly_kind, "script");
    assert.equal(record.metadata.timeout_seconds, 120);
    const first = (await s.exportDocument(record.assembly_guid)).body;
    const doc = JSON.parse(first);
    assert.equal(doc.payload, atob(script64));
    assert.equal(doc.metadata.files[0].data, btoa(String.fromCharCode(...fileData)));

    const wf = await s.importDocument({
      tab_name: "Flow",
      nodes: [{ id: "a", data: { z: 1, a: 2 } }, { id: "b" }],
      edges: [{ id: "e", source: "a", target: "b" }],
    }, "user_created");
    assert.equal(wf.record.assembly_kind, "workflow");
    const wfFirst = (await s.exportDocument(wf.record.assembly_guid)).body;

    // Persist, then re-read everything from the database in a second engine (jsonb
    // reorders keys; the export must not change).
    await s.flush();
    await t.stop();
    t2 = await startTestEngine({
      plugins,
      db: t.db,
      env: { BOREALIS_ASSEMBLIES_CATALOG_DIR: await emptyCatalog() },
    });
    const s2 = t2.engine.service(assembliesService);
    assert.equal((await s2.exportDocument(record.assembly_guid)).body, first);
    assert.equal((await s2.exportDocument(wf.record.assembly_guid)).body, wfFirst);

    // Delete both, import the exports, export again.
    s2.remove(record.assembly_guid);
    s2.remove(wf.record.assembly_guid);
    await s2.flush();
    const back = await s2.importDocument(JSON.parse(first), "user_created");
    assert.equal(back.created, true);
    assert.equal((await s2.exportDocument(record.assembly_guid)).body, first);
    await s2.importDocument(JSON.parse(wfFirst), "user_created");
    assert.equal((await s2.exportDocument(wf.record.assembly_guid)).body, wfFirst);

    // Importing the export again updates in place (same GUID, version checked).
    const again = await s2.importDocument(JSON.parse(first), "user_created");
    assert.equal(again.created, false);
    assert.equal(again.record.version, 2);
    await rejects(s2.importDocument(JSON.parse(first), "user_created"), 409, "stale_version");
    await rejects(s2.importDocument(JSON.parse(first), "community"), 409, "assembly_exists");
  } finally {
    await t2?.stop();
    await t.close();
  }
});

Deno.test("assemblies: an invalid import lists every invalid field", async () => {
  const t = await start({ BOREALIS_ASSEMBLIES_MAX_BYTES: "2048" });
  try {
    const s = t.engine.service(assembliesService);
    const err = await rejects(
      s.importDocument({
        name: "",
        type: "cobol",
        script: "echo",
        timeout_seconds: -1,
        variables: [{ name: "1bad" }],
        files: [{ file_name: "../etc/passwd", data: "***" }],
      }, "user_created"),
      400,
      "invalid_assembly_document",
    );
    const fields = (err.details as Array<{ field: string }>).map((d) => d.field).sort();
    assert.deepEqual(fields, [
      "files.0.data",
      "files.0.file_name",
      "name",
      "timeout_seconds",
      "type",
      "variables.0.name",
    ]);
    await rejects(
      s.importDocument({ name: "x" }, "user_created"),
      400,
      "invalid_assembly_document",
    );
    await rejects(s.importDocument([1, 2], "user_created"), 400, "invalid_assembly_document");
    await rejects(
      s.importDocument({ name: "big", script: "x".repeat(3000) }, "user_created"),
      400,
      "invalid_assembly_document",
    );
    assert.equal(s.cache.size, 0);
  } finally {
    await t.close();
  }
});

Deno.test("assemblies: the official sync is idempotent and tracks added, changed and removed files", async () => {
  const catalog = await emptyCatalog();
  await Deno.mkdir(join(catalog, "Scripts", "Linux"), { recursive: true });
  await Deno.mkdir(join(catalog, "Workflows"), { recursive: true });
  const write = (path: string, doc: unknown) =>
    Deno.writeTextFile(join(catalog, path), JSON.stringify(doc, null, 2));
  await write("Scripts/Linux/a.json", { name: "A", type: "bash", script: "echo a\n" });
  await write("Scripts/Linux/b.json", { name: "B", type: "bash", script_lines: ["echo", "b"] });
  await write("Workflows/w.json", { name: "W", nodes: [], edges: [] });
  await write("Scripts/Linux/broken.json", { name: "no script" });
  await Deno.writeTextFile(join(catalog, "Scripts", "notes.txt"), "ignored");

  const t = await startTestEngine({
    plugins,
    env: { BOREALIS_ASSEMBLIES_CATALOG_DIR: catalog },
  });
  try {
    const s = t.engine.service(assembliesService);
    const guidA = await uuidV5("official:Scripts/Linux/a.json");
    const guidB = await uuidV5("official:Scripts/Linux/b.json");
    // The boot sync already ran (the catalog was new).
    assert.equal(s.cache.list({ domain: "official", limit: 10, offset: 0 }, false).total, 3);
    assert.equal((await s.detail(guidB)).payload, "echo\nb");

    const second = await s.syncOfficial();
    assert.deepEqual(
      [second.added.length, second.changed.length, second.removed.length, second.unchanged],
      [0, 0, 0, 3],
    );
    assert.deepEqual(second.skipped.map((k) => k.path), ["Scripts/Linux/broken.json"]);
    const before = await t.engine.sql`select * from assemblies.assemblies order by assembly_guid`;

    const third = await s.syncOfficial();
    assert.equal(third.unchanged, 3);
    const after = await t.engine.sql`select * from assemblies.assemblies order by assembly_guid`;
    assert.deepEqual(after, before, "a second run changes nothing");

    await write("Scripts/Linux/a.json", { name: "A", type: "bash", script: "echo A2\n" });
    await Deno.remove(join(catalog, "Workflows", "w.json"));
    await write("Scripts/Linux/c.json", { name: "C", type: "bash", script: "echo c\n" });
    const fourth = await s.syncOfficial();
    assert.deepEqual(fourth.changed, [guidA]);
    assert.equal(fourth.removed.length, 1);
    assert.deepEqual(fourth.added, [await uuidV5("official:Scripts/Linux/c.json")]);
    assert.equal(fourth.unchanged, 1);
    const a = s.get(guidA)!;
    assert.equal(a.version, 2);
    assert.equal((await s.detail(guidA)).payload, "echo A2\n");
    assert.equal(s.cache.list({ domain: "official", limit: 10, offset: 0 }, false).total, 3);

    // A deleted payload file of an unchanged entry is healed by the next sync.
    await Deno.remove(join(t.db.dataDir, "Assemblies", "Payloads", a.payload_guid), {
      recursive: true,
    });
    const fifth = await s.syncOfficial();
    assert.equal(fifth.repaired, 1);
    assert.equal((await s.detail(guidA)).payload, "echo A2\n");
  } finally {
    await t.close();
  }
});

// deno-lint-ignore-file no-explicit-any
/**
 * Assemblies over HTTP with real operators and sessions: the Dev Mode permission
 * matrix, every route, stale versions, the integrity listing, bad input, and two
 * engine instances sharing one database.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import assemblies, { assembliesService } from "../plugins/assemblies/mod.ts";
import { createOperator, type TestOperator } from "./helpers/operators.ts";
import { createTestDatabase, serverUrl } from "./helpers/test_db.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators, assemblies];

async function start(): Promise<TestEngine> {
  return await startTestEngine({
    plugins,
    env: { BOREALIS_ASSEMBLIES_CATALOG_DIR: await Deno.makeTempDir() },
  });
}

type Init = RequestInit & { json?: unknown };

async function call(t: TestEngine, who: TestOperator | null, path: string, init: Init = {}) {
  const res = await t.request(path, {
    ...init,
    headers: { ...(who?.headers ?? {}), ...(init.headers as Record<string, string> ?? {}) },
  });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, text, headers: res.headers };
}

const newScript = (domain: string, name = `s-${crypto.randomUUID().slice(0, 6)}`) => ({
  domain,
  display_name: name,
  assembly_kind: "script",
  assembly_type: "bash",
  payload: "echo hello\n",
  metadata: {
    variables: [{ name: "target", type: "string", description: "what to greet" }],
    timeout_seconds: 60,
  },
  tags: ["greeting"],
});

Deno.test("assemblies http: the Dev Mode permission matrix", async () => {
  const t = await start();
  try {
    const user = await createOperator(t, { role: "User" });
    const admin = await createOperator(t, { role: "Admin" });
    const dev = await createOperator(t, { role: "Admin", devMode: true });
    const expected: Record<string, Record<string, number>> = {
      user_created: { user: 201, admin: 201, dev: 201 },
      community: { user: 403, admin: 403, dev: 201 },
      official: { user: 403, admin: 403, dev: 201 },
    };
    const who = { user, admin, dev };
    const made: Record<string, string> = {};
    for (const [domain, byRole] of Object.entries(expected)) {
      for (const [role, status] of Object.entries(byRole)) {
        const r = await call(t, who[role as keyof typeof who], "/api/assemblies", {
          method: "POST",
          json: newScript(domain),
        });
        assert.equal(r.status, status, `${role} creating in ${domain}: ${r.text}`);
        if (status === 403) {
          assert.equal(r.body.error, "dev_mode_required");
          assert.match(
            r.body.message,
            role === "user" ? /Admin with Dev Mode/ : /dev-mode\/switch/,
          );
        } else made[`${domain}:${role}`] = r.body.assembly_guid;
      }
    }
    // Updates, deletes and clones follow the target domain's rule.
    const community = made["community:dev"]!;
    const upd = await call(t, admin, `/api/assemblies/${community}`, {
      method: "PUT",
      json: { version: 1, summary: "no" },
    });
    assert.equal(upd.status, 403);
    assert.equal(upd.body.error, "dev_mode_required");
    assert.equal(
      (await call(t, user, `/api/assemblies/${community}`, { method: "DELETE" })).status,
      403,
    );
    const cloneDown = await call(t, user, `/api/assemblies/${community}/clone`, {
      method: "POST",
      json: { target_domain: "user_created" },
    });
    assert.equal(cloneDown.status, 201, "anyone may copy into user_created");
    const cloneUp = await call(t, user, `/api/assemblies/${cloneDown.body.assembly_guid}/clone`, {
      method: "POST",
      json: { target_domain: "official" },
    });
    assert.equal(cloneUp.status, 403);
    const devUpd = await call(t, dev, `/api/assemblies/${community}`, {
      method: "PUT",
      json: { version: 1, summary: "yes" },
    });
    assert.equal(devUpd.status, 200);

    // Privileged operations need Admin + Dev Mode.
    for (const path of ["/api/assemblies/dev-mode/write", "/api/assemblies/official/sync"]) {
      assert.equal((await call(t, user, path, { method: "POST" })).status, 403);
      const a = await call(t, admin, path, { method: "POST" });
      assert.equal(a.status, 403);
      assert.equal(a.body.error, "dev_mode_required");
      assert.equal((await call(t, dev, path, { method: "POST" })).status, 200, path);
    }
    assert.equal((await call(t, null, "/api/assemblies")).status, 401);

    // The Dev Mode switch turns a plain Admin into one who may write official.
    assert.equal(
      (await call(t, user, "/api/assemblies/dev-mode/switch", {
        method: "POST",
        json: { enabled: true },
      })).status,
      403,
    );
    const on = await call(t, admin, "/api/assemblies/dev-mode/switch", {
      method: "POST",
      json: { enabled: true, ttl_seconds: 300 },
    });
    assert.equal(on.status, 200, on.text);
    assert.equal(on.body.dev_mode, true);
    assert.equal(
      (await call(t, admin, "/api/assemblies", { method: "POST", json: newScript("official") }))
        .status,
      201,
    );
    await call(t, admin, "/api/assemblies/dev-mode/switch", {
      method: "POST",
      json: { enabled: false },
    });
    assert.equal(
      (await call(t, admin, "/api/assemblies", { method: "POST", json: newScript("official") }))
        .status,
      403,
    );

    // Denials and privileged actions are in the audit log.
    const audit = await t.engine.sql<{ action: string; outcome: string; details: any }[]>`
      select action, outcome, details from audit_log where action like 'assemblies.%'`;
    assert.ok(audit.some((a) => a.action === "assemblies.create" && a.outcome === "denied"));
    assert.ok(
      audit.some((a) =>
        a.action === "assemblies.create" && a.outcome === "success" &&
        a.details.domain === "official" && a.details.dev_mode === true
      ),
    );
    assert.ok(audit.some((a) => a.action === "assemblies.dev_mode.switch"));
    assert.ok(audit.some((a) => a.action === "assemblies.official_sync"));
    assert.ok(audit.some((a) => a.action === "assemblies.flush"));
  } finally {
    await t.close();
  }
});

Deno.test("assemblies http: list, detail, update, delete, clone, import and export", async () => {
  const t = await start();
  try {
    const user = await createOperator(t, { role: "User" });
    const admin = await createOperator(t, { role: "Admin" });
    const guids: string[] = [];
    for (const name of ["Alpha disk", "Beta service", "Gamma disk"]) {
      const r = await call(t, user, "/api/assemblies", {
        method: "POST",
        json: newScript("user_created", name),
      });
      assert.equal(r.status, 201);
      assert.equal(r.body.source, "user_created");
      assert.equal(r.body.is_dirty, true);
      assert.equal(r.body.payload_guid, undefined, "payload_guid is for admins");
      guids.push(r.body.assembly_guid);
    }
    const wf = await call(t, user, "/api/assemblies", {
      method: "POST",
      json: {
        display_name: "Flow",
        assembly_kind: "workflow",
        payload: { nodes: [{ id: "n" }], edges: [] },
      },
    });
    assert.equal(wf.status, 201, wf.text);

    const list = await call(t, user, "/api/assemblies?q=disk&kind=script&limit=1");
    assert.equal(list.status, 200);
    assert.equal(list.body.total, 2);
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].display_name, "Alpha disk");
    assert.equal(list.body.queue.dirty_count, 4);
    const page2 = await call(t, user, "/api/assemblies?q=disk&limit=1&offset=1");
    assert.equal(page2.body.items[0].display_name, "Gamma disk");
    const asAdmin = await call(t, admin, "/api/assemblies?domain=user_created");
    assert.equal(asAdmin.body.total, 4);
    assert.ok(asAdmin.body.items.every((i: any) => typeof i.payload_guid === "string"));
    assert.equal((await call(t, user, "/api/assemblies?domain=official")).body.total, 0);

    const detail = await call(t, user, `/api/assemblies/${guids[0]}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.payload, "echo hello\n");
    assert.equal(detail.body.state.is_dirty, true);
    assert.equal(detail.body.metadata.variables[0].name, "target");
    const wfDetail = await call(t, user, `/api/assemblies/${wf.body.assembly_guid}`);
    assert.deepEqual(wfDetail.body.payload, { nodes: [{ id: "n" }], edges: [] });
    assert.equal(wfDetail.body.assembly_type, "workflow");

    const upd = await call(t, user, `/api/assemblies/${guids[0]}`, {
      method: "PUT",
      json: { version: 1, display_name: "Alpha disk v2", payload: "echo v2\n" },
    });
    assert.equal(upd.status, 200, upd.text);
    assert.equal(upd.body.version, 2);
    const stale = await call(t, user, `/api/assemblies/${guids[0]}`, {
      method: "PUT",
      json: { version: 1, summary: "stale" },
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error, "stale_version");
    assert.equal(stale.body.details.current_version, 2);

    // Write now (Dev Mode), then the pill clears.
    const dev = await createOperator(t, { role: "Admin", devMode: true });
    const flushed = await call(t, dev, "/api/assemblies/dev-mode/write", { method: "POST" });
    assert.equal(flushed.status, 200);
    assert.equal(flushed.body.result.persisted, 4);
    assert.equal(flushed.body.queue.dirty_count, 0);
    assert.equal((await call(t, user, `/api/assemblies/${guids[0]}`)).body.is_dirty, false);

    const del = await call(t, user, `/api/assemblies/${guids[1]}`, { method: "DELETE" });
    assert.equal(del.status, 202);
    assert.equal(del.body.status, "queued");
    assert.equal(del.body.queue.pending_deletes, 1);
    assert.equal((await call(t, user, `/api/assemblies/${guids[1]}`)).status, 404);
    assert.equal(
      (await call(t, user, `/api/assemblies/${guids[2]}?version=9`, { method: "DELETE" })).status,
      409,
    );

    const clone = await call(t, user, `/api/assemblies/${guids[0]}/clone`, {
      method: "POST",
      json: { target_domain: "user_created" },
    });
    assert.equal(clone.status, 201);
    assert.notEqual(clone.body.assembly_guid, guids[0]);
    assert.equal(
      (await call(t, user, `/api/assemblies/${clone.body.assembly_guid}`)).body.payload,
      "echo v2\n",
    );

    const exp = await call(t, user, `/api/assemblies/${guids[0]}/export`);
    assert.equal(exp.status, 200);
    assert.match(exp.headers.get("content-disposition")!, /Alpha_disk_v2\.json/);
    assert.equal(exp.body.payload, "echo v2\n");
    assert.equal(exp.body.assembly_guid, guids[0]);
    const imported = await call(t, user, "/api/assemblies/import", {
      method: "POST",
      json: { ...exp.body, assembly_guid: undefined, display_name: "Copy of alpha" },
    });
    assert.equal(imported.status, 201, imported.text);
    const reexport = await call(t, user, `/api/assemblies/${imported.body.assembly_guid}/export`);
    assert.equal(reexport.body.payload, "echo v2\n");
    const updatedByImport = await call(t, user, "/api/assemblies/import", {
      method: "POST",
      json: exp.body,
    });
    assert.equal(updatedByImport.status, 200, "same GUID and version: an update");

    const badImport = await call(t, user, "/api/assemblies/import", {
      method: "POST",
      json: { name: 5, variables: "x", nodes: [] },
    });
    assert.equal(badImport.status, 400);
    assert.equal(badImport.body.error, "invalid_assembly_document");
    assert.deepEqual(badImport.body.details.map((d: any) => d.field).sort(), ["name", "variables"]);
    const intoOfficial = await call(t, user, "/api/assemblies/import?domain=official", {
      method: "POST",
      json: { name: "x", script: "echo" },
    });
    assert.equal(intoOfficial.status, 403);

    // The OpenAPI document lists the routes.
    const doc = await (await t.request("/api/openapi.json")).json();
    for (
      const p of [
        "/api/assemblies",
        "/api/assemblies/{guid}",
        "/api/assemblies/{guid}/clone",
        "/api/assemblies/{guid}/export",
        "/api/assemblies/import",
        "/api/assemblies/integrity",
        "/api/assemblies/dev-mode/switch",
        "/api/assemblies/dev-mode/write",
        "/api/assemblies/official/sync",
      ]
    ) assert.ok(doc.paths[p], p);
  } finally {
    await t.close();
  }
});

Deno.test("assemblies http: integrity listing and payload errors", async () => {
  const t = await start();
  try {
    const user = await createOperator(t, { role: "User" });
    const admin = await createOperator(t, { role: "Admin" });
    const a = await call(t, user, "/api/assemblies", {
      method: "POST",
      json: newScript("user_created"),
    });
    const b = await call(t, user, "/api/assemblies", {
      method: "POST",
      json: newScript("user_created"),
    });
    const s = t.engine.service(assembliesService);
    const pa = s.get(a.body.assembly_guid)!.payload_guid;
    const pb = s.get(b.body.assembly_guid)!.payload_guid;
    const dir = join(t.db.dataDir, "Assemblies", "Payloads");
    await Deno.remove(join(dir, pa), { recursive: true });
    await Deno.writeTextFile(join(dir, pb, "payload.sh"), "rm -rf /\n");

    assert.equal((await call(t, user, "/api/assemblies/integrity")).status, 403);
    const report = await call(t, admin, "/api/assemblies/integrity");
    assert.equal(report.status, 200);
    assert.equal(report.body.checked, 2);
    const byGuid = Object.fromEntries(report.body.problems.map((p: any) => [p.assembly_guid, p]));
    assert.equal(byGuid[a.body.assembly_guid].problem, "missing");
    assert.equal(byGuid[b.body.assembly_guid].problem, "corrupt");
    assert.match(byGuid[b.body.assembly_guid].payload_file, /^Payloads\/.+\/payload\.sh$/);

    const missing = await call(t, user, `/api/assemblies/${a.body.assembly_guid}`);
    assert.equal(missing.status, 409);
    assert.equal(missing.body.error, "payload_missing");
    assert.match(missing.body.message, /integrity/);
    const corrupt = await call(t, user, `/api/assemblies/${b.body.assembly_guid}/export`);
    assert.equal(corrupt.status, 409);
    assert.equal(corrupt.body.error, "payload_corrupt");
    // The list still works and the entries can be repaired by saving new content.
    assert.equal((await call(t, user, "/api/assemblies")).body.total, 2);
    const fixed = await call(t, user, `/api/assemblies/${a.body.assembly_guid}`, {
      method: "PUT",
      json: { version: 1, payload: "echo fixed\n" },
    });
    assert.equal(fixed.status, 200);
    assert.equal((await call(t, admin, "/api/assemblies/integrity")).body.problems.length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("assemblies http: bad input is a 4xx, never a 500", async () => {
  const t = await start();
  try {
    const user = await createOperator(t, { role: "User" });
    const r = await call(t, user, "/api/assemblies", {
      method: "POST",
      json: newScript("user_created"),
    });
    const guid = r.body.assembly_guid;
    const cases: Array<[string, Init]> = [
      ["/api/assemblies/not-a-guid", {}],
      ["/api/assemblies/00000000-0000-4000-8000-000000000000", {}],
      ["/api/assemblies?limit=0", {}],
      ["/api/assemblies?domain=mine", {}],
      ["/api/assemblies?offset=-1", {}],
      ["/api/assemblies", { method: "POST", json: {} }],
      ["/api/assemblies", { method: "POST", json: [] }],
      ["/api/assemblies", { method: "POST", json: { ...newScript("user_created"), extra: 1 } }],
      ["/api/assemblies", { method: "POST", json: { ...newScript("user_created"), payload: 5 } }],
      ["/api/assemblies", { method: "POST", json: { ...newScript("user_created"), payload: {} } }],
      ["/api/assemblies", {
        method: "POST",
        json: { ...newScript("user_created"), assembly_type: "workflow" },
      }],
      ["/api/assemblies", {
        method: "POST",
        json: { ...newScript("user_created"), payload_encoding: "base64", payload: "%%%" },
      }],
      ["/api/assemblies", {
        method: "POST",
        json: { ...newScript("user_created"), metadata: { variables: [{ name: "" }] } },
      }],
      ["/api/assemblies", {
        method: "POST",
        json: { ...newScript("user_created"), assembly_guid: guid },
      }],
      ["/api/assemblies", {
        method: "POST",
        body: "{nope",
        headers: { "content-type": "application/json" },
      }],
      [`/api/assemblies/${guid}`, { method: "PUT", json: { summary: "no version" } }],
      [`/api/assemblies/${guid}`, { method: "PUT", json: { version: "1" } }],
      [`/api/assemblies/${guid}`, { method: "PUT", json: { version: 1, domain: "official" } }],
      [`/api/assemblies/${guid}/clone`, { method: "POST", json: { target_domain: "nowhere" } }],
      [`/api/assemblies/${guid}/clone`, {
        method: "POST",
        json: { target_domain: "user_created", new_assembly_guid: guid },
      }],
      ["/api/assemblies/import", { method: "POST", json: { script: 1 } }],
      ["/api/assemblies/import", { method: "POST", json: { nodes: "x", edges: 1 } }],
      ["/api/assemblies/import", {
        method: "POST",
        json: { name: "b64", script: "!!!!", script_encoding: "base64" },
      }],
      ["/api/assemblies/import", {
        method: "POST",
        json: { name: "f", script: "x", files: [{ file_name: "a", data: "AAAA", size: 9 }] },
      }],
      ["/api/assemblies/import?domain=x", { method: "POST", json: {} }],
      ["/api/assemblies/dev-mode/switch", { method: "POST", json: { enabled: "yes" } }],
    ];
    for (const [path, init] of cases) {
      const res = await call(t, user, path, init);
      assert.ok(
        res.status >= 400 && res.status < 500,
        `${path} ${JSON.stringify(init.json)} → ${res.status} ${res.text}`,
      );
      assert.equal(typeof res.body.error, "string");
    }
  } finally {
    await t.close();
  }
});

Deno.test({
  name: "assemblies http: two engine instances see each other's changes after a flush",
  ignore: !serverUrl,
  async fn() {
    const db = await createTestDatabase();
    const env = { BOREALIS_ASSEMBLIES_CATALOG_DIR: await Deno.makeTempDir() };
    const a = await startTestEngine({ plugins, db, env });
    const b = await startTestEngine({ plugins, db, env });
    try {
      assert.ok(a.engine.events.bridged && b.engine.events.bridged);
      const ua = await createOperator(a, { role: "User" });
      const ub = await createOperator(b, { role: "User" });
      const created = await call(a, ua, "/api/assemblies", {
        method: "POST",
        json: newScript("user_created", "Shared"),
      });
      const guid = created.body.assembly_guid;
      assert.equal((await call(b, ub, `/api/assemblies/${guid}`)).status, 404, "not flushed yet");
      await a.clock.advance(60_000);
      await a.engine.tasks.idle();
      const seen = await waitFor(async () =>
        (await call(b, ub, `/api/assemblies/${guid}`)).status === 200
      );
      assert.ok(seen, "instance b reloaded the new assembly");
      const detail = await call(b, ub, `/api/assemblies/${guid}`);
      assert.equal(detail.body.payload, "echo hello\n");
      assert.equal(detail.body.is_dirty, false);

      // b edits; a sees the new version after b's flush.
      const upd = await call(b, ub, `/api/assemblies/${guid}`, {
        method: "PUT",
        json: { version: 1, display_name: "Shared v2" },
      });
      assert.equal(upd.status, 200);
      await b.engine.service(assembliesService).flush();
      assert.ok(
        await waitFor(async () =>
          (await call(a, ua, `/api/assemblies/${guid}`)).body.display_name === "Shared v2"
        ),
      );
      // a stale edit on a is refused with 409 now that a has reloaded.
      const stale = await call(a, ua, `/api/assemblies/${guid}`, {
        method: "PUT",
        json: { version: 1, summary: "late" },
      });
      assert.equal(stale.status, 409);

      // Deletes cross too.
      await call(a, ua, `/api/assemblies/${guid}`, { method: "DELETE" });
      await a.engine.service(assembliesService).flush();
      assert.ok(
        await waitFor(async () => (await call(b, ub, `/api/assemblies/${guid}`)).status === 404),
      );
    } finally {
      await b.stop();
      await a.stop();
      await db.drop();
    }
  },
});

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

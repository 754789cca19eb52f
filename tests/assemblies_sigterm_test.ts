/**
 * A real engine process (`deno run -A main.ts start`) with staged, unflushed assembly
 * changes gets SIGTERM: every change must be in the database afterwards.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ManualClock } from "../core/clock.ts";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import assemblies, { assembliesService } from "../plugins/assemblies/mod.ts";
import { createOperator } from "./helpers/operators.ts";
import { createTestDatabase } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators, assemblies];
const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("assemblies: SIGTERM to a real engine process writes every staged change", async () => {
  const db = await createTestDatabase();
  try {
    // Create an operator with a session first (the child runs on the real clock).
    const setup = await startTestEngine({ plugins, db, clock: new ManualClock(Date.now()) });
    const admin = await createOperator(setup, { role: "Admin" });
    const kept = await setup.engine.service(assembliesService).create({
      domain: "user_created",
      display_name: "Persisted before",
      assembly_kind: "script",
      assembly_type: "bash",
      payload: "echo before\n",
    });
    await setup.engine.service(assembliesService).flush();
    await setup.stop();

    const port = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "start"],
      env: {
        ...db.env,
        BOREALIS_PORT: String(port),
        BOREALIS_HOST: "127.0.0.1",
        BOREALIS_PLUGINS: "aegis,operators,assemblies",
        // Long enough that only the shutdown flush can write the changes.
        BOREALIS_ASSEMBLIES_FLUSH_SECONDS: "86400",
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]);
    const base = `http://127.0.0.1:${port}`;
    let up = false;
    for (let i = 0; i < 300 && !up; i++) {
      try {
        up = (await fetch(`${base}/health`)).ok;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(up, "the engine process came up");

    const post = async (path: string, method: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { ...admin.headers, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = await res.json();
      return { status: res.status, json };
    };
    const created: string[] = [];
    for (let i = 0; i < 25; i++) {
      const r = await post("/api/assemblies", "POST", {
        display_name: `Staged ${i}`,
        assembly_kind: "script",
        assembly_type: "bash",
        payload: `echo ${i}\n`,
      });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      created.push(r.json.assembly_guid);
    }
    const upd = await post(`/api/assemblies/${created[0]}`, "PUT", {
      version: 1,
      display_name: "Staged 0 renamed",
    });
    assert.equal(upd.status, 200);
    assert.equal((await post(`/api/assemblies/${kept.assembly_guid}`, "DELETE")).status, 202);
    const list = await post("/api/assemblies?domain=user_created&limit=100", "GET");
    assert.equal(list.json.queue.dirty_count, 26);

    child.kill("SIGTERM");
    const status = await child.status;
    const [, stderr] = await output;
    assert.equal(status.code, 0, stderr.slice(-2000));
    assert.match(stderr, /shutdown flush: 25 written, 1 deleted, 0 failed/);

    const check = await startTestEngine({ plugins, db, clock: new ManualClock(Date.now()) });
    try {
      const rows = await check.engine.sql<{ assembly_guid: string; display_name: string }[]>`
        select assembly_guid::text, display_name from assemblies.assemblies
        where domain = 'user_created' order by display_name`;
      assert.equal(rows.length, 25);
      assert.deepEqual(new Set(rows.map((r) => r.assembly_guid)), new Set(created));
      assert.ok(rows.some((r) => r.display_name === "Staged 0 renamed"));
      const s = check.engine.service(assembliesService);
      assert.equal((await s.detail(created[7]!)).payload, "echo 7\n");
      assert.deepEqual(s.cache.problems(), []);
    } finally {
      await check.stop();
    }
  } finally {
    await db.drop();
  }
});

/**
 * Plugins from outside the repository: `BOREALIS_PLUGINS` names a module next to built-in
 * names, the engine loads it with a dynamic import and checks its contract version. The
 * example plugin is copied, unchanged, to a folder outside the repository and loaded from
 * there, in process and through the CLI.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadPlugins, orderPlugins, PluginGraphError } from "../core/engine.ts";
import { PLUGIN_API_VERSION } from "../core/plugin.ts";
import { createTestDatabase, startTestEngine } from "../core/testing.ts";
import { builtinPlugins, optionalPlugins } from "../plugins/mod.ts";
import builtinExample from "../plugins/example/mod.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const EXAMPLE = `${ROOT}plugins/example`;

/** A copy of the example plugin's folder (sources and migrations) outside the repository. */
async function copyExample(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "borealis-external-" });
  const { success } = await new Deno.Command("cp", { args: ["-r", EXAMPLE, `${dir}/example`] })
    .output();
  assert.ok(success);
  assert.ok(!`${dir}/`.startsWith(ROOT), "the copy lives outside the repository");
  return `${dir}/example`;
}

Deno.test("external plugins: the example loads from a folder outside the repository and works", async () => {
  const dir = await copyExample();
  try {
    const plugins = await loadPlugins(
      [`${dir}/mod.ts`],
      builtinPlugins,
      optionalPlugins,
    );
    assert.deepEqual(plugins.map((p) => p.name), ["example"]);
    assert.notEqual(plugins[0], builtinExample, "the copy, not the built-in module");
    const t = await startTestEngine({ plugins });
    try {
      const created = await t.request("/api/example/notes", {
        method: "POST",
        json: { text: "from outside" },
      });
      assert.equal(created.status, 201);
      const list = await (await t.request("/api/example/notes")).json();
      assert.deepEqual(list.items.map((n: { text: string }) => n.text), ["from outside"]);
      const [status] = await t.engine.sql<{ version: number }[]>`
        select version from schema_migrations where owner = 'example'`;
      assert.equal(status?.version, 1, "its migrations ran from the copied folder");
    } finally {
      await t.close();
    }
  } finally {
    await Deno.remove(dir.replace(/\/example$/, ""), { recursive: true });
  }
});

Deno.test("external plugins: a wrong contract version, a module without a plugin, a built-in's name are refused clearly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "borealis-external-" });
  try {
    const plugin = (name: string, extra: string) =>
      `import { definePlugin } from "borealis/core/plugin.ts";\n` +
      `export default { ...definePlugin({ name: "${name}", setup() {} }), ${extra} };\n`;
    await Deno.writeTextFile(`${dir}/future.ts`, plugin("future", "apiVersion: 999"));
    await Deno.writeTextFile(`${dir}/nothing.ts`, `export const x = 1;\n`);
    await Deno.writeTextFile(`${dir}/impostor.ts`, plugin("inventory", ""));

    const future = await loadPlugins([`${dir}/future.ts`], builtinPlugins);
    assert.throws(
      () => orderPlugins(future),
      (e: Error) =>
        e instanceof PluginGraphError &&
        e.message.includes("plugin future was written for plugin contract version 999") &&
        e.message.includes(`speaks version ${PLUGIN_API_VERSION}`),
    );
    await assert.rejects(
      loadPlugins([`${dir}/nothing.ts`], builtinPlugins),
      /nothing\.ts has no plugin as its default export/,
    );
    await assert.rejects(
      loadPlugins([`${dir}/impostor.ts`], builtinPlugins),
      /impostor\.ts is a plugin named inventory, the name of a built-in plugin/,
    );
    await assert.rejects(
      loadPlugins([`${dir}/missing.ts`], builtinPlugins),
      /cannot load plugin module .*missing\.ts/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("external plugins: the CLI loads a plugin named by its path in BOREALIS_PLUGINS", async () => {
  const dir = await copyExample();
  const db = await createTestDatabase();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "plugins", "--json"],
      cwd: ROOT,
      env: { ...db.env, BOREALIS_PLUGINS: `${dir}/mod.ts` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const loaded = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(loaded.map((p: { name: string }) => p.name), ["example"]);
    assert.ok(
      loaded[0].routes.some((r: { path: string }) => r.path === "/api/example/notes"),
      JSON.stringify(loaded[0].routes),
    );
  } finally {
    await db.drop();
    await Deno.remove(dir.replace(/\/example$/, ""), { recursive: true });
  }
});

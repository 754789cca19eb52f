/**
 * The plugin layout of docs/plugins.md, checked on the sources: plugins meet only at
 * `mod.ts` / `api.ts`, the kernel imports no plugin, the OpenAPI error helpers have one
 * home, and routes are installed by one verb.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) {
      // The browser console's own sources import among themselves under ui/.
      if (["ui", "node_modules", "migrations"].includes(e.name)) continue;
      yield* sources(`${path}/`);
    } else if (e.name.endsWith(".ts")) yield path;
  }
}

const rel = (path: string) => path.slice(ROOT.length);
const IMPORT = /^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm;

Deno.test("layout: a plugin reaches another plugin only through its mod.ts or api.ts", () => {
  const bad: string[] = [];
  for (const file of sources(`${ROOT}plugins/`)) {
    const own = rel(file).split("/")[1];
    for (const m of Deno.readTextFileSync(file).matchAll(IMPORT)) {
      const spec = m[1]!;
      if (!spec.startsWith(".")) continue;
      const target = rel(fileURLToPath(new URL(spec, `file://${file}`)));
      const [top, plugin, ...rest] = target.split("/");
      if (top !== "plugins" || plugin === own || rest.length === 0) continue;
      if (rest.length === 1 && (rest[0] === "mod.ts" || rest[0] === "api.ts")) continue;
      // A plugin's test harnesses (testing/) are for other plugins' tests.
      if (rest[0] === "testing" && /(_test\.ts|\/testing\/)/.test(file)) continue;
      bad.push(`${rel(file)} imports ${target}`);
    }
  }
  assert.deepEqual(bad, [], bad.join("\n"));
});

Deno.test("layout: the kernel imports no plugin (its own tests may load the example)", () => {
  const bad: string[] = [];
  for (const file of sources(`${ROOT}core/`)) {
    if (file.endsWith("_test.ts")) continue;
    for (const m of Deno.readTextFileSync(file).matchAll(IMPORT)) {
      if (m[1]!.includes("plugins/")) bad.push(`${rel(file)} imports ${m[1]}`);
    }
  }
  assert.deepEqual(bad, [], bad.join("\n"));
});

Deno.test("layout: core/openapi.ts is the only home of the error body; routes are register…Routes", () => {
  const bad: string[] = [];
  for (const file of sources(`${ROOT}plugins/`)) {
    const text = Deno.readTextFileSync(file);
    if (/\.openapi\("[A-Za-z]*Error"\)|\bErrorBody\s*=\s*z\./.test(text)) {
      bad.push(`${rel(file)} defines its own error body (use core/openapi.ts)`);
    }
    for (const m of text.matchAll(/export (?:async )?function (install[A-Za-z]*)\(/g)) {
      bad.push(`${rel(file)} exports ${m[1]} (route installers are register…)`);
    }
  }
  assert.deepEqual(bad, [], bad.join("\n"));
});

/**
 * The console plugin's HTTP surface: the app at `/`, deep links falling back to
 * index.html, hash-named assets with long caching, the agreed Content Security Policy on
 * the HTML, JSON 404s kept for the API, and `BOREALIS_STATIC_ROOT` taking over.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import consolePlugin, { CONSOLE_CSP } from "../plugins/console/mod.ts";
import { startTestEngine } from "./helpers/test_engine.ts";
import { consoleCacheDir } from "./helpers/console.ts";

const EXPECTED_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

Deno.test("console: the SPA at /, deep links, assets, CSP and API 404s", async () => {
  const t = await startTestEngine({
    plugins: [consolePlugin],
    env: { BOREALIS_CONSOLE_CACHE_DIR: consoleCacheDir() },
  });
  try {
    assert.equal(CONSOLE_CSP, EXPECTED_CSP);
    const root = await t.request("/");
    assert.equal(root.status, 200);
    assert.equal(root.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(root.headers.get("content-security-policy"), EXPECTED_CSP);
    assert.equal(root.headers.get("cache-control"), "no-cache");
    assert.equal(root.headers.get("x-content-type-options"), "nosniff");
    const html = await root.text();
    assert.match(html, /<div id="root"><\/div>/);
    // No inline script: the only script is the hash-named bundle.
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1);
    assert.equal(scripts[0]![2]!.trim(), "");
    const src = /src="([^"]+)"/.exec(scripts[0]![1]!)![1]!;
    assert.match(src, /^\/assets\/main-[0-9a-f]{12}\.js$/);

    for (const deep of ["/devices/0E9A1B7C-0000-4000-8000-000000000001?tab=activity", "/sites"]) {
      const res = await t.request(deep);
      assert.equal(res.status, 200, deep);
      assert.equal(res.headers.get("content-security-policy"), EXPECTED_CSP);
      assert.equal(await res.text(), html);
    }

    const js = await t.request(src, { headers: { "accept-encoding": "gzip" } });
    assert.equal(js.status, 200);
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(js.headers.get("content-encoding"), "gzip");
    const plain = await t.request(src);
    assert.equal(plain.headers.get("content-encoding"), null);
    const code = await plain.text();
    assert.ok(code.length > 1000);
    assert.ok(!/\beval\(/.test(code), "the bundle must not call eval (CSP has no unsafe-eval)");

    // The stylesheets the sources import (the terminal's) are one hash-named file.
    const css = /<link rel="stylesheet" href="([^"]+)">/.exec(html)?.[1];
    assert.match(css ?? "", /^\/assets\/main-[0-9a-f]{12}\.css$/);
    const sheet = await t.request(css!);
    assert.equal(sheet.status, 200);
    assert.equal(sheet.headers.get("content-type"), "text/css; charset=utf-8");
    assert.match(await sheet.text(), /\.xterm/);

    const head = await t.request("/", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");

    const missing = await t.request("/assets/main-000000000000.js");
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error, "not_found");

    // The API keeps its JSON 404s; the console never answers under /api.
    for (const path of ["/api/nope", "/api"]) {
      const res = await t.request(path);
      assert.equal(res.status, 404, path);
      assert.equal((await res.json()).error, "not_found");
    }
    assert.equal((await t.request("/health")).status, 200);
    const post = await t.request("/devices", { method: "POST" });
    assert.equal(post.status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("console: BOREALIS_STATIC_ROOT overrides the built console", async () => {
  const dir = await Deno.makeTempDir({ prefix: "console-static-" });
  await Deno.writeTextFile(join(dir, "index.html"), "<p>custom console</p>");
  const t = await startTestEngine({
    plugins: [consolePlugin],
    env: { BOREALIS_STATIC_ROOT: dir, BOREALIS_CONSOLE_CACHE_DIR: consoleCacheDir() },
  });
  try {
    for (const path of ["/", "/devices"]) {
      const res = await t.request(path);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "<p>custom console</p>");
    }
    assert.equal((await t.request("/api/nope")).status, 404);
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

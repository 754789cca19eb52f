/**
 * Cross-site WebSocket hijacking, in a real Chromium: a page on another port of the
 * same host (same-site, so the browser attaches the operator's Lax cookie) opens
 * `/api/ws`; the engine must refuse it, while the same page served from the engine's own
 * origin is welcomed. Skipped where no Chromium is installed (BOREALIS_CHROMIUM, else
 * /usr/bin/chromium).
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import realtime from "../plugins/realtime/mod.ts";
import { identityPlugins } from "./agent/harness.ts";
import { createOperator } from "./helpers/operators.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const executable = Deno.env.get("BOREALIS_CHROMIUM") ?? "/usr/bin/chromium";
const hasChromium = await Deno.stat(executable).then(() => true, () => false);
if (!hasChromium) console.warn(`no Chromium at ${executable}: the real-browser test is skipped`);

/** The script both pages run: open the operator socket, report what happened. */
const PROBE = `
window.result = new Promise((resolve) => {
  const ws = new WebSocket("ws://" + window.ENGINE + "/api/ws");
  const seen = [];
  ws.onmessage = (e) => seen.push(JSON.parse(e.data).type);
  ws.onclose = (e) => resolve({ opened: seen.length > 0, frames: seen, code: e.code });
  setTimeout(() => { ws.close(); }, 3000);
});`;

Deno.test({
  name:
    "chromium: a page on another origin cannot open the operator socket with the cookie; the engine's own page can",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "borealis-browser-" });
    const t = await startTestEngine({
      plugins: [...identityPlugins, realtime],
      env: { BOREALIS_STATIC_ROOT: root },
    });
    const evil = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
      new Response(
        `<!doctype html><script>window.ENGINE = ${JSON.stringify(engineHost)};${PROBE}</script>`,
        { headers: { "content-type": "text/html" } },
      ));
    let engineHost = "";
    const browser = await chromium.launch({ executablePath: executable, args: ["--no-sandbox"] });
    try {
      const { port } = await t.engine.listen();
      engineHost = `127.0.0.1:${port}`;
      // The engine's own page: the strict CSP allows only its own scripts.
      await Deno.writeTextFile(`${root}/probe.js`, `window.ENGINE = location.host;${PROBE}`);
      await Deno.writeTextFile(
        `${root}/index.html`,
        `<!doctype html><script src="/probe.js"></script>`,
      );
      const op = await createOperator(t, { role: "Admin" });
      const context = await browser.newContext();
      await context.addCookies([{
        name: "borealis_session",
        value: op.headers.Authorization!.slice("Bearer ".length),
        url: `http://${engineHost}`,
        httpOnly: true,
        sameSite: "Lax",
      }]);
      const page = await context.newPage();

      await page.goto(`http://127.0.0.1:${evil.addr.port}/`);
      const hijack = await page.evaluate(() =>
        (globalThis as unknown as { result: unknown }).result
      ) as {
        opened: boolean;
        frames: string[];
      };
      assert.equal(hijack.opened, false, `the other origin got frames: ${hijack.frames}`);

      await page.goto(`http://${engineHost}/`);
      const own = await page.evaluate(() =>
        (globalThis as unknown as { result: unknown }).result
      ) as {
        opened: boolean;
        frames: string[];
      };
      assert.deepEqual(own.frames.slice(0, 1), ["welcome"], "the engine's own page is welcomed");
    } finally {
      await browser.close();
      await evil.shutdown();
      await t.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});

/** The engine's own page: open the socket, sign out with the page's own POST, report. */
const SIGN_OUT = `
window.result = new Promise((resolve) => {
  const ws = new WebSocket("ws://" + location.host + "/api/ws");
  const seen = [];
  let signedOut;
  ws.onmessage = (e) => {
    seen.push(JSON.parse(e.data).type);
    if (seen.length === 1) {
      signedOut = (async () => {
        const r = await fetch("/api/auth/logout", { method: "POST" });
        const me = await fetch("/api/auth/me");
        return { status: r.status, me: me.status };
      })();
    }
  };
  // The close may come before the sign-out's answer: wait for both.
  ws.onclose = async (e) =>
    resolve({ frames: seen, code: e.code, logout: await (signedOut ?? Promise.resolve(null)) });
  setTimeout(() => ws.close(), 20000);
});`;

Deno.test({
  name:
    "chromium: signing out from the engine's own page (a same-origin POST the Origin rule accepts) closes that session's socket with 4401",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "borealis-browser-" });
    const t = await startTestEngine({
      plugins: [...identityPlugins, realtime],
      env: { BOREALIS_STATIC_ROOT: root },
    });
    const browser = await chromium.launch({ executablePath: executable, args: ["--no-sandbox"] });
    try {
      const { port } = await t.engine.listen();
      const engine = `http://127.0.0.1:${port}`;
      await Deno.writeTextFile(`${root}/sign_out.js`, SIGN_OUT);
      await Deno.writeTextFile(
        `${root}/index.html`,
        `<!doctype html><script src="/sign_out.js"></script>`,
      );
      const op = await createOperator(t, { role: "Admin" });
      const context = await browser.newContext();
      await context.addCookies([{
        name: "borealis_session",
        value: op.headers.Authorization!.slice("Bearer ".length),
        url: engine,
        httpOnly: true,
        sameSite: "Lax",
      }]);
      const page = await context.newPage();
      await page.goto(`${engine}/`);
      const seen = await page.evaluate(() =>
        (globalThis as unknown as { result: unknown }).result
      ) as { frames: string[]; code: number; logout: { status: number; me: number } | null };
      assert.deepEqual(seen.frames.slice(0, 1), ["welcome"], JSON.stringify(seen));
      assert.ok(
        seen.logout && seen.logout.status < 300,
        `the page's own sign-out was accepted: ${JSON.stringify(seen)}`,
      );
      assert.equal(seen.logout?.me, 401, "the session has ended");
      assert.equal(seen.code, 4401, `the socket closed with the session: ${JSON.stringify(seen)}`);
    } finally {
      await browser.close();
      await t.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});

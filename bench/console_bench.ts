/**
 * The console's devices grid with 20,000 devices, measured in a real Chromium: a cold load
 * until the first rows show (and first contentful paint), a column filter (request and
 * render, after the grid's 300 ms typing debounce), a jump to row 10,000 (a block fetched
 * and rendered), scrolling within loaded rows, and the bundle size — next to
 * `GET /health`'s latency from the same run. Devices are seeded with SQL (a bench may
 * seed directly), not enrolled by 20,000 agents.
 *
 * `deno task bench console` (BENCH_DEVICES changes the count).
 */
import { chromium } from "playwright-core";
import { Engine } from "../core/engine.ts";
import { builtinPlugins, optionalPlugins } from "../plugins/mod.ts";
import { inventoryKey } from "../plugins/inventory/mod.ts";
import { operatorsKey } from "../plugins/operators/mod.ts";
import { createTestDatabase } from "../tests/helpers/test_db.ts";
import { consoleCacheDir } from "../tests/helpers/console.ts";
import { browserMissing, CHROMIUM } from "../tests/helpers/console_browser.ts";

const DEVICES = Number(Deno.env.get("BENCH_DEVICES") ?? 20_000);
const missing = browserMissing();
if (missing) {
  console.log(`console bench skipped: ${missing}`);
  Deno.exit(0);
}

/** The grid's vertically scrolling element (found by what scrolls, not by class name). */
const SCROLLER = `[...document.querySelectorAll(".ag-root-wrapper *")]
  .find((e) => e.scrollHeight > e.clientHeight + 1000 && getComputedStyle(e).overflowY !== "hidden")`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

const db = await createTestDatabase();
const engine = await Engine.create({
  env: {
    ...db.env,
    BOREALIS_HOST: "127.0.0.1",
    BOREALIS_PORT: "0",
    BOREALIS_CONSOLE_CACHE_DIR: consoleCacheDir(),
    BOREALIS_LOG_RETENTION_DAYS: "1",
  },
  available: { builtin: builtinPlugins, optional: optionalPlugins },
});
const { port } = await engine.listen();
const base = `http://localhost:${port}`;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  // --- seed: ten sites, 20,000 devices spread over them and over the three states ------
  const inventory = engine.service(inventoryKey);
  const sites: number[] = [];
  for (let i = 1; i <= 10; i++) sites.push((await inventory.createSite(`Site ${i}`, "")).id);
  const t0 = performance.now();
  await engine.sql`
    insert into devices (guid, hostname, description, site_id, created_at, last_seen,
                         operating_system, last_user, device_type, internal_ip, status, token_version,
                         details)
    select gen_random_uuid(), 'bench-' || lpad(n::text, 5, '0'), 'rack ' || (n % 40),
           (${sites}::int[])[1 + n % 10], now() - interval '30 days',
           case when n % 3 = 0 then now() when n % 3 = 1 then now() - interval '10 minutes'
                else now() - interval '2 days' end,
           case when n % 2 = 0 then 'Windows 11 Pro 24H2' else 'Debian GNU/Linux 13' end,
           'user' || (n % 500), case when n % 5 = 0 then 'Server' else 'Workstation' end,
           '10.' || (n / 65536) % 256 || '.' || (n / 256) % 256 || '.' || n % 256, 'active', 1,
           jsonb_build_object('memory', jsonb_build_array('{}'::jsonb, '{}'::jsonb),
                              'storage', jsonb_build_array('{}'::jsonb))
    from generate_series(1, ${DEVICES}) as n`;
  const seedMs = performance.now() - t0;
  await engine.service(operatorsKey).createUser({
    username: "bench",
    password: "bench password for the console",
    role: "Admin",
    mfaExempt: true,
  });

  // --- baseline: GET /health from the same process, same run -------------------------
  const health: number[] = [];
  for (let i = 0; i < 60; i++) {
    const s = performance.now();
    await (await fetch(`${base}/health`)).text();
    health.push(performance.now() - s);
  }
  const apiTimes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = performance.now();
    const res = await fetch(
      `${base}/api/devices?hostname=bench-1${String(i).padStart(2, "0")}&limit=100`,
    );
    await res.body?.cancel();
    apiTimes.push(performance.now() - s); // 401 path: middleware only; the real one is below
  }

  // --- sign in once (the cookie is reused by every cold load) -------------------------
  const signIn = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const p0 = await signIn.newPage();
  await p0.goto(`${base}/sign-in`);
  await p0.getByLabel("Username").fill("bench");
  await p0.getByLabel("Password").fill("bench password for the console");
  await p0.getByRole("button", { name: "Sign in", exact: true }).click();
  await p0.waitForURL("**/devices");
  const storage = await signIn.storageState();
  await signIn.close();

  // --- cold loads: fresh context (empty cache), until rows are on screen --------------
  const loads: number[] = [];
  const fcps: number[] = [];
  let bundle = { raw: 0, gzip: 0 };
  for (let i = 0; i < 5; i++) {
    const ctx = await browser.newContext({
      viewport: { width: 1280, height: 720 },
      storageState: storage,
    });
    const page = await ctx.newPage();
    page.on("response", async (r) => {
      if (/\/assets\/main-.*\.js$/.test(r.url())) {
        const size = Number(r.headers()["content-length"] ?? 0);
        bundle = { raw: (await r.body()).byteLength, gzip: size };
      }
    });
    const s = performance.now();
    await page.goto(`${base}/devices`);
    await page.locator('[role="row"] [data-status]').first().waitFor();
    loads.push(performance.now() - s);
    fcps.push(
      await page.evaluate(() =>
        performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN
      ),
    );
    await ctx.close();
  }

  // --- interactions in one warm page ----------------------------------------------------
  const ctx = await browser.newContext({
    viewport: { width: 1280, height: 720 },
    storageState: storage,
  });
  const page = await ctx.newPage();
  await page.goto(`${base}/devices`);
  await page.locator('[role="row"] [data-status]').first().waitFor();
  const total = await page.getByText(/^[\d,]+ devices$/).innerText();

  // Filter: from the request leaving (after the typing debounce) to the rows rendered.
  const filters: number[] = [];
  const serverFilter: number[] = [];
  const filterBox = page.getByRole("textbox", { name: "Hostname Filter Input" });
  const host = (n: number) => `bench-${String(n).padStart(5, "0")}`;
  for (let i = 0; i < 8; i++) {
    const wanted = host((i + 1) * Math.floor(DEVICES / 9));
    const term = wanted.slice(0, -1); // matches ten devices, this one among them
    const sent = page.waitForRequest((r) => r.url().includes(`hostname=${term}`));
    await filterBox.fill(term);
    const req = await sent;
    const start = performance.now();
    const res = await req.response();
    await page.locator(`[role="row"]:has-text("${wanted}")`).first().waitFor();
    filters.push(performance.now() - start);
    serverFilter.push(
      res ? (res.request().timing().responseEnd - res.request().timing().requestStart) : NaN,
    );
  }
  await filterBox.fill("");
  await page.locator('[role="row"]:has-text("bench-00001")').first().waitFor();

  // Jump to the middle: a block fetched and rendered.
  const jumps: number[] = [];
  const serverJump: number[] = [];
  for (const row of [DEVICES / 2, DEVICES / 5, (DEVICES * 4) / 5]) {
    const target = host(row + 1);
    const fetched = page.waitForRequest((r) =>
      /[?&]offset=\d+/.test(r.url()) && !r.url().includes("offset=0&")
    );
    const start = performance.now();
    await page.evaluate(`${SCROLLER}.scrollTop = ${row * 40}`);
    await page.locator(`[role="row"]:has-text("${target}")`).first().waitFor();
    jumps.push(performance.now() - start);
    const req = await fetched;
    const t = req.timing();
    serverJump.push(t.responseEnd - t.requestStart);
  }

  // Scrolling within loaded rows: one screen down, next frame rendered.
  const scrolls: number[] = [];
  for (let i = 0; i < 10; i++) {
    scrolls.push(
      await page.evaluate(`new Promise((resolve) => {
        const v = ${SCROLLER};
        const s = performance.now();
        v.scrollTop += 300;
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - s)));
      })`) as number,
    );
  }
  await ctx.close();

  console.log(
    `console devices grid, ${DEVICES.toLocaleString("en")} devices (${total}; seeded in ${
      (seedMs / 1000).toFixed(1)
    } s):\n` +
      `  cold load to first rows p50 ${ms(median(loads))} (first contentful paint ${
        ms(median(fcps))
      })\n` +
      `  column filter p50 ${ms(median(filters))} after the 300 ms typing debounce ` +
      `(server part p50 ${ms(median(serverFilter))}) (aim < 100 ms)\n` +
      `  jump to the middle of the list p50 ${
        ms(median(jumps))
      } (block fetched and rendered; server part p50 ${ms(median(serverJump))}; aim < 100 ms)\n` +
      `  scroll within loaded rows p50 ${ms(median(scrolls))} (two frames; aim < 100 ms)\n` +
      `  bundle ${(bundle.raw / 1024).toFixed(0)} KB, ${
        (bundle.gzip / 1024).toFixed(0)
      } KB gzip\n` +
      `  baseline GET /health p50 ${
        ms(median(health))
      } (same run; unauthenticated /api/devices p50 ${ms(median(apiTimes))})`,
  );
} finally {
  await browser.close();
  await engine.stop("bench done");
  await db.drop();
}

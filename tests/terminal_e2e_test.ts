/**
 * The remote terminal end to end with real processes: an engine process, the production
 * agent's worker enrolled through an install token, and Chromium driving the console.
 * Open a terminal on the device page, run `echo`, `stty size` after the window is
 * resized, a full-screen program (top, then vi) and quit it, close; a User without the
 * device's site cannot reach it; an output flood (`yes | head -c 200M`) keeps the
 * memory of every hop bounded while Ctrl+C still interrupts it; a service of this test
 * restarted and a process ended from the Services and Processes tabs; a file uploaded
 * and downloaded with its SHA-256 checked. On PostgreSQL the terminal also runs across
 * two engine processes (the browser on A, the agent on B).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { systemdRunning } from "../agent/collectors/linux.ts";
import {
  axeViolations,
  browserMissing,
  launchBrowser,
  openPage,
  type PageProblems,
  screenshotDir,
} from "./helpers/console_browser.ts";
import { createTestDatabase, serverUrl } from "./helpers/test_db.ts";
import { rssKiB, startAgentProc, startEngineProc } from "./helpers/terminal_processes.ts";

const missing = browserMissing();
if (missing && Deno.env.get("CI")) throw new Error(`CI must run the browser tests: ${missing}`);

const PASSWORD = "a console password for the terminal test";
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The text the terminal shows (xterm's DOM renderer: one div per row). */
async function screen(page: Page): Promise<string> {
  return await page.evaluate(
    `[...document.querySelectorAll(".xterm-rows > div")].map((r) => r.textContent ?? "").join("\\n")`,
  ) as string;
}

async function waitScreen(page: Page, re: RegExp, ms = 30_000): Promise<string> {
  const end = Date.now() + ms;
  let last = "";
  while (Date.now() < end) {
    last = await screen(page);
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  const shot = join(screenshotDir(), `terminal-failed-${Date.now()}.png`);
  await page.screenshot({ path: shot }).catch(() => {});
  const status = await page.getByRole("status").allTextContents().catch(() => []);
  throw new Error(
    `the terminal did not show ${re}; status ${
      JSON.stringify(status)
    }, page in ${shot}; it shows:\n${last}`,
  );
}

async function waitGone(page: Page, re: RegExp, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!re.test(await screen(page))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the terminal still shows ${re}`);
}

async function typeLine(page: Page, text: string): Promise<void> {
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

function clean(problems: PageProblems, where: string): void {
  assert.deepEqual(problems.csp, [], `CSP violations on ${where}`);
  assert.deepEqual(problems.errors, [], `page errors on ${where}`);
}

/** axe-core (WCAG 2 A/AA, best practices) on the page as it is, once transitions end. */
async function accessible(page: Page, where: string): Promise<void> {
  // The terminal's blinking cursor is an endless animation: its `finished` never comes.
  await page.evaluate(
    "Promise.all(document.getAnimations().filter((a) => a.effect?.getTiming().iterations !== " +
      "Infinity).map((a) => a.finished.catch(() => {})))",
  );
  const violations = await axeViolations(page);
  assert.deepEqual(violations, [], `axe on ${where}:\n${violations.join("\n")}`);
}

async function signIn(page: Page, username: string): Promise<void> {
  await page.goto("/devices");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL("**/devices");
}

/** Opens the Terminal tab and a session on it. */
async function openTerminal(page: Page, guid: string): Promise<void> {
  await page.goto(`/devices/${guid}?tab=terminal`);
  const open = page.getByRole("button", { name: "Open terminal" });
  await open.waitFor();
  await open.click({ timeout: 30_000 });
  await page.getByRole("status").filter({ hasText: "Connected" }).waitFor({ timeout: 30_000 });
  await waitScreen(page, /[#$]\s*$/m);
  await page.locator(".xterm").click();
}

Deno.test({
  name:
    "terminal e2e: console, engine and production agent — shell, resize, full-screen, scope, flood, actions, files",
  ignore: !!missing || Deno.build.os !== "linux",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const db = await createTestDatabase();
    const engineEnv = {
      ...db.env,
      BOREALIS_AGENT_HEARTBEAT_SECONDS: "5",
      BOREALIS_LIVENESS_FLUSH_SECONDS: "1",
      BOREALIS_DPOP_MAX_SKEW_SECONDS: "900",
      BOREALIS_SHUTDOWN_GRACE_MS: "2000",
    };
    let engine = await startEngineProc(engineEnv);
    const browser = await launchBrowser();
    const files = await Deno.makeTempDir({ prefix: "terminal-e2e-files-" });
    let agent: Awaited<ReturnType<typeof startAgentProc>> | undefined;
    const cleanup: Array<() => Promise<unknown>> = [];
    try {
      const site =
        (await engine.op("/api/sites", { json: { name: "Shell site", description: "" } }))
          .body;
      for (const [username, role] of [["ops", "Admin"], ["visitor", "User"]]) {
        const u = await engine.op("/api/users", {
          json: { username, password: PASSWORD, role, mfa_exempt: true },
        });
        assert.equal(u.status, 201, JSON.stringify(u.body));
      }
      agent = await startAgentProc(engine, { siteId: site.id, hostname: "shell-host" });
      const guid = agent.guid()!;
      const { page, problems } = await openPage(browser, engine.url);
      await signIn(page, "ops");

      await t.step("open a terminal, echo, stty size after a resize, close", async () => {
        await openTerminal(page, guid);
        clean(problems, "terminal tab");
        await accessible(page, "terminal tab");
        await typeLine(page, "echo hello-$((6*7))");
        await waitScreen(page, /^hello-42\s*$/m);
        await typeLine(page, "echo size-a $(stty size)");
        const before = (await waitScreen(page, /^size-a \d+ \d+\s*$/m)).match(
          /^size-a (\d+) (\d+)\s*$/m,
        )!;
        await page.setViewportSize({ width: 1000, height: 820 });
        await typeLine(page, "clear; echo size-b $(stty size)");
        const after = (await waitScreen(page, /^size-b \d+ \d+\s*$/m)).match(
          /^size-b (\d+) (\d+)\s*$/m,
        )!;
        assert.notEqual(`${after[1]} ${after[2]}`, `${before[1]} ${before[2]}`);
        // The size the shell sees is the size the terminal shows.
        const rows = await page.locator(".xterm-rows > div").count();
        assert.equal(Number(after[1]), rows);
        // Colours: SGR 31 (red) and bold 32 (green) reach the terminal as its palette colours.
        await typeLine(page, "printf '\\033[31mred-%s\\033[0m \\033[1;32mgreen-%s\\033[0m\\n' 1 2");
        await waitScreen(page, /^red-1 green-2\s*$/m);
        assert.equal(
          await page.locator(".xterm-rows span.xterm-fg-1", { hasText: "red-1" }).count(),
          1,
        );
        assert.equal(
          await page.locator(".xterm-rows span.xterm-bold", { hasText: "green-2" }).count(),
          1,
        );
        await typeLine(page, "ls --color=always -d /etc /usr/bin/env /dev/null");
        await waitScreen(page, /\/usr\/bin\/env/);
        // The recent sessions list shows this session as open, its output counted at the end.
        const row = page.getByRole("row").filter({ hasText: "ops" }).first();
        await row.getByText("open", { exact: true }).waitFor({ timeout: 15_000 });
        await page.screenshot({ path: join(screenshotDir(), "terminal.png") });
      });

      await t.step("full-screen programs: top and vi, each quit", async () => {
        await typeLine(page, "top -d 1");
        await waitScreen(page, /load average/);
        await page.keyboard.press("q");
        await waitGone(page, /load average/);
        await typeLine(page, "echo after-top-$((1+2))");
        const s = await waitScreen(page, /after-top-3/);
        assert.ok(!/load average/.test(s), "top's screen is gone after quitting");
        await typeLine(page, "vi /tmp/terminal-e2e-unused.txt");
        await waitScreen(page, /^~\s*$/m);
        await page.keyboard.press("Escape");
        await typeLine(page, ":q!");
        await waitGone(page, /^~\s*$/m);
        await typeLine(page, "echo after-vi-$((2+2))");
        await waitScreen(page, /after-vi-4/);
      });

      await t.step("the session survives a restart of the engine (both sockets drop)", async () => {
        await typeLine(page, "export MARK=kept-$((4*4))");
        const port = engine.port;
        await engine.stop();
        await page.getByRole("status").filter({ hasText: "reconnecting" }).waitFor();
        engine = await startEngineProc(engineEnv, { port });
        try {
          await page.getByRole("status").filter({ hasText: "Connected" }).waitFor({
            timeout: 90_000,
          });
        } catch (err) {
          const status = await page.getByRole("status").allTextContents();
          await page.screenshot({ path: join(screenshotDir(), "terminal-restart-failed.png") });
          console.log(
            `status: ${JSON.stringify(status)}\nengine:\n${engine.output().slice(-4000)}`,
          );
          throw err;
        }
        await typeLine(page, "echo $MARK");
        await waitScreen(page, /^kept-16\s*$/m, 60_000);
        // The browser logs the refused reconnects while the engine was down; nothing else.
        assert.ok(problems.errors.every((e) => /WebSocket connection .* failed/.test(e)));
        problems.errors.length = 0;
      });

      await t.step(
        "an output flood keeps every hop's memory bounded; Ctrl+C interrupts it",
        async () => {
          const engineBefore = await rssKiB(engine.pid);
          const agentBefore = await rssKiB(agent!.pid);
          const heap = () =>
            page.evaluate(() =>
              (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory
                ?.usedJSHeapSize ?? 0
            );
          const heapBefore = await heap();
          await typeLine(page, "yes | head -c 200M; echo FLOOD-$((5*5))");
          const peaks = { engine: 0, agent: 0, heap: 0 };
          const series: number[][] = [];
          for (let i = 0; i < 16; i++) {
            await page.waitForTimeout(500);
            const e = await rssKiB(engine.pid), a = await rssKiB(agent!.pid), h = await heap();
            series.push([Math.round(e / 1024), Math.round(a / 1024), Math.round(h / 1_048_576)]);
            peaks.engine = Math.max(peaks.engine, e);
            peaks.agent = Math.max(peaks.agent, a);
            peaks.heap = Math.max(peaks.heap, h);
          }
          console.log(
            `engine, agent RSS and browser heap (MiB) every 0.5 s: ${JSON.stringify(series)}`,
          );
          await page.keyboard.press("Control+C");
          await typeLine(page, "clear; echo interrupted-$((3*3))");
          const s = await waitScreen(page, /interrupted-9/, 60_000);
          assert.ok(!/FLOOD-25/.test(s), "the flood was interrupted, not finished");
          // Bounded: after the first half second (buffers filled, code warmed up) memory stays
          // flat while megabytes keep flowing through every hop.
          const first = series[0]!;
          const grew = {
            engine_mib: (peaks.engine - engineBefore) / 1024,
            engine_after_first_sample_mib: peaks.engine / 1024 - first[0]!,
            agent_mib: (peaks.agent - agentBefore) / 1024,
            agent_after_first_sample_mib: peaks.agent / 1024 - first[1]!,
            browser_heap_mib: (peaks.heap - heapBefore) / 1_048_576,
          };
          console.log(`memory growth during the flood: ${JSON.stringify(grew)}`);
          assert.ok(grew.engine_mib < 96, `engine grew ${grew.engine_mib} MiB`);
          assert.ok(grew.engine_after_first_sample_mib < 32, JSON.stringify(grew));
          assert.ok(grew.agent_mib < 64, `agent grew ${grew.agent_mib} MiB`);
          assert.ok(grew.agent_after_first_sample_mib < 32, JSON.stringify(grew));
          assert.ok(grew.browser_heap_mib < 96, `browser heap grew ${grew.browser_heap_mib} MiB`);
          await page.getByRole("button", { name: "Close terminal" }).click();
          await page.getByRole("status").filter({ hasText: "Closed" }).waitFor();
          const sessions = await engine.op(`/api/terminal/sessions?device_guid=${guid}`);
          assert.ok(sessions.body.sessions.every((x: { status: string }) => x.status === "closed"));
          const flowed = sessions.body.sessions[0].bytes_out;
          console.log(
            `the flood moved ${(flowed / 1_048_576).toFixed(1)} MiB through every hop in 8 s`,
          );
          assert.ok(flowed > 1_048_576, `only ${flowed} bytes flowed`);
          clean(problems, "terminal after the flood");
        },
      );

      await t.step("a User without the device's site cannot reach it", async () => {
        const { page: other, problems: otherProblems } = await openPage(browser, engine.url);
        await signIn(other, "visitor");
        await other.goto(`/devices/${guid}?tab=terminal`);
        await other.getByRole("heading", { name: "Device not found" }).waitFor();
        assert.equal(await other.getByRole("button", { name: "Open terminal" }).count(), 0);
        // The socket refuses it too (not just the page).
        const refused = await other.evaluate(async (g) => {
          const ws = new WebSocket(`ws://${location.host}/api/ws`);
          await new Promise((r) => (ws.onopen = r));
          const answer = new Promise<string>((r) =>
            ws.onmessage = (e) => {
              const f = JSON.parse(e.data);
              if (f.id === "t") r(f.type === "error" ? f.data.code : f.type);
            }
          );
          ws.send(
            JSON.stringify({
              type: "terminal_open",
              id: "t",
              data: { guid: g, cols: 80, rows: 24 },
            }),
          );
          const code = await answer;
          ws.close();
          return code;
        }, guid);
        assert.equal(refused, "not_found");
        clean(otherProblems, "visitor");
        await other.context().close();
      });

      await t.step("end a process and restart a service from the device page", async () => {
        const sleeper = new Deno.Command("sleep", { args: ["4321"] }).spawn();
        cleanup.push(async () => {
          try {
            sleeper.kill("SIGKILL");
          } catch { /* gone */ }
          await sleeper.status;
        });
        await page.goto(`/devices/${guid}?tab=processes`);
        await page.getByRole("button", { name: "Refresh now" }).click();
        await page.getByText("Refresh processes: done.").waitFor({ timeout: 30_000 });
        await page.getByLabel("Filter processes").fill("sleep");
        await page.getByRole("button", { name: `End process sleep (${sleeper.pid})` }).click();
        await page.getByRole("button", { name: "End process", exact: true }).click();
        await page.getByText(`End sleep (${sleeper.pid}): done.`).waitFor({ timeout: 30_000 });
        assert.equal((await sleeper.status).signal, "SIGTERM");
        clean(problems, "processes");
        await accessible(page, "processes tab");

        if (Deno.uid() !== 0 || systemdRunning()) {
          console.log("service step skipped: needs root and a SysV service manager here");
          return;
        }
        const name = `borealis-e2e-${crypto.randomUUID().slice(0, 6)}`;
        const pidFile = `/tmp/${name}.pid`;
        await Deno.writeTextFile(
          `/etc/init.d/${name}`,
          `#!/bin/sh
PIDFILE=${pidFile}
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "$1" in
  start) running || { sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$PIDFILE"; } ;;
  stop) running && kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE" ;;
  restart) "$0" stop; "$0" start ;;
  status) running && exit 0; exit 3 ;;
esac
`,
          { mode: 0o755 },
        );
        cleanup.push(async () => {
          await new Deno.Command("service", { args: [name, "stop"] }).output().catch(() => {});
          await Deno.remove(`/etc/init.d/${name}`).catch(() => {});
        });
        assert.ok((await new Deno.Command("service", { args: [name, "start"] }).output()).success);
        const before = (await Deno.readTextFile(pidFile)).trim();
        await page.goto(`/devices/${guid}?tab=services`);
        await page.getByRole("button", { name: "Refresh now" }).click();
        await page.getByText("Refresh services: done.").waitFor({ timeout: 60_000 });
        await page.getByLabel("Filter services").fill(name);
        await page.getByRole("button", { name: `Restart ${name}` }).click();
        await page.getByText(`Restart ${name}: done.`).waitFor({ timeout: 60_000 });
        const after = (await Deno.readTextFile(pidFile)).trim();
        assert.notEqual(after, before);
        clean(problems, "services");
      });

      await t.step("a file round trip through the console with SHA-256", async () => {
        const data = new Uint8Array(3_000_000).map((_, i) => (i * 7919) & 0xff);
        const local = join(files, "local.bin");
        await Deno.writeFile(local, data);
        const remote = join(files, "uploaded.bin");
        await page.goto(`/devices/${guid}?tab=files`);
        await page.getByLabel("File to upload").setInputFiles(local);
        await page.getByLabel("Destination path").fill(remote);
        await page.getByRole("button", { name: "Upload", exact: true }).click();
        await page.getByText(/verified/).waitFor({ timeout: 60_000 });
        assert.equal(sha256(await Deno.readFile(remote)), sha256(data));
        await page.getByLabel("Path on the device").fill(remote);
        const [download] = await Promise.all([
          page.waitForEvent("download"),
          page.getByRole("button", { name: "Download", exact: true }).click(),
        ]);
        const saved = join(files, "downloaded.bin");
        await download.saveAs(saved);
        assert.equal(sha256(await Deno.readFile(saved)), sha256(data));
        clean(problems, "files");
        await accessible(page, "files tab");
      });
    } finally {
      for (const fn of cleanup) await fn().catch(() => {});
      await browser.close();
      await agent?.stop();
      await engine.stop();
      await db.drop();
      await Deno.remove(files, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "terminal e2e: two engine processes — the console on A, the agent on B",
  ignore: !!missing || Deno.build.os !== "linux" || !serverUrl,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const db = await createTestDatabase();
    const env = {
      ...db.env,
      BOREALIS_AGENT_HEARTBEAT_SECONDS: "5",
      BOREALIS_SHUTDOWN_GRACE_MS: "2000",
    };
    const a = await startEngineProc(env);
    const b = await startEngineProc(env, { console: false });
    const browser = await launchBrowser();
    let agent: Awaited<ReturnType<typeof startAgentProc>> | undefined;
    try {
      const site =
        (await a.op("/api/sites", { json: { name: "Cluster site", description: "" } })).body;
      const u = await a.op("/api/users", {
        json: { username: "ops", password: PASSWORD, role: "Admin", mfa_exempt: true },
      });
      assert.equal(u.status, 201);
      agent = await startAgentProc(a, {
        siteId: site.id,
        hostname: "cluster-shell",
        server: b.url,
      });
      const guid = agent.guid()!;
      // A routes to B once its registry has seen the agent's connection.
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        const agents = (await a.op("/api/agents")).body.agents as Array<{ guid: string }>;
        if (agents.some((x) => x.guid === guid)) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const { page, problems } = await openPage(browser, a.url);
      await signIn(page, "ops");
      await openTerminal(page, guid);
      await typeLine(page, "echo via-two-engines-$((8*8))");
      await waitScreen(page, /^via-two-engines-64\s*$/m);
      await page.setViewportSize({ width: 900, height: 700 });
      await page.waitForTimeout(300);
      await typeLine(page, "clear; echo size-b $(stty size)");
      const size = (await waitScreen(page, /^size-b \d+ \d+\s*$/m)).match(
        /^size-b (\d+) \d+\s*$/m,
      )!;
      assert.equal(Number(size[1]), await page.locator(".xterm-rows > div").count());
      await page.getByRole("button", { name: "Close terminal" }).click();
      await page.getByRole("status").filter({ hasText: "Closed" }).waitFor();
      const rows = await a.op(`/api/terminal/sessions?device_guid=${guid}`);
      assert.equal(rows.body.sessions[0].status, "closed");
      clean(problems, "terminal across two engines");
    } finally {
      await browser.close();
      await agent?.stop();
      await b.stop();
      await a.stop();
      await db.drop();
    }
  },
});

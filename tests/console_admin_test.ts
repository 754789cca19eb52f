/**
 * The console's admin work in a real browser, on a second engine process: a site's row
 * menu (auto-approval window, rename, delete with typed confirmation), bulk approval that
 * leaves a hostname conflict for review and the overwrite/coexist decision, the column
 * chooser and a shared saved view, an inline description edit, CSV export of the grid, and
 * an API token shown once. axe-core and the CSP checks run on each page.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { Agent } from "./agent/agent.ts";
import {
  axeViolations,
  browserMissing,
  launchBrowser,
  openPage,
  type PageProblems,
  startEngineProcess,
  totpCode,
} from "./helpers/console_browser.ts";

const missing = browserMissing();
if (missing && Deno.env.get("CI")) throw new Error(`CI must run the browser tests: ${missing}`);

const PASSWORD = "an admin password for the console";

async function clean(page: Page, problems: PageProblems, where: string) {
  await page.evaluate(
    "Promise.all(document.getAnimations().map((a) => a.finished.catch(() => {})))",
  );
  const violations = await axeViolations(page);
  assert.deepEqual(violations, [], `axe on ${where}:\n${violations.join("\n")}`);
  assert.deepEqual(problems.csp, [], `CSP violations on ${where}`);
  assert.deepEqual(problems.errors, [], `page errors on ${where}`);
}

Deno.test({
  name:
    "console: admin work — site menu, bulk approval with a conflict, columns and views, description, CSV, API token",
  ignore: !!missing,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const eng = await startEngineProcess();
    const browser = await launchBrowser();
    const stateDirs: string[] = [];
    try {
      // The first admin over HTTP (from this machine), then an MFA-exempt admin for the browser.
      const headers = { "content-type": "application/json", origin: eng.url };
      const post = (path: string, body: unknown, cookie?: string) =>
        fetch(`${eng.url}${path}`, {
          method: "POST",
          headers: cookie ? { ...headers, cookie } : headers,
          body: JSON.stringify(body),
        });
      assert.equal(
        (await post("/api/bootstrap/admin/setup", { username: "root", password: PASSWORD }))
          .status,
        201,
      );
      const pending =
        await (await post("/api/auth/login", { username: "root", password: PASSWORD }))
          .json();
      const verified = await post("/api/auth/mfa/verify", {
        pending_token: pending.pending_token,
        code: totpCode(pending.secret),
      });
      assert.equal(verified.status, 200);
      const cookie = verified.headers.get("set-cookie")!.split(";")[0]!;
      await verified.body?.cancel();
      const ops = await post("/api/users", {
        username: "ops",
        password: PASSWORD,
        role: "Admin",
        mfa_exempt: true,
      }, cookie);
      assert.equal(ops.status, 201, await ops.clone().text());
      const sites: Record<string, { id: number; enrollment_code: string }> = {};
      for (const name of ["Alpha", "Beta"]) {
        sites[name] = await (await post("/api/sites", { name, description: "" }, cookie)).json();
      }
      const agent = async (hostname: string) => {
        const dir = await Deno.makeTempDir({ prefix: "console-admin-agent-" });
        stateDirs.push(dir);
        return await Agent.open({ server: eng.url, stateDir: dir, hostname });
      };

      const { page, problems } = await openPage(browser, eng.url);
      await page.goto("/sites");
      await page.getByLabel("Username").fill("ops");
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL("**/sites");

      await t.step("a site's menu: auto-approval window, rename, delete", async () => {
        await page.getByRole("button", { name: "More actions for Alpha" }).click();
        await page.getByRole("menuitem", { name: "Auto-approval window…" }).click();
        await page.getByRole("button", { name: "Open window" }).click();
        await page.getByText("Alpha approves new devices until").waitFor();
        // With the window open a new device is admitted at once…
        const first = await agent("dup-host");
        assert.equal((await first.enroll(sites.Alpha!.enrollment_code)).status, "approved");
        await page.getByRole("button", { name: "More actions for Alpha" }).click();
        await page.getByRole("menuitem", { name: "Auto-approval window…" }).click();
        await page.getByRole("button", { name: "Close window" }).click();
        await page.getByText("Auto-approval of Alpha closed.").waitFor();

        await page.getByRole("button", { name: "More actions for Beta" }).click();
        await page.getByRole("menuitem", { name: "Rename…" }).click();
        await page.getByLabel("Site name").fill("Beta East");
        await page.getByRole("button", { name: "Rename" }).click();
        await page.getByRole("link", { name: "Beta East", exact: true }).waitFor();
        await page.getByRole("button", { name: "More actions for Beta East" }).click();
        await page.getByRole("menuitem", { name: "Delete…" }).click();
        const confirm = page.getByRole("button", { name: "Delete site" });
        assert.equal(await confirm.isDisabled(), true);
        await page.getByLabel("Type Beta East to confirm").fill("Beta East");
        await clean(page, problems, "delete site");
        await confirm.click();
        await page.getByText("Site Beta East deleted.").waitFor();
        assert.equal(await page.getByRole("link", { name: "Beta East", exact: true }).count(), 0);
      });

      await t.step("bulk approval leaves the conflict; coexist resolves it", async () => {
        // …with it closed they wait; the second dup-host has another key: a conflict.
        const code = sites.Alpha!.enrollment_code;
        const waiting: Agent[] = [];
        for (const host of ["dup-host", "fresh-1", "fresh-2"]) {
          const a = await agent(host);
          await a.requestEnrollment(code);
          waiting.push(a);
        }
        await page.getByRole("link", { name: "Device approvals", exact: true }).click();
        await page.getByRole("tab", { name: "Pending (3)" }).waitFor();
        await page.getByRole("gridcell", { name: "Hostname taken" }).waitFor();
        await clean(page, problems, "approvals with a conflict");
        for (const host of ["dup-host", "fresh-1", "fresh-2"]) {
          await page.getByRole("row").filter({ hasText: host }).getByRole("checkbox").check();
        }
        await page.getByText("Rows with a hostname conflict are skipped").waitFor();
        await page.getByRole("button", { name: "Approve selected (3)" }).click();
        await page.getByText("2 approved, 1 with conflicts left for review.").waitFor();
        await page.getByRole("tab", { name: "Pending (1)" }).waitFor();
        await page.getByRole("button", { name: "Approve dup-host" }).click();
        const dialog = page.getByRole("dialog", { name: "dup-host is already taken" });
        await dialog.getByLabel(
          /Coexist: a different machine\. It becomes a new device named dup-host-1/,
        )
          .check();
        await clean(page, problems, "conflict dialog");
        await dialog.getByRole("button", { name: "Approve" }).click();
        await page.getByText("dup-host approved").waitFor();
        await page.getByText("No device is waiting").waitFor();
        // Approved devices become devices when their agents poll.
        for (const a of waiting) assert.equal((await a.poll()).body.status, "approved");
      });

      await t.step("columns, a shared saved view, a description edit and CSV export", async () => {
        await page.getByRole("link", { name: "Devices", exact: true }).click();
        await page.getByRole("row").filter({ hasText: "dup-host-1" }).waitFor();
        const cell = page.getByRole("row").filter({ hasText: "fresh-1" }).locator(
          '[col-id="description"]',
        );
        await cell.dblclick();
        await page.keyboard.type("Lobby kiosk");
        await page.keyboard.press("Enter");
        await page.getByText("Description of fresh-1 saved.").waitFor();
        await clean(page, problems, "devices with a saved view");
        await page.reload();
        await page.getByRole("row").filter({ hasText: "Lobby kiosk" }).waitFor();

        assert.equal(await page.getByRole("columnheader", { name: "GUID" }).count(), 0);
        await page.getByRole("button", { name: "Columns" }).click();
        await page.getByRole("menuitem", { name: "GUID" }).click();
        await page.keyboard.press("Escape");
        await page.getByRole("columnheader", { name: "GUID" }).waitFor();
        await page.getByRole("button", { name: "View: Default" }).click();
        await page.getByRole("menuitem", { name: "Save as new view…" }).click();
        await page.getByLabel("View name").fill("With GUIDs");
        await page.getByRole("button", { name: "Save view" }).click();
        await page.getByRole("button", { name: "View: With GUIDs" }).waitFor();
        await page.getByRole("button", { name: "View: With GUIDs" }).click();
        await page.getByRole("menuitem", { name: "Default" }).click();
        await page.getByRole("button", { name: "View: Default" }).waitFor();
        assert.equal(await page.getByRole("columnheader", { name: "GUID" }).count(), 0);
        await page.getByRole("button", { name: "View: Default" }).click();
        await page.getByRole("menuitem", { name: "With GUIDs" }).click();
        await page.getByRole("columnheader", { name: "GUID" }).waitFor();

        const download = page.waitForEvent("download");
        await page.getByRole("button", { name: "Export CSV" }).click();
        const csv = await Deno.readTextFile(await (await download).path());
        const lines = csv.trim().split("\r\n");
        assert.equal(lines.length, 5, csv); // header + dup-host, dup-host-1, fresh-1, fresh-2
        assert.match(lines[0]!, /^Status,Hostname,Site,Description/);
        assert.ok(lines.some((l) => l.includes("fresh-1") && l.includes("Lobby kiosk")), csv);
      });

      await t.step("an API token is shown once and can be revoked", async () => {
        await page.getByRole("button", { name: "Account of ops" }).click();
        await page.getByRole("menuitem", { name: "API tokens" }).click();
        const dialog = page.getByRole("dialog", { name: "API tokens" });
        await dialog.getByLabel("Token name").fill("reporting");
        await dialog.getByRole("button", { name: "Create token" }).click();
        const token = await dialog.getByRole("textbox", { name: "API token" }).inputValue();
        assert.match(token, /^boat_/);
        const me = await fetch(`${eng.url}/api/auth/me`, {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal((await me.json()).username, "ops");
        await clean(page, problems, "API tokens");
        await dialog.getByRole("button", { name: "Revoke" }).click();
        await dialog.getByText("No API tokens").waitFor();
        const after = await fetch(`${eng.url}/api/auth/me`, {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(after.status, 401);
        await after.body?.cancel();
      });
    } finally {
      await browser.close();
      await eng.stop();
      for (const d of stateDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});

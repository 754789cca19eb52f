/**
 * The assemblies pages in a real browser against a real engine process (flush every
 * 15 s): Source badges and the "Queued to Write to DB" pill appearing, then clearing by
 * itself after the engine's flush, and at once after an admin's "write now"; export and
 * import of an assembly round-tripping through the editor; Dev Mode on letting an admin
 * edit an official assembly, off showing the read-only warning; a User seeing none of
 * the admin controls. axe-core and the CSP checks run on each page.
 */
import assert from "node:assert/strict";
import { browserMissing, launchBrowser, startEngineProcess } from "./helpers/console_browser.ts";
import {
  assertClean,
  bootstrapAdmin,
  createAccount,
  screenshot,
  signedInPage,
  until,
} from "./helpers/console_session.ts";

const missing = browserMissing();
if (missing && Deno.env.get("CI")) throw new Error(`CI must run the browser tests: ${missing}`);

Deno.test({
  name:
    "console: assemblies — source badges, the queued pill clearing after the flush, export/import round trip, Dev Mode, a User's view",
  ignore: !!missing,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const eng = await startEngineProcess({ env: { BOREALIS_ASSEMBLIES_FLUSH_SECONDS: "15" } });
    const browser = await launchBrowser();
    try {
      const call = await bootstrapAdmin(eng);
      await createAccount(call, "ops", "Admin");
      await createAccount(call, "viewer", "User");
      const { page, problems } = await signedInPage(browser, eng, "ops", "/assemblies");
      const row = (name: string) => page.getByRole("row").filter({ hasText: name });
      /**
       * Returns just after one of the engine's timed flushes (a throwaway change is staged
       * and seen written), so the next change stays queued for most of an interval.
       */
      let marks = 0;
      const afterFlush = async () => {
        const r = await call("/api/assemblies", {
          json: { display_name: `flush mark ${++marks}`, assembly_kind: "script", payload: "true" },
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        await until(
          async () => (await call("/api/assemblies/queue")).body.queue.dirty_count === 0,
          "a timed flush",
        );
      };
      // After a failed step the rest is skipped (it would fail for the same reason), and a
      // screenshot shows what the operator would have seen.
      let failed = false;
      const step = (name: string, fn: () => Promise<void>) =>
        t.step({
          name,
          ignore: failed,
          fn: async () => {
            try {
              await fn();
            } catch (err) {
              failed = true;
              await screenshot(page, "failure-assemblies", { keepToasts: true }).catch(() => {});
              throw err;
            }
          },
        });

      await step("the catalog shows Source badges and filters by them", async () => {
        await row("Disk Usage (Linux)").getByText("Official").waitFor();
        await page.getByRole("button", { name: /^Official \(\d+\)$/ }).click();
        await page.getByText(/^\d+ of \d+ assemblies$/).waitFor();
        await assertClean(page, problems, "assemblies");
        await screenshot(page, "assemblies");
      });

      let guid = "";
      await step("a new script shows the queued pill, which clears after the flush", async () => {
        await page.getByRole("button", { name: "New script" }).click();
        await page.getByLabel(/^Name[\s*\u2009]*$/).fill("Restart print spooler");
        await page.getByLabel("Type").click();
        await page.getByRole("option", { name: "Bash" }).click();
        const editor = page.getByRole("textbox", { name: "Bash script" });
        await editor.click();
        await page.keyboard.type('#!/bin/bash\necho "restarting $SERVICE"\n');
        await page.getByRole("tab", { name: "Variables (0)" }).click();
        await page.getByRole("button", { name: "Add variable" }).click();
        await page.getByLabel("Name of variable 1").fill("SERVICE");
        await page.getByLabel("Label of variable 1").fill("Service name");
        await page.getByLabel("Default of variable 1").fill("cups");
        await page.getByLabel("Variable 1 is required").check();
        await assertClean(page, problems, "assembly editor with a variable");
        await afterFlush();
        await page.getByRole("button", { name: "Create" }).click();
        await page.waitForURL(/\/assemblies\/[0-9a-f-]{36}$/);
        guid = page.url().split("/").pop()!;
        await page.getByTestId("queued-pill").waitFor();
        await page.getByRole("link", { name: "Assemblies", exact: true }).click();
        await page.getByLabel("Search").fill("spooler");
        const mine = row("Restart print spooler");
        await mine.getByText("User-Created").waitFor();
        await mine.getByText("Queued to Write to DB").waitFor();
        await screenshot(page, "assemblies-queued");
        // Nobody clicks anything: the engine's timed flush writes it and the pill goes.
        await mine.getByText("Queued to Write to DB").waitFor({
          state: "detached",
          timeout: 30_000,
        });
        const q = await call("/api/assemblies/queue");
        assert.equal(q.body.queue.dirty_count, 0);
      });

      await step("an admin with Dev Mode writes the queue now", async () => {
        await page.goto(`/assemblies/${guid}`);
        await page.getByRole("tab", { name: "Description and tags" }).click();
        await page.getByRole("textbox", { name: "Description" }).fill("Restarts the print spooler");
        await afterFlush();
        await page.getByRole("button", { name: "Save" }).click();
        await page.getByTestId("queued-pill").waitFor();
        await page.getByRole("switch", { name: "Dev Mode" }).click();
        await page.getByTestId("dev-mode-countdown").waitFor();
        await page.getByRole("link", { name: "Assemblies", exact: true }).click();
        await page.getByLabel("Search").fill("spooler");
        await row("Restart print spooler").getByText("Queued to Write to DB").waitFor();
        await page.getByRole("button", { name: "Catalog" }).click();
        await page.getByRole("menuitem", { name: "Write queued changes now" }).click();
        await page.getByText(/Written to the database: \d+ saved/).waitFor();
        await row("Restart print spooler").getByText("Queued to Write to DB").waitFor({
          state: "detached",
          timeout: 5000,
        });
      });

      await step("export then import round-trips through the editor", async () => {
        await page.goto(`/assemblies/${guid}`);
        await page.getByRole("button", { name: "Import / Export" }).click();
        const download = page.waitForEvent("download");
        await page.getByRole("menuitem", { name: /^Export JSON/ }).click();
        const file = await (await download).path();
        const exported = JSON.parse(await Deno.readTextFile(file));
        assert.equal(exported.display_name, "Restart print spooler");
        assert.equal(exported.assembly_guid, guid);
        // Import it back as a new assembly: the form fills, nothing is saved yet.
        await page.getByRole("button", { name: "Import / Export" }).click();
        const chooser = page.waitForEvent("filechooser");
        await page.getByRole("menuitem", { name: "Import JSON…" }).click();
        await (await chooser).setFiles(file);
        await page.waitForURL(/\/assemblies\/new$/);
        await page.getByText(/checked by the engine and loaded/).waitFor();
        assert.equal(
          await page.getByLabel(/^Name[\s*\u2009]*$/).inputValue(),
          "Restart print spooler",
        );
        assert.equal(await page.getByLabel("Domain").textContent(), "User-Created");
        const before = (await call("/api/assemblies?limit=1000")).body.total;
        assert.equal(
          (await call("/api/assemblies?limit=1000")).body.total,
          before,
          "nothing saved before Create",
        );
        await page.getByRole("tab", { name: "Variables (1)" }).click();
        assert.equal(await page.getByLabel("Default of variable 1").inputValue(), "cups");
        await assertClean(page, problems, "imported assembly");
        await screenshot(page, "assembly-import");
        await page.getByLabel(/^Name[\s*\u2009]*$/).fill("Restart print spooler (copy)");
        await page.getByRole("button", { name: "Create" }).click();
        await page.waitForURL(/\/assemblies\/[0-9a-f-]{36}$/);
        const copy = page.url().split("/").pop()!;
        assert.notEqual(copy, guid);
        const a = (await call(`/api/assemblies/${guid}`)).body;
        const b = (await call(`/api/assemblies/${copy}`)).body;
        assert.equal(b.domain, "user_created");
        assert.equal(b.payload, a.payload);
        assert.deepEqual(b.metadata, a.metadata);
        assert.equal(b.summary, a.summary);
        assert.equal(b.assembly_type, "bash");
      });

      await step("Dev Mode on edits an official assembly; off shows the warning", async () => {
        const official = (await call("/api/assemblies?domain=official&kind=script&limit=1"))
          .body.items[0];
        // Dev Mode is still on from the flush: the official script is editable.
        await page.goto(`/assemblies/${official.assembly_guid}`);
        await page.getByRole("region", { name: "Dev Mode" }).getByText("Dev Mode is on").waitFor();
        assert.equal(await page.getByTestId("read-only-warning").count(), 0);
        await page.getByRole("tab", { name: "Description and tags" }).click();
        await page.getByRole("textbox", { name: "Description" }).fill("Edited under Dev Mode");
        await page.getByRole("button", { name: "Save" }).click();
        await page.getByText(/saved/).first().waitFor();
        await until(
          async () =>
            (await call(`/api/assemblies/${official.assembly_guid}`)).body.summary ===
              "Edited under Dev Mode",
          "the official assembly to change",
        );
        await screenshot(page, "assembly-dev-mode");
        await page.getByRole("button", { name: "Turn off" }).click();
        await page.getByTestId("read-only-warning").waitFor();
        assert.equal(await page.getByRole("button", { name: "Save" }).count(), 0);
        assert.equal(await page.getByLabel(/^Name[\s*\u2009]*$/).isDisabled(), true);
        await assertClean(page, problems, "official assembly, read-only");
        await screenshot(page, "assembly-read-only");
      });

      await step("a User sees no admin controls", async () => {
        const user = await signedInPage(browser, eng, "viewer", "/assemblies");
        const p = user.page;
        await p.getByRole("grid").getByText("Official").first().waitFor();
        assert.equal(await p.getByRole("button", { name: "Catalog" }).count(), 0);
        assert.equal(await p.getByRole("switch", { name: "Dev Mode" }).count(), 0);
        assert.equal(await p.getByRole("link", { name: "Users" }).count(), 0);
        assert.equal(await p.getByRole("link", { name: "Audit log" }).count(), 0);
        const official = (await call("/api/assemblies?domain=official&kind=script&limit=1"))
          .body.items[0];
        await p.goto(`/assemblies/${official.assembly_guid}`);
        await p.getByTestId("read-only-warning").waitFor();
        assert.equal(await p.getByRole("button", { name: "Turn on Dev Mode" }).count(), 0);
        await p.goto("/users");
        await p.getByText("Only admins can open this page").waitFor();
        await assertClean(p, user.problems, "a User on an admin page");
        await user.close();
      });
    } finally {
      await browser.close();
      await eng.stop();
    }
  },
});

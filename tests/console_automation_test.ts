/**
 * The console's automation and alerting pages in a real browser against a real engine
 * process with three enrolled reference agents: a filter with its live preview, opened
 * in the devices grid; a scheduled job on a cron schedule in a time zone whose next run
 * times are the engine's; a watchdog preview, then the incident it opens counted in the
 * navigation and suppressed with a reason (and reopened) on the alerts page; a
 * maintenance window; a notification channel to a real webhook receiver with its test
 * answer and the delivery log. axe-core and the CSP checks run on each page.
 */
import assert from "node:assert/strict";
import { Agent } from "./agent/agent.ts";
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
    "console: filters with preview, a cron job's next runs from the engine, a watchdog preview, suppressing an alert, a window, a channel test",
  ignore: !!missing,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    // A webhook receiver on this machine (the engine may post to it: private targets on).
    const received: string[] = [];
    const receiver = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        received.push(await req.text());
        return new Response("ok from the receiver", { status: 200 });
      },
    );
    const hook = `http://127.0.0.1:${receiver.addr.port}/hook`;
    const eng = await startEngineProcess({
      env: { BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS: "true", BOREALIS_ALERTS_WORKER_MS: "500" },
    });
    const browser = await launchBrowser();
    const stateDirs: string[] = [];
    try {
      const call = await bootstrapAdmin(eng);
      await createAccount(call, "ops", "Admin");
      const site =
        (await call("/api/sites", { json: { name: "Main office", description: "" } })).body;
      await call(`/api/sites/${site.id}/auto-approval`, { json: { minutes: 60 } });
      const agents: Agent[] = [];
      for (const hostname of ["web-01", "web-02", "db-01"]) {
        const dir = await Deno.makeTempDir({ prefix: "console2-automation-agent-" });
        stateDirs.push(dir);
        const a = await Agent.open({ server: eng.url, stateDir: dir, hostname });
        assert.equal((await a.enroll(site.enrollment_code)).status, "approved");
        agents.push(a);
      }
      const heartbeat = async (a: Agent, cpu: number) => {
        const r = await a.call("POST", "/api/agent/heartbeat", { metrics: { cpu_percent: cpu } });
        assert.equal(r.status, 200, await r.clone().text());
        await r.body?.cancel();
      };
      await heartbeat(agents[0]!, 97);
      await heartbeat(agents[1]!, 20);
      await heartbeat(agents[2]!, 15);

      const { page, problems } = await signedInPage(browser, eng, "ops", "/filters");
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
              await screenshot(page, "failure-automation", { keepToasts: true }).catch(() => {});
              throw err;
            }
          },
        });

      await step("a filter's live preview, saved, opened in the devices grid", async () => {
        await page.getByText("No filters yet").waitFor();
        await page.getByRole("button", { name: "Create a filter" }).click();
        await page.getByLabel("Filter name").fill("Web servers");
        await page.getByRole("button", { name: "Add condition" }).click();
        await page.getByLabel("Operator 1").click();
        await page.getByRole("option", { name: "begins with" }).click();
        await page.getByLabel("Value 1").fill("web");
        await page.getByTestId("filter-preview-count").filter({ hasText: "2 devices match" })
          .waitFor();
        await page.getByRole("region", { name: "Preview" }).getByRole("link", { name: "web-01" })
          .waitFor();
        await assertClean(page, problems, "filter editor");
        await screenshot(page, "filter-editor");
        await page.getByRole("button", { name: "Create" }).click();
        await page.waitForURL(/\/filters\/\d+$/);
        await page.getByRole("link", { name: "Filters", exact: true }).click();
        const link = page.getByRole("link", { name: "2 devices match Web servers: open them" });
        await link.waitFor();
        await assertClean(page, problems, "filters");
        await screenshot(page, "filters");
        await link.click();
        await page.waitForURL(/\/devices\?filter=\d+/);
        await page.getByRole("link", { name: "Saved filter Web servers" }).waitFor();
        await page.getByRole("row").filter({ hasText: "web-02" }).waitFor();
        await page.getByText("2 devices match these filters").waitFor();
        assert.equal(await page.getByRole("row").filter({ hasText: "db-01" }).count(), 0);
      });

      await step("a cron job in a time zone shows the engine's next run times", async () => {
        await page.getByRole("link", { name: "Scheduled jobs", exact: true }).click();
        await page.getByText("No scheduled jobs yet").waitFor();
        await page.getByRole("button", { name: "New job" }).first().click();
        await page.getByLabel("Job name").fill("Weekday disk check");
        await page.getByLabel("Script 1").click();
        await page.getByRole("option", { name: "Disk Usage (Linux)" }).click();
        await page.getByLabel("Saved filters (resolved at each run)").click();
        await page.getByRole("option", { name: "Web servers" }).click();
        await page.keyboard.press("Escape");
        await page.getByLabel("Schedule type").click();
        await page.getByRole("option", { name: "Cron expression" }).click();
        await page.getByLabel("Cron expression").fill("30 2 * * 1-5");
        await page.getByLabel("Time zone").fill("America/New_York");
        await page.getByRole("option", { name: "America/New_York" }).click();
        await page.getByText("At 02:30, Monday through Friday").waitFor();
        // The list is the engine's answer for the same schedule, first to last.
        const engine = await call("/api/scheduled_jobs/schedule_preview", {
          json: {
            schedule: { type: "cron", cron: "30 2 * * 1-5", timezone: "America/New_York" },
            count: 5,
          },
        });
        assert.equal(engine.status, 200);
        const runs = page.getByTestId("next-runs").getByRole("listitem");
        await until(async () => (await runs.count()) === 5, "five next runs");
        await until(
          async () =>
            (await runs.first().textContent())!.startsWith(
              `${engine.body.runs[0].local.replace("T", " ")} America/New_York`,
            ),
          "the engine's first run",
        );
        const texts = await runs.allTextContents();
        engine.body.runs.forEach((r: { local: string }, i: number) =>
          assert.ok(texts[i]!.startsWith(r.local.replace("T", " ")), `${texts[i]} vs ${r.local}`)
        );
        assert.ok(texts.every((x) => x.includes(" 02:30 America/New_York")), texts.join("|"));
        await assertClean(page, problems, "job editor");
        await screenshot(page, "job-editor");
        await page.getByRole("button", { name: "Create job" }).click();
        await page.waitForURL(/\/jobs\/\d+$/);
        await page.getByRole("link", { name: "Scheduled jobs", exact: true }).click();
        const row = page.getByRole("row").filter({ hasText: "Weekday disk check" });
        await row.getByText("At 02:30, Monday through Friday (America/New_York)").waitFor();
        await row.getByText("filter Web servers").waitFor();
        await assertClean(page, problems, "jobs");
        await screenshot(page, "jobs");
        await row.getByRole("button", { name: "More actions for Weekday disk check" }).click();
        await page.getByRole("menuitem", { name: "History" }).click();
        await page.getByText("It has not run yet").waitFor();
        await page.getByRole("button", { name: "Run now" }).click();
        await page.getByRole("region", { name: "Devices of the occurrence" }).getByText("web-02")
          .waitFor();
        await assertClean(page, problems, "job history");
      });

      await step("a filter in use is not deleted, and the console names its user", async () => {
        await page.getByRole("link", { name: "Filters", exact: true }).click();
        const row = page.getByRole("row").filter({ hasText: "Web servers" });
        await row.getByText("Weekday disk check").waitFor();
        await row.getByRole("button", { name: "More actions for Web servers" }).click();
        await page.getByRole("menuitem", { name: "Delete…" }).click();
        const dialog = page.getByRole("dialog", { name: "Delete Web servers?" });
        await dialog.getByRole("link", { name: "Weekday disk check" }).waitFor();
        await dialog.getByRole("button", { name: "Delete" }).click();
        // The engine refuses; the dialog stays with its answer and the filter stays.
        await dialog.getByText("Not done").waitFor();
        await assertClean(page, problems, "filter delete refused");
        await dialog.getByRole("button", { name: "Cancel" }).click();
        const filters = await call("/api/device_filters");
        assert.ok(
          filters.body.filters.some((f: { name: string }) => f.name === "Web servers"),
          "the filter is still there",
        );
      });

      await step("a watchdog preview, then its incident counted in the navigation", async () => {
        await page.getByRole("link", { name: "Watchdogs", exact: true }).click();
        await page.getByRole("button", { name: "New watchdog" }).first().click();
        await page.getByLabel("Watchdog name").fill("CPU busy");
        await page.getByRole("tab", { name: "Rules (1)" }).click();
        await page.getByLabel("Rule 1", { exact: true }).click();
        await page.getByRole("option", { name: "CPU usage" }).click();
        await page.getByLabel("At or above (%) (rule 1)").fill("90");
        await page.getByRole("button", { name: "Preview now" }).click();
        const preview = page.getByTestId("watchdog-preview");
        await preview.filter({ hasText: "1 of 3 devices would match" }).waitFor();
        const region = page.getByRole("region", { name: "Preview" });
        await region.getByRole("listitem").filter({ hasText: "web-01" }).getByText("Would match")
          .waitFor();
        await region.getByRole("listitem").filter({ hasText: "db-01" }).getByText("Clear")
          .waitFor();
        await assertClean(page, problems, "watchdog preview");
        await screenshot(page, "watchdog-preview");
        await page.getByRole("button", { name: "Create" }).click();
        await page.waitForURL(/\/watchdogs\/[0-9a-f-]{36}$/);
        // Saving evaluates it: web-01's incident opens and the navigation counts it, live.
        await page.getByTestId("alert-count").filter({ hasText: "1" }).waitFor({ timeout: 30_000 });
      });

      await step("suppressing an alert with a reason, and reopening it", async () => {
        await page.getByRole("link", { name: /^Alerts/ }).click();
        const row = page.getByRole("row").filter({ hasText: "web-01" });
        await row.waitFor();
        await page.getByRole("button", { name: "Open (1)" }).waitFor();
        await assertClean(page, problems, "alerts");
        await screenshot(page, "alerts");
        await row.getByRole("button", { name: /^Acknowledge/ }).click();
        await page.getByText(/acknowledged\.$/).waitFor();
        await row.getByRole("button", { name: /^Suppress/ }).click();
        const dialog = page.getByRole("dialog");
        assert.equal(await dialog.getByRole("button", { name: "Suppress" }).isDisabled(), true);
        await dialog.getByLabel("Reason").fill("Nightly backup keeps the CPU busy");
        await assertClean(page, problems, "suppress dialog");
        await dialog.getByRole("button", { name: "Suppress" }).click();
        await page.getByRole("button", { name: "Suppressed (1)" }).waitFor();
        await page.getByRole("button", { name: "Open (0)" }).waitFor();
        await page.getByTestId("alert-count").waitFor({ state: "detached" });
        const incidents = await call("/api/watchdogs/incidents?state=suppressed");
        assert.equal(
          incidents.body.items[0].suppressed_reason,
          "Nightly backup keeps the CPU busy",
        );
        await page.getByRole("button", { name: "Suppressed (1)" }).click();
        await page.getByRole("button", { name: /^Reopen/ }).click();
        await page.getByRole("button", { name: "Open (1)" }).waitFor();
      });

      await step("a maintenance window says when it opens next", async () => {
        await page.getByRole("link", { name: "Maintenance windows", exact: true }).click();
        await page.getByRole("button", { name: "New window" }).first().click();
        const dialog = page.getByRole("dialog");
        await dialog.getByLabel("Window name").fill("Saturday patching");
        await dialog.getByLabel("Opens at (cron)").fill("0 22 * * 6");
        await dialog.getByRole("status", { name: "Next openings" }).getByText(/22:00/).first()
          .waitFor();
        await dialog.getByRole("button", { name: "Create window" }).click();
        const row = page.getByRole("row").filter({ hasText: "Saturday patching" });
        await row.getByText("At 22:00, only on Saturday").waitFor();
        await assertClean(page, problems, "maintenance windows");
        await screenshot(page, "maintenance");
      });

      await step(
        "a webhook channel's test shows the receiver's answer; the log has it",
        async () => {
          await page.getByRole("link", { name: "Notification channels", exact: true }).click();
          await page.getByRole("button", { name: "New channel" }).click();
          const dialog = page.getByRole("dialog");
          await dialog.getByLabel("Kind").click();
          await page.getByRole("option", { name: "Webhook (signed JSON)" }).click();
          await dialog.getByLabel("Channel name").fill("Ticketing");
          await dialog.getByLabel("Webhook URL").fill(hook);
          await dialog.getByRole("button", { name: "Create channel" }).click();
          // The generated signing secret is shown once.
          await page.getByRole("dialog", { name: "The channel's signing secret" }).waitFor();
          const secret = await page.getByRole("textbox", { name: "Signing secret" }).inputValue();
          assert.match(secret, /\S{16,}/);
          await page.getByRole("button", { name: "Close" }).click();
          const row = page.getByRole("row").filter({ hasText: "Ticketing" });
          await row.getByText(`http://127.0.0.1:${receiver.addr.port}/…`).or(
            row.getByText("127.0.0.1"),
          )
            .first().waitFor();
          await row.getByRole("button", { name: "Send a test to Ticketing" }).click();
          const result = page.getByTestId("test-result");
          await result.getByText(/Delivered — the remote answered 200/).waitFor();
          await result.getByText("ok from the receiver").waitFor();
          await assertClean(page, problems, "channel test");
          await screenshot(page, "channel-test");
          await page.getByRole("button", { name: "Close" }).click();
          assert.ok(received.some((b) => JSON.parse(b).type === "test"));
          // The secret is write-only: the edit form never shows the URL.
          await row.getByRole("button", { name: "More actions for Ticketing" }).click();
          await page.getByRole("menuitem", { name: "Edit" }).click();
          assert.equal(await page.getByRole("textbox", { name: "Webhook URL" }).inputValue(), "");
          await page.getByRole("button", { name: "Cancel" }).click();
          await page.getByRole("tab", { name: "Routes" }).click();
          await page.getByRole("button", { name: "New route" }).click();
          const routeDialog = page.getByRole("dialog");
          await routeDialog.getByLabel("Route name").fill("Everything to ticketing");
          await routeDialog.getByLabel("Channels").click();
          await page.getByRole("option", { name: "Ticketing" }).click();
          // Close the list without closing the dialog.
          await routeDialog.getByRole("heading", { name: "New route" }).click();
          await routeDialog.getByRole("button", { name: "Create route" }).click();
          await page.getByRole("row").filter({ hasText: "Everything to ticketing" }).waitFor();
          await page.getByRole("tab", { name: "Delivery log" }).click();
          await page.getByRole("row").filter({ hasText: "Ticketing" }).getByText("Delivered")
            .first()
            .waitFor();
          await assertClean(page, problems, "delivery log");
          await screenshot(page, "delivery-log");
        },
      );
    } finally {
      await browser.close();
      await eng.stop();
      await receiver.shutdown();
      for (const d of stateDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * The console's administration pages in a real browser against a real engine process:
 * users (a new User with a site; demoting the other admin surfaces the last-local-admin
 * rule), credentials (secrets write-only) and the vault (rotation under Dev Mode with its
 * progress, force reset behind typed words), the audit log filtered and exported as CSV,
 * a directory provider that cannot be enabled before a passing test (its failing steps
 * shown), a site's install commands when no agent package is built, install tokens, and
 * a User who sees none of the admin pages or controls. axe-core and the CSP checks run on
 * each page.
 */
import assert from "node:assert/strict";
import { browserMissing, launchBrowser, startEngineProcess } from "./helpers/console_browser.ts";
import {
  assertClean,
  bootstrapAdmin,
  createAccount,
  screenshot,
  signedInPage,
  TEST_PASSWORD,
  until,
} from "./helpers/console_session.ts";

/** What an admin sets for the User in the first step. */
const VIEWER_PASSWORD = "a password the admin set";

const missing = browserMissing();
if (missing && Deno.env.get("CI")) throw new Error(`CI must run the browser tests: ${missing}`);

Deno.test({
  name:
    "console: users and the last local admin, credentials and the vault, audit CSV, a directory provider's test, install tokens, a User's view",
  ignore: !!missing,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const eng = await startEngineProcess();
    const browser = await launchBrowser();
    try {
      const call = await bootstrapAdmin(eng);
      await createAccount(call, "ops", "Admin");
      const site = (await call("/api/sites", { json: { name: "Branch", description: "" } })).body;
      const { page, problems } = await signedInPage(browser, eng, "ops", "/users");
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
              await screenshot(page, "failure-administration", { keepToasts: true }).catch(
                () => {},
              );
              throw err;
            }
          },
        });

      await step("a new User with a site; the last local admin is surfaced", async () => {
        await page.getByRole("button", { name: "New user" }).click();
        const dialog = page.getByRole("dialog");
        await dialog.getByLabel("Username").fill("viewer");
        await dialog.getByLabel("Password").fill(TEST_PASSWORD);
        await dialog.getByLabel("Sites").click();
        await page.getByRole("option", { name: "Branch" }).click();
        await dialog.getByRole("heading", { name: "New local user" }).click();
        await dialog.getByLabel("No authenticator app (MFA exempt)").check();
        await dialog.getByRole("button", { name: "Create user" }).click();
        const viewer = page.getByRole("row").filter({ hasText: "viewer" });
        await viewer.getByText("Branch").waitFor();
        // An admin sets a new password (the User signs in with it at the end).
        await page.getByRole("button", { name: "More actions for viewer" }).click();
        await page.getByRole("menuitem", { name: "Set password…" }).click();
        const set = page.getByRole("dialog", { name: "Set the password of viewer" });
        await set.getByLabel("New password").fill(VIEWER_PASSWORD);
        await set.getByRole("button", { name: "Set password" }).click();
        await page.getByText("Password of viewer set; their sessions ended.").waitFor();
        // Two local admins (root, ops): demoting root leaves ops as the last one.
        await page.getByRole("button", { name: "More actions for root" }).click();
        await page.getByRole("menuitem", { name: /Make a User/ }).click();
        await page.getByRole("button", { name: "Confirm" }).click();
        await page.getByText("root is now a User.").waitFor();
        await page.getByText(/ops is the only enabled local admin/).waitFor();
        await page.getByRole("row").filter({ hasText: "ops" }).getByText("Last local admin")
          .waitFor();
        await page.getByRole("button", { name: "More actions for ops" }).click();
        const demote = page.getByRole("menuitem", { name: /Make a User/ });
        assert.equal(await demote.getAttribute("aria-disabled"), "true");
        await page.keyboard.press("Escape");
        // The engine says the same if asked directly (as ops: root is a User now).
        const refused = await page.request.post("/api/users/ops/role", {
          headers: { origin: eng.url },
          data: { role: "User" },
        });
        assert.equal(refused.status(), 409);
        assert.equal((await refused.json()).error, "last_admin");
        await assertClean(page, problems, "users");
        await screenshot(page, "users");
        const back = await page.request.post("/api/users/root/role", {
          headers: { origin: eng.url },
          data: { role: "Admin" },
        });
        assert.equal(back.status(), 200);
      });

      await step(
        "a credential's secret is write-only; the vault rotates with progress",
        async () => {
          await page.getByRole("link", { name: "Credentials and vault", exact: true }).click();
          await page.getByRole("button", { name: "New credential" }).click();
          const dialog = page.getByRole("dialog");
          await dialog.getByLabel("Credential name").fill("Domain admin");
          await dialog.getByLabel("Username").fill("CORP\\svc-rmm");
          await dialog.getByLabel("Password").fill("s3cret-password");
          await dialog.getByRole("button", { name: "Save" }).click();
          const row = page.getByRole("row").filter({ hasText: "Domain admin" });
          await row.getByText("password").waitFor();
          await row.getByRole("button", { name: "Edit Domain admin" }).click();
          assert.equal(await page.getByRole("dialog").getByLabel("Password").inputValue(), "");
          await page.getByRole("dialog").getByPlaceholder("Stored — leave empty to keep it")
            .waitFor();
          await page.getByRole("button", { name: "Cancel" }).click();
          const vault = page.getByRole("region", { name: "Vault" });
          await vault.getByText("Unlocked").waitFor();
          assert.equal(await vault.getByRole("button", { name: "Rotate key…" }).isDisabled(), true);
          await page.getByRole("switch", { name: "Dev Mode" }).click();
          await page.getByTestId("dev-mode-countdown").waitFor();
          await vault.getByRole("button", { name: "Rotate key…" }).click();
          await page.getByRole("dialog").getByRole("button", { name: "Rotate" }).click();
          await vault.getByRole("status", { name: "Rotation" }).getByText(
            /Last rotation finished|Rotating/,
          )
            .waitFor();
          await until(
            async () => (await call("/api/aegis/status")).body.rotation?.running === false,
            "the rotation to finish",
          );
          await vault.getByText(/Last rotation finished .*moved/).waitFor({ timeout: 30_000 });
          await vault.getByRole("button", { name: "Force reset…" }).click();
          const reset = page.getByRole("button", { name: "Destroy every secret" });
          assert.equal(await reset.isDisabled(), true);
          await page.getByLabel("Type DESTROY ALL SECRETS to confirm").fill("DESTROY SOME");
          assert.equal(await reset.isDisabled(), true);
          await assertClean(page, problems, "force reset confirmation");
          await page.getByRole("button", { name: "Cancel" }).click();
          await assertClean(page, problems, "credentials and vault");
          await screenshot(page, "credentials");
          await page.getByRole("button", { name: "Turn off" }).click();
        },
      );

      await step("the audit log filters by target and exports CSV", async () => {
        await page.getByRole("link", { name: "Audit log", exact: true }).click();
        await page.getByLabel("Target").fill("credential*");
        await page.getByRole("button", { name: "Apply" }).click();
        await page.waitForURL(/target=credential/);
        await page.getByRole("row").filter({ hasText: "credential.create" }).first().waitFor();
        await assertClean(page, problems, "audit log");
        await screenshot(page, "audit");
        const download = page.waitForEvent("download");
        await page.getByRole("button", { name: "Export CSV" }).click();
        const csv = await Deno.readTextFile(await (await download).path());
        const lines = csv.trim().split("\r\n");
        assert.match(lines[0]!, /^Time,Actor,Kind,Action,Target,Outcome/);
        assert.ok(lines.length >= 2, csv);
        assert.ok(lines.slice(1).every((l) => l.includes(",credential")), csv);
      });

      await step("a directory provider is enabled only after a passing test", async () => {
        await page.getByRole("link", { name: "Directory services", exact: true }).click();
        await page.getByRole("button", { name: "New provider" }).click();
        const editor = page.getByRole("region", { name: "Provider" });
        await editor.getByLabel("Provider name").fill("Lab LDAP");
        // Nothing listens there: the test's first step fails and says why.
        await editor.getByLabel("Servers (one per line)").fill("ldap://127.0.0.1:9");
        await editor.getByRole("tab", { name: "Bind and search" }).click();
        await editor.getByLabel("Base DN (where users are searched)").fill("dc=example,dc=org");
        await editor.getByRole("button", { name: "Create" }).click();
        await page.waitForURL(/provider=/);
        const toggle = editor.getByRole("switch");
        await editor.getByText("Enable (needs a passing test)").waitFor();
        assert.equal(await toggle.isDisabled(), true);
        await editor.getByRole("tab", { name: "Diagnostics" }).click();
        await editor.getByRole("button", { name: "Run test" }).click();
        const steps = editor.getByTestId("directory-test");
        await steps.getByText("failed").first().waitFor({ timeout: 30_000 });
        assert.equal(await toggle.isDisabled(), true);
        const refused = await call(
          `/api/directory/providers/${new URL(page.url()).searchParams.get("provider")}`,
          { method: "PATCH", json: { enabled: true } },
        );
        assert.equal(refused.status, 409);
        assert.equal(refused.body.error, "provider_not_tested");
        await assertClean(page, problems, "directory test");
        await screenshot(page, "directory");
      });

      await step("a site without agent packages says what to build; install tokens", async () => {
        await page.getByRole("link", { name: "Sites", exact: true }).click();
        await page.getByRole("button", { name: "Add devices to Branch" }).click();
        const dialog = page.getByRole("dialog", { name: "Add devices to Branch" });
        await dialog.getByTestId("no-packages").getByText("deno task agent:package").waitFor();
        await dialog.getByRole("button", { name: "Reveal enrollment code" }).click();
        await dialog.getByRole("textbox", { name: "Install command (reference-agent)" }).waitFor();
        await assertClean(page, problems, "site install dialog");
        await screenshot(page, "site-no-packages");
        await page.getByRole("button", { name: "Close" }).click();
        // Tokens exist independently of packages: one made over the API, revoked here later.
        const token = await call(`/api/sites/${site.id}/install-tokens`, {
          json: { expires_in_hours: 24, max_uses: 5 },
        });
        assert.equal(token.status, 201, JSON.stringify(token.body));
        assert.equal(token.body.install_commands, null, "no release: no commands");
      });

      await step("a User sees none of the admin pages or controls", async () => {
        const user = await signedInPage(browser, eng, "viewer", "/sites", VIEWER_PASSWORD);
        const p = user.page;
        await p.getByRole("link", { name: "Branch", exact: true }).waitFor();
        for (
          const name of [
            "Users",
            "Credentials and vault",
            "Directory services",
            "Audit log",
            "Notification channels",
          ]
        ) {
          assert.equal(await p.getByRole("link", { name, exact: true }).count(), 0, name);
        }
        assert.equal(await p.getByRole("button", { name: "New site" }).count(), 0);
        assert.equal(await p.getByRole("button", { name: "Add devices to Branch" }).count(), 0);
        await p.goto("/watchdogs");
        await p.getByRole("heading", { name: "Watchdogs" }).waitFor();
        assert.equal(await p.getByRole("button", { name: "New watchdog" }).count(), 0);
        await p.goto("/maintenance");
        await p.getByRole("heading", { name: "Maintenance windows" }).waitFor();
        assert.equal(await p.getByRole("button", { name: "New window" }).count(), 0);
        for (const path of ["/credentials", "/audit", "/notifications", "/directory"]) {
          await p.goto(path);
          await p.getByText("Only admins can open this page").waitFor();
        }
        const res = await p.request.get("/api/audit");
        assert.equal(res.status(), 403, "and the engine refuses anyway");
        await assertClean(p, user.problems, "a User's view");
        await user.close();
      });
    } finally {
      await browser.close();
      await eng.stop();
    }
  },
});

/**
 * The console's daily loop in a real browser (Debian's Chromium through playwright-core)
 * against a real engine process and the reference agent as a real process: first start
 * in passphrase mode (vault, first admin), sign-in with TOTP set up from the QR page,
 * a site and its enrollment code, the agent enrolls and is approved in the console, its
 * status pill changes live, a quick job's output appears (on the chosen device, and on a
 * site the engine resolves); a passkey is registered and
 * signs in; a session revoked elsewhere sends the operator to sign-in and back to the
 * page; a User sees only their site. Every page is checked with axe-core, and no Content
 * Security Policy violation or page error may occur. Screenshots go to
 * `BOREALIS_CONSOLE_SCREENSHOTS` (docs/console for the documentation).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { Agent } from "./agent/agent.ts";
import { type AgentProcess, spawnAgent } from "./agent/process.ts";
import { createTestDatabase } from "./helpers/test_db.ts";
import {
  axeViolations,
  browserMissing,
  type EngineProcess,
  launchBrowser,
  openPage,
  type PageProblems,
  screenshotDir,
  startEngineProcess,
  totpCode,
} from "./helpers/console_browser.ts";

const missing = browserMissing();
if (missing && Deno.env.get("CI")) throw new Error(`CI must run the browser tests: ${missing}`);
if (missing) console.warn(`skipping the console browser tests: ${missing}`);

const PASSWORD = "correct horse battery staple 42";
const VAULT = "vault passphrase for the e2e test";
const HOST = "e2e-ws-01";

/** Waits for `check` to hold (real time; the engine and agent are real processes). */
async function until(check: () => Promise<boolean> | boolean, what: string, ms = 45_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Fails on axe violations, CSP violations or page errors seen so far. */
async function clean(page: Page, problems: PageProblems, where: string) {
  // Colours mid-transition (a theme switch, a hover) are not what the operator reads.
  await page.evaluate(
    "Promise.all(document.getAnimations().map((a) => a.finished.catch(() => {})))",
  );
  const violations = await axeViolations(page);
  assert.deepEqual(violations, [], `axe on ${where}:\n${violations.join("\n")}`);
  assert.deepEqual(problems.csp, [], `CSP violations on ${where}`);
  assert.deepEqual(problems.errors, [], `page errors on ${where}`);
}

async function shot(page: Page, name: string) {
  await page.waitForTimeout(300); // let transitions settle
  await page.screenshot({ path: join(screenshotDir(), `${name}.png`) });
}

/** Signs in over HTTP like another browser would; returns its cookie header. */
async function signInElsewhere(eng: EngineProcess, secret: string, steps: number) {
  const headers = { "content-type": "application/json", origin: eng.url };
  const login = await fetch(`${eng.url}/api/auth/login`, {
    method: "POST",
    headers,
    body: JSON.stringify({ username: "admin", password: PASSWORD }),
  });
  const pending = await login.json();
  assert.equal(pending.status, "mfa_required", JSON.stringify(pending));
  const verify = await fetch(`${eng.url}/api/auth/mfa/verify`, {
    method: "POST",
    headers,
    body: JSON.stringify({ pending_token: pending.pending_token, code: totpCode(secret, steps) }),
  });
  assert.equal(verify.status, 200, await verify.clone().text());
  await verify.body?.cancel();
  const cookie = verify.headers.get("set-cookie")!.split(";")[0]!;
  return async (path: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await fetch(`${eng.url}${path}`, {
      method: init.method ?? (init.json === undefined ? "GET" : "POST"),
      headers: { ...headers, cookie },
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

Deno.test({
  name:
    "console: the daily loop in a real browser — first start, TOTP, site, approval, live status, quick job, passkeys, revoked session, a User's scope",
  ignore: !!missing,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const env = {
      BOREALIS_AEGIS_MODE: "passphrase",
      // A short threshold so "offline" is seen within the test (every surface uses it).
      BOREALIS_AGENT_HEARTBEAT_SECONDS: "5",
      BOREALIS_AGENT_OFFLINE_SECONDS: "12",
      BOREALIS_LIVENESS_FLUSH_SECONDS: "1",
    };
    const db = await createTestDatabase();
    let eng = await startEngineProcess({ env, db });
    const browser = await launchBrowser();
    const agents: AgentProcess[] = [];
    const stateDir = await Deno.makeTempDir({ prefix: "console-e2e-agent-" });
    let secret = "";
    let code = "";
    let guid = "";
    try {
      const { context, page, problems } = await openPage(browser, eng.url);
      // After a failed step the rest is skipped (it would only fail for the same reason),
      // and a screenshot of the page shows what the operator would have seen.
      let failed = false;
      const step = async (name: string, fn: () => Promise<void>) => {
        await t.step({
          name,
          ignore: failed,
          fn: async () => {
            try {
              await fn();
            } catch (err) {
              failed = true;
              await page.screenshot({ path: join(screenshotDir(), "failure.png") }).catch(() => {});
              throw new Error(
                `${err instanceof Error ? err.message : err}\n--- engine output ---\n${
                  eng.output().slice(-3000)
                }`,
              );
            }
          },
        });
      };

      await step("first start: the vault passphrase, then the first admin", async () => {
        await page.goto("/");
        await page.waitForURL("**/setup");
        await page.getByRole("heading", { name: "Welcome: set up the vault" }).waitFor();
        await clean(page, problems, "vault setup");
        await shot(page, "first-run");
        await page.getByLabel("Vault passphrase", { exact: true }).fill(VAULT);
        await page.getByLabel("Vault passphrase again").fill(VAULT);
        await page.getByRole("button", { name: "Set up the vault" }).click();
        await page.getByRole("heading", { name: "Welcome: create the first admin" }).waitFor();
        await clean(page, problems, "admin setup");
        await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
        await page.getByLabel("Password again").fill(PASSWORD);
        await page.getByRole("button", { name: "Create admin" }).click();
        await page.waitForURL("**/sign-in?**");
      });

      await step("sign-in with TOTP set up from a QR code drawn in the browser", async () => {
        await page.getByText("The admin account is ready").waitFor();
        await page.getByLabel("Password").fill(PASSWORD);
        await page.getByRole("button", { name: "Sign in", exact: true }).click();
        await page.getByRole("heading", { name: "Set up your authenticator app" }).waitFor();
        const qr = page.getByRole("img", { name: /QR code to add admin/ });
        await qr.waitFor();
        assert.match(String(await qr.getAttribute("src")), /^data:image\/png;base64,/);
        const grouped = await page.getByLabel("Setup key").inputValue();
        assert.match(grouped, /^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/);
        secret = grouped.replaceAll(" ", "");
        await clean(page, problems, "TOTP setup");
        await shot(page, "sign-in-totp");
        // A wrong code is refused with the engine's reason; the right one signs in.
        await page.getByLabel("Six-digit code").fill(totpCode(secret, -10));
        await page.getByRole("button", { name: "Verify and sign in" }).click();
        await page.getByText("That code is wrong, expired or already used").waitFor();
        await page.getByLabel("Six-digit code").fill(totpCode(secret));
        await page.getByRole("button", { name: "Verify and sign in" }).click();
        await page.waitForURL("**/devices");
        await page.getByRole("heading", { name: "Devices" }).waitFor();
        await page.getByText("No devices yet").first().waitFor();
        await clean(page, problems, "empty devices");
      });

      await step("create a site and reveal its enrollment code and install command", async () => {
        await page.getByRole("link", { name: "Sites", exact: true }).click();
        await page.getByRole("heading", { name: "Sites" }).waitFor();
        await page.getByText("No sites yet").waitFor();
        await clean(page, problems, "empty sites");
        await page.getByRole("button", { name: "Create the first site" }).click();
        await page.getByLabel("Site name").fill("Head office");
        await page.getByLabel("Description (optional)").fill("Main building, 2nd floor");
        await page.getByRole("button", { name: "Create site" }).click();
        await page.getByRole("link", { name: "Head office", exact: true }).waitFor();
        await page.getByText("Site Head office created.").waitFor();
        await page.getByRole("button", { name: "Add devices to Head office" }).click();
        await page.getByRole("button", { name: "Reveal enrollment code" }).click();
        code = await page.getByRole("textbox", { name: "Enrollment code" }).inputValue();
        assert.match(code, /^([0-9A-F]{4}-){7}[0-9A-F]{4}$/);
        const command = await page.getByRole("textbox", {
          name: "Install command (reference-agent)",
        }).inputValue();
        assert.equal(
          command,
          `deno task agent --server ${eng.url} --code ${code} --state ./borealis-agent --connect`,
        );
        await clean(page, problems, "install dialog");
        await shot(page, "site-install");
        await page.getByRole("button", { name: "Close" }).click();
      });

      await step(
        "the agent enrolls, is approved in the console and turns online live",
        async () => {
          await page.getByRole("link", { name: "Device approvals", exact: true }).click();
          await page.getByRole("heading", { name: "Device approvals" }).waitFor();
          await page.getByText("No device is waiting").waitFor();
          const agent = spawnAgent([
            "--server",
            eng.url,
            "--code",
            code,
            "--state",
            stateDir,
            "--hostname",
            HOST,
            "--connect",
          ]);
          agents.push(agent);
          // The request appears without reloading (approvals topic of the operator socket).
          await page.getByRole("gridcell", { name: HOST, exact: true }).waitFor({
            timeout: 45_000,
          });
          await clean(page, problems, "approvals");
          await shot(page, "approvals");
          await page.getByRole("button", { name: `Approve ${HOST}` }).click();
          await page.getByText(`${HOST} approved`).waitFor();
          const enrolled = await agent.waitFor((e) => e.event === "enrolled", {
            timeoutMs: 60_000,
          });
          guid = String(enrolled.guid).toUpperCase();
          await agent.waitFor((e) => e.event === "connected", { timeoutMs: 60_000 });

          await page.getByRole("link", { name: "Devices", exact: true }).click();
          const row = page.getByRole("row").filter({ hasText: HOST });
          await row.locator('[data-status="online"]').waitFor({ timeout: 45_000 });
          await clean(page, problems, "devices");
          await shot(page, "devices");

          // Offline and back online, live: the row changes with no new list request (an event
          // that came before the row existed may still reload the list, 1.5 s after it: wait
          // for a quiet window longer than that first).
          let listRequests = 0;
          let lastList = Date.now();
          page.on("request", (r) => {
            if (new URL(r.url()).pathname !== "/api/devices") return;
            listRequests++;
            lastList = Date.now();
          });
          await page.waitForLoadState("networkidle");
          await until(() => Date.now() - lastList > 3000, "a quiet device list");
          listRequests = 0;
          agent.kill("SIGTERM");
          await agent.done;
          await row.locator('[data-status="offline"]').waitFor({ timeout: 45_000 });
          const again = spawnAgent(["--server", eng.url, "--state", stateDir, "--connect"]);
          agents.push(again);
          await row.locator('[data-status="online"]').waitFor({ timeout: 45_000 });
          assert.equal(
            listRequests,
            0,
            "status changes must arrive over the socket, not by reloading",
          );

          // Site counts follow the same rule.
          await page.getByRole("link", { name: "Sites", exact: true }).click();
          await page.getByRole("link", { name: "1 online devices in Head office" }).waitFor();
          await shot(page, "sites");
        },
      );

      await step("a quick job runs and its output appears in the device's activity", async () => {
        await page.getByRole("link", { name: "Devices", exact: true }).click();
        const row = page.getByRole("row").filter({ hasText: HOST });
        await row.getByRole("checkbox").check();
        await page.getByRole("button", { name: "Quick job (1)" }).click();
        const dialog = page.getByRole("dialog", { name: "Quick job" });
        await dialog.getByLabel("Find a script").fill("disk usage");
        await dialog.getByRole("option", { name: /Disk Usage \(Linux\)/ }).click();
        await dialog.getByLabel("Alert threshold (% used)").fill("101");
        await clean(page, problems, "quick job dialog");
        await shot(page, "quick-job");
        await dialog.getByRole("button", { name: "Run now" }).click();
        await page.waitForURL(`**/devices/${guid}?tab=activity&activity=*`);
        await page.getByTestId("activity-status").filter({ hasText: "Success" }).waitFor({
          timeout: 60_000,
        });
        const stdout = page.getByLabel("Standard output", { exact: true });
        await until(async () => /Filesystem/.test(await stdout.innerText()), "stdout");
        assert.match(await stdout.innerText(), /All filesystems below 101% used\./);
        await clean(page, problems, "device activity");
        await shot(page, "device-activity");
        await page.getByRole("tab", { name: "Summary" }).click();
        await page.getByRole("region", { name: "Identity" }).waitFor();
        await clean(page, problems, "device summary");
        await shot(page, "device-summary");
      });

      await step("a quick job on a site is resolved by the engine", async () => {
        await page.getByRole("link", { name: "Devices", exact: true }).click();
        await page.getByRole("row").filter({ hasText: HOST }).waitFor();
        await page.getByRole("button", { name: /^Quick job/ }).click();
        const dialog = page.getByRole("dialog", { name: "Quick job" });
        await dialog.getByRole("radio", { name: "A site" }).check();
        await dialog.getByRole("combobox", { name: /^Site/ }).click();
        await page.getByRole("option", { name: /^Head office/ }).click();
        await dialog.getByLabel(/Only devices that are online/).check();
        await dialog.getByLabel("Find a script").fill("disk usage");
        await dialog.getByRole("option", { name: /Disk Usage \(Linux\)/ }).click();
        await dialog.getByLabel("Alert threshold (% used)").fill("101");
        const sent = page.waitForRequest((r) =>
          new URL(r.url()).pathname === "/api/scripts/quick_run"
        );
        await dialog.getByRole("button", { name: "Run now" }).click();
        const body = (await sent).postDataJSON();
        assert.equal(body.device_guids, undefined);
        assert.equal(body.site_ids.length, 1);
        assert.equal(body.online_only, true);
        // The site's one device, online: the dialog opens its activity.
        await page.waitForURL(`**/devices/${guid}?tab=activity&activity=*`);
        await page.getByTestId("activity-status").filter({ hasText: "Success" }).waitFor({
          timeout: 60_000,
        });
      });

      await step("a passkey is registered from the account menu and signs in", async () => {
        const cdp = await context.newCDPSession(page);
        await cdp.send("WebAuthn.enable");
        await cdp.send("WebAuthn.addVirtualAuthenticator", {
          options: {
            protocol: "ctap2",
            transport: "internal",
            hasResidentKey: true,
            hasUserVerification: true,
            isUserVerified: true,
          },
        });
        await page.getByRole("button", { name: "Account of admin" }).click();
        await page.getByRole("menuitem", { name: "Passkeys" }).click();
        const dialog = page.getByRole("dialog", { name: "Passkeys" });
        await dialog.getByText("No passkeys yet").waitFor();
        await dialog.getByRole("button", { name: "Add a passkey" }).click();
        await dialog.getByLabel("Current password").fill(PASSWORD);
        await dialog.getByLabel("Passkey name").fill("Test laptop");
        await dialog.getByRole("button", { name: "Create passkey" }).click();
        await page.getByText("Passkey “Test laptop” added").waitFor();
        await dialog.getByText("Test laptop").waitFor();
        await clean(page, problems, "passkeys");
        await shot(page, "passkeys");
        await dialog.getByRole("button", { name: "Close" }).click();

        await page.getByRole("button", { name: "Account of admin" }).click();
        await page.getByRole("menuitem", { name: "Sign out" }).click();
        await page.waitForURL("**/sign-in");
        await page.getByRole("button", { name: "Sign in with a passkey" }).click();
        await page.waitForURL("**/devices");
        await page.getByRole("row").filter({ hasText: HOST }).waitFor();
      });

      await step(
        "a session revoked elsewhere: to sign-in, then back to the same page",
        async () => {
          const target = `/devices/${guid}?tab=activity`;
          await page.goto(target);
          await page.getByRole("tab", { name: "Activity", selected: true }).waitFor();
          const elsewhere = await signInElsewhere(eng, secret, 1);
          const sessions = await elsewhere("/api/auth/sessions");
          const browserSession = sessions.body.sessions.find((
            s: { current: boolean; method: string },
          ) => !s.current && s.method === "passkey");
          assert.ok(browserSession, JSON.stringify(sessions.body));
          const revoked = await elsewhere(`/api/auth/sessions/${browserSession.id}`, {
            method: "DELETE",
          });
          assert.equal(revoked.status, 204);
          // The engine closes the session's socket (4401) and the console goes to sign-in
          // at once, remembering the page the operator was on.
          await page.waitForURL("**/sign-in?next=*");
          assert.equal(
            new URL(page.url()).searchParams.get("next"),
            `/devices/${guid}?tab=activity`,
          );
          await page.getByText("Your session ended").waitFor();
          await clean(page, problems, "sign-in after revocation");
          await shot(page, "sign-in");
          await page.getByRole("button", { name: "Sign in with a passkey" }).click();
          await page.waitForURL(`**/devices/${guid}?tab=activity`);
          await page.getByRole("tab", { name: "Activity", selected: true }).waitFor();

          // Dark theme: the same page, legible.
          await page.getByRole("link", { name: "Devices", exact: true }).click();
          await page.getByRole("button", { name: "Switch to the dark theme" }).click();
          await page.mouse.move(640, 500); // the button's tooltip is not part of the page
          await page.getByRole("row").filter({ hasText: HOST }).waitFor();
          await clean(page, problems, "devices (dark)");
          await shot(page, "devices-dark");
          await page.getByRole("button", { name: "Switch to the light theme" }).click();

          // A User of another site, made by the admin from elsewhere.
          const branch = await elsewhere("/api/sites", {
            json: { name: "Branch", description: "" },
          });
          assert.equal(branch.status, 201);
          const user = await elsewhere("/api/users", {
            json: {
              username: "tech",
              password: PASSWORD,
              role: "User",
              mfa_exempt: true,
              site_ids: [branch.body.id],
            },
          });
          assert.equal(user.status, 201, JSON.stringify(user.body));
          const opened = await elsewhere(`/api/sites/${branch.body.id}/auto-approval`, {
            json: { minutes: 10 },
          });
          assert.equal(opened.status, 200);
          const branchAgent = await Agent.open({
            server: eng.url,
            stateDir: await Deno.makeTempDir({ prefix: "console-e2e-branch-" }),
            hostname: "branch-pc-07",
          });
          const enrolled = await branchAgent.enroll(branch.body.enrollment_code);
          assert.equal(enrolled.status, "approved");
        },
      );

      await step("a User sees only their site's devices and no admin control", async () => {
        const user = await openPage(browser, eng.url);
        const p = user.page;
        await p.goto("/devices");
        await p.waitForURL("**/sign-in?next=*");
        // By keyboard only: the username field has focus, Tab moves on, Enter submits.
        await p.getByLabel("Username").waitFor();
        await p.waitForFunction(
          'document.activeElement?.getAttribute("autocomplete") === "username webauthn"',
        );
        await p.keyboard.type("tech");
        await p.keyboard.press("Tab");
        await p.keyboard.type(PASSWORD);
        await p.keyboard.press("Enter");
        await p.waitForURL("**/devices");
        await p.getByRole("row").filter({ hasText: "branch-pc-07" }).waitFor();
        assert.equal(await p.getByRole("row").filter({ hasText: HOST }).count(), 0);
        await p.getByText("1 device").first().waitFor();
        assert.equal(await p.getByRole("button", { name: "Actions" }).count(), 0);
        assert.equal(await p.getByLabel("Containment").count(), 0);
        await clean(p, user.problems, "devices as a User");
        await p.getByRole("link", { name: "Sites", exact: true }).click();
        await p.getByRole("link", { name: "Branch", exact: true }).waitFor();
        assert.equal(await p.getByRole("link", { name: "Head office", exact: true }).count(), 0);
        assert.equal(await p.getByRole("button", { name: "New site" }).count(), 0);
        assert.equal(await p.getByRole("button", { name: /Add devices to/ }).count(), 0);
        await clean(p, user.problems, "sites as a User");
        // The other site's device is not there for a User, even by its address.
        await p.goto(`/devices/${guid}`);
        await p.getByRole("heading", { name: "Device not found" }).waitFor();
        await user.context.close();
      });
      await step("the global search opens a device; a deep link filters the grid", async () => {
        await page.goto("/sites");
        await page.getByRole("combobox", { name: "Find a device by hostname" }).fill("ws-0");
        await page.getByRole("option", { name: new RegExp(HOST) }).click();
        await page.waitForURL(`**/devices/${guid}`);
        await page.getByRole("heading", { name: HOST }).waitFor();
        await page.goto("/devices?status=overdue");
        await page.getByText("No device matches these filters").waitFor();
        await page.goto("/devices?status=online");
        await page.getByRole("row").filter({ hasText: HOST }).waitFor();
        const filter = page.getByRole("textbox", { name: "Hostname Filter Input" });
        await filter.fill("no-such-host");
        await page.waitForURL("**/devices?status=online&hostname=no-such-host*");
        await page.getByText("No device matches these filters").waitFor();
        await page.getByRole("button", { name: "Clear filters" }).click();
        await page.getByRole("row").filter({ hasText: HOST }).waitFor();
      });

      await step("after a restart the vault is locked: a banner, unlock, and on", async () => {
        await eng.halt();
        eng = await startEngineProcess({ env, db, port: eng.port });
        // While the engine was down the browser logged its refused socket reconnects.
        const refused = problems.errors.filter((e) => /ERR_CONNECTION_REFUSED/.test(e));
        problems.errors.splice(
          0,
          problems.errors.length,
          ...problems.errors.filter((e) => !refused.includes(e)),
        );
        await page.goto("/devices");
        const banner = page.getByText("The vault is locked");
        await banner.waitFor();
        await clean(page, problems, "vault locked banner");
        await shot(page, "vault-locked");
        await page.getByRole("link", { name: "Unlock" }).click();
        await page.getByRole("heading", { name: "Unlock the vault" }).waitFor();
        await page.getByLabel("Vault passphrase").fill("not the passphrase at all");
        await page.getByRole("button", { name: "Unlock the vault" }).click();
        await page.getByRole("alert").filter({ hasText: /passphrase/i }).waitFor();
        await page.getByLabel("Vault passphrase").fill(VAULT);
        await page.getByRole("button", { name: "Unlock the vault" }).click();
        await page.waitForURL("**/devices");
        await page.getByRole("row").filter({ hasText: HOST }).waitFor();
        assert.equal(await banner.count(), 0);
      });
      await context.close();
    } finally {
      for (const a of agents) a.kill("SIGTERM");
      await Promise.all(agents.map((a) => a.done.catch(() => {})));
      await browser.close();
      await eng.stop();
      await db.drop();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    }
  },
});

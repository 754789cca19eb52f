/**
 * Setting up a console browser test on a real engine process: the first admin over
 * HTTP (from this machine), extra accounts (MFA-exempt, so the browser signs in with a
 * password only), an API caller with the admin's cookie, and a signed-in page.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import {
  axeViolations,
  type EngineProcess,
  openPage,
  type PageProblems,
  screenshotDir,
  totpCode,
} from "./console_browser.ts";

/**
 * Waits for finite animations (transitions) to end; endless ones (a spinner, an
 * indeterminate progress bar) would never finish, so they are left out.
 */
const SETTLE = `Promise.all(document.getAnimations()
  .filter((a) => a.effect?.getTiming().iterations !== Infinity)
  .map((a) => a.finished.catch(() => {})))`;

/** The password of every account these tests make. */
export const TEST_PASSWORD = "an admin password for the console";

/** An API caller (the admin's session cookie, the engine's Origin). */
export type ApiCall = (
  path: string,
  init?: { method?: string; json?: unknown },
  // deno-lint-ignore no-explicit-any
) => Promise<{ status: number; body: any }>;

/** Creates the first admin `root` and returns an API caller signed in as root. */
export async function bootstrapAdmin(eng: EngineProcess): Promise<ApiCall> {
  const headers = { "content-type": "application/json", origin: eng.url };
  const post = (path: string, body: unknown) =>
    fetch(`${eng.url}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  const setup = await post("/api/bootstrap/admin/setup", {
    username: "root",
    password: TEST_PASSWORD,
  });
  assert.equal(setup.status, 201, await setup.clone().text());
  await setup.body?.cancel();
  const pending = await (await post("/api/auth/login", {
    username: "root",
    password: TEST_PASSWORD,
  })).json();
  const verified = await post("/api/auth/mfa/verify", {
    pending_token: pending.pending_token,
    code: totpCode(pending.secret),
  });
  assert.equal(verified.status, 200);
  const cookie = verified.headers.get("set-cookie")!.split(";")[0]!;
  await verified.body?.cancel();
  return async (path, init = {}) => {
    const res = await fetch(`${eng.url}${path}`, {
      method: init.method ?? (init.json === undefined ? "GET" : "POST"),
      headers: { ...headers, cookie },
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    return { status: res.status, body };
  };
}

/** Creates an MFA-exempt account (Admin or User, optionally with sites). */
export async function createAccount(
  call: ApiCall,
  username: string,
  role: "Admin" | "User",
  siteIds: number[] = [],
): Promise<void> {
  const r = await call("/api/users", {
    json: { username, password: TEST_PASSWORD, role, mfa_exempt: true, site_ids: siteIds },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/** A fresh browser context signed in as `username`, landing on `path`. */
export async function signedInPage(
  browser: Browser,
  eng: EngineProcess,
  username: string,
  path = "/devices",
  password = TEST_PASSWORD,
): Promise<{ page: Page; problems: PageProblems; close: () => Promise<void> }> {
  const { context, page, problems } = await openPage(browser, eng.url);
  await page.goto(path);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL((u) => u.pathname === path.split("?")[0]);
  return { page, problems, close: () => context.close() };
}

/** Fails on axe violations, CSP violations or page errors seen so far. */
export async function assertClean(page: Page, problems: PageProblems, where: string) {
  // Colours mid-transition (a theme switch, a hover) are not what the operator reads.
  await page.evaluate(SETTLE);
  const violations = await axeViolations(page);
  assert.deepEqual(violations, [], `axe on ${where}:\n${violations.join("\n")}`);
  assert.deepEqual(problems.csp, [], `CSP violations on ${where}`);
  assert.deepEqual(problems.errors, [], `page errors on ${where}`);
}

/**
 * A screenshot for the documentation (`BOREALIS_CONSOLE_SCREENSHOTS`). Toasts left from
 * earlier steps are closed first (they would cover the page the picture is about) unless
 * `keepToasts` says the toast is the subject.
 */
export async function screenshot(page: Page, name: string, o: { keepToasts?: boolean } = {}) {
  if (!o.keepToasts) {
    // In the page: a toast that hides itself meanwhile must not leave a click waiting.
    await page.evaluate(`document.querySelectorAll(".MuiAlert-filled button[aria-label=Close]")
      .forEach((b) => b.click())`);
  }
  await page.evaluate(SETTLE);
  await page.waitForTimeout(250);
  await page.screenshot({ path: join(screenshotDir(), `${name}.png`) });
}

/** Waits for `check` to hold (real time: the engine is a real process). */
export async function until(
  check: () => Promise<boolean> | boolean,
  what: string,
  ms = 45_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

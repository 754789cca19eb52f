/**
 * Real-browser testing of the console: a real engine process (`deno run -A main.ts start`
 * on a free port, its own database), Debian's Chromium driven by `playwright-core` (no
 * browser download), Content Security Policy violations and page errors collected,
 * axe-core run inside the page, and TOTP codes computed like an authenticator app.
 *
 * @module
 */
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import axe from "axe-core";
import * as OTPAuth from "otpauth";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "./test_db.ts";
import { consoleCacheDir } from "./console.ts";

/** Where Debian installs Chromium. */
export const CHROMIUM = Deno.env.get("BOREALIS_CHROMIUM") ?? "/usr/bin/chromium";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Why browser tests cannot run here, or null when they can. */
export function browserMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium) ` +
      `to run the console's browser tests`;
  }
}

/** A running engine process. */
export interface EngineProcess {
  /** `http://localhost:PORT` (a secure context for passkeys). */
  url: string;
  port: number;
  db: TestDatabase;
  /** What the engine printed so far (stderr). */
  output(): string;
  /** The one-time bootstrap value the engine printed, if any. */
  bootstrapValue(): string | null;
  /** Stops the process and drops its database (unless it was given one). */
  stop(): Promise<void>;
  /** Stops the process and keeps the database (to start again on it). */
  halt(): Promise<void>;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts `main.ts start` on a free port with a fresh database and waits until it answers
 * and its console is built (the build cache is shared, so only the first engine of a run
 * builds).
 */
export async function startEngineProcess(
  o: { env?: Record<string, string>; db?: TestDatabase; port?: number } = {},
): Promise<EngineProcess> {
  const db = o.db ?? await createTestDatabase();
  const port = o.port ?? freePort();
  const url = `http://localhost:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "main.ts"), "start"],
    cwd: ROOT,
    env: {
      ...db.env,
      BOREALIS_HOST: "127.0.0.1",
      BOREALIS_PORT: String(port),
      BOREALIS_PUBLIC_BASE_URL: url,
      BOREALIS_CONSOLE_CACHE_DIR: consoleCacheDir(),
      NO_COLOR: "1",
      ...o.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const pumping = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  let exited: number | null = null;
  child.status.then((s) => (exited = s.code));
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 15_000);
    await child.status;
    clearTimeout(timer);
    await pumping;
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/`);
      const body = await res.text();
      if (res.status === 200 && body.includes('id="root"')) break;
      if (res.status === 503) throw new Error(`console build failed: ${body.slice(0, 2000)}`);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("console build failed")) {
        await stop();
        throw err;
      }
    }
    if (exited !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        exited !== null
          ? `engine exited with code ${exited}:\n${text.slice(-4000)}`
          : `engine did not start within 120 s:\n${text.slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    port,
    db,
    output: () => text,
    bootstrapValue: () => /\b(bbt_[A-Za-z0-9_-]+)/.exec(text)?.[1] ?? null,
    async stop() {
      await stop();
      if (!o.db) await db.drop();
    },
    halt: stop,
  };
}

/** Launches headless Chromium (one per test file). */
export async function launchBrowser(): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** What a page reported while a test drove it. */
export interface PageProblems {
  csp: string[];
  errors: string[];
}

/** A fresh browser context (own cookies) at 1280×720 that records CSP violations and errors. */
export async function openPage(
  browser: Browser,
  baseURL: string,
  o: { colorScheme?: "light" | "dark" } = {},
): Promise<{ context: BrowserContext; page: Page; problems: PageProblems }> {
  const context = await browser.newContext({
    baseURL,
    viewport: { width: 1280, height: 720 },
    colorScheme: o.colorScheme ?? "light",
    locale: "en-US",
    timezoneId: "UTC",
  });
  const problems: PageProblems = { csp: [], errors: [] };
  await context.exposeBinding("__reportCsp", (_source, text: string) => {
    problems.csp.push(text);
  });
  // Added through the DevTools protocol, so the page's own CSP does not apply to it.
  await context.addInitScript({
    content: `document.addEventListener("securitypolicyviolation", (e) =>
      globalThis.__reportCsp(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber));`,
  });
  const page = await context.newPage();
  page.on("pageerror", (err) => problems.errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const t = msg.text();
    if (/Content Security Policy/i.test(t)) problems.csp.push(t);
    // Failed API calls the test provoked on purpose log as resource errors; keep the rest.
    else if (!/Failed to load resource/.test(t)) problems.errors.push(`console: ${t}`);
  });
  return { context, page, problems };
}

let axeSource: string | undefined;

/** Runs axe-core (WCAG 2 A/AA and best practices) and returns its violations as text. */
export async function axeViolations(page: Page, exclude: string[] = []): Promise<string[]> {
  axeSource ??= (axe as unknown as { source: string }).source;
  const present = await page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe);
  // Injected through the DevTools protocol: the page's CSP (no inline script) still holds.
  if (present === "undefined") await page.evaluate(`${axeSource}\n;0`);
  const results = await page.evaluate(async (excluded) => {
    // deno-lint-ignore no-explicit-any
    const axe = (globalThis as any).axe;
    const r = await axe.run({ exclude: excluded.map((s: string) => [s]) }, {
      runOnly: {
        type: "tag",
        values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
      },
    });
    return r.violations.map((v: {
      id: string;
      help: string;
      nodes: { target: string[]; html: string; any: { message: string }[] }[];
    }) =>
      `${v.id}: ${v.help} — ${
        v.nodes.slice(0, 3).map((n) =>
          `${n.target.join(" ")} ${n.html.slice(0, 160)} (${n.any[0]?.message ?? ""})`
        ).join(" | ")
      }`
    );
  }, exclude);
  return results as string[];
}

/** The TOTP code an authenticator app shows for `secret`, `steps` periods from now. */
export function totpCode(secret: string, steps = 0): string {
  const totp = new OTPAuth.TOTP({
    secret: OTPAuth.Secret.fromBase32(secret.replace(/\s+/g, "")),
    digits: 6,
    period: 30,
    algorithm: "SHA1",
  });
  return totp.generate({ timestamp: Date.now() + steps * 30_000 });
}

/** Where screenshots go: `BOREALIS_CONSOLE_SCREENSHOTS` (e.g. docs/console), else a temp dir. */
export function screenshotDir(): string {
  const dir = Deno.env.get("BOREALIS_CONSOLE_SCREENSHOTS") ??
    join(Deno.env.get("TMPDIR") ?? "/tmp", "borealis-console-screenshots");
  Deno.mkdirSync(dir, { recursive: true });
  return dir;
}

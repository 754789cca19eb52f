/**
 * Builds the console's single-page app from `ui/` with Deno's own bundler (`deno bundle`,
 * esbuild inside): minified ES modules — the entry renamed after its content hash, one
 * chunk per page (the bundler names chunks after their content) — and an
 * `index.html` that loads it. Nothing is committed: the first start builds, and the result
 * is kept under a folder named after a hash of every input (the sources, both `deno.json`
 * files, `deno.lock` and the Deno version), so a restart with unchanged sources reuses it
 * and an upgrade never serves a stale bundle.
 *
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Bumped when the build steps themselves change, so old outputs are not reused. */
const BUILD_FORMAT = "2";

/** One file of the built console. */
export interface ConsoleAsset {
  /** URL path, e.g. `/assets/main-1a2b3c4d.js` or `/index.html`. */
  path: string;
  type: string;
  body: Uint8Array;
  /** The same bytes gzip-compressed (served when the browser accepts gzip). */
  gzip: Uint8Array;
  /** Hash-named: cacheable for a year. */
  immutable: boolean;
}

/** A finished build. */
export interface ConsoleBuild {
  /** Hash of the inputs (the cache folder's name). */
  hash: string;
  /** By URL path. */
  assets: Map<string, ConsoleAsset>;
  /** True when this process ran the bundler (false: reused from the cache). */
  built: boolean;
  /** How long building or loading took. */
  ms: number;
}

/** Options of {@link buildConsole}. */
export interface BuildOptions {
  /** Where finished builds are kept (one folder per input hash). */
  cacheDir: string;
  /** The `ui/` folder (default: beside this file). */
  uiDir?: string;
  /** The folder holding the root `deno.json` and `deno.lock`. */
  projectRoot?: string;
  /** Give up on the bundler after this long. */
  timeoutMs?: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
};

const typeOf = (name: string) =>
  TYPES[name.slice(name.lastIndexOf("."))] ?? "application/octet-stream";

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const d = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await listFiles(p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

/**
 * The hash of everything the bundle depends on. Test files are left out: they never reach
 * the bundle, and editing one should not cost a rebuild.
 */
export async function inputHash(uiDir: string, projectRoot: string): Promise<string> {
  const files = (await listFiles(uiDir))
    .filter((f) => !/_test\.tsx?$/.test(f))
    .sort();
  const parts: string[] = [`format ${BUILD_FORMAT}`, `deno ${Deno.version.deno}`];
  for (const f of [...files, join(projectRoot, "deno.json"), join(projectRoot, "deno.lock")]) {
    let content: Uint8Array;
    try {
      content = await Deno.readFile(f);
    } catch {
      continue; // no lock file yet
    }
    parts.push(`${relative(projectRoot, f)} ${await sha256Hex(content)}`);
  }
  return (await sha256Hex(parts.join("\n"))).slice(0, 24);
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads a finished build folder into memory. */
async function load(dir: string, hash: string, built: boolean, started: number) {
  const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json"))) as {
    files: Array<{ path: string; file: string; immutable: boolean }>;
  };
  const assets = new Map<string, ConsoleAsset>();
  for (const f of manifest.files) {
    const body = await Deno.readFile(join(dir, f.file));
    assets.set(f.path, {
      path: f.path,
      type: typeOf(f.file),
      body,
      gzip: await gzip(body),
      immutable: f.immutable,
    });
  }
  return { hash, assets, built, ms: Math.round(performance.now() - started) };
}

/** Runs `deno bundle` into `out`; throws with the bundler's own message on failure. */
async function bundle(entry: string, out: string, projectRoot: string, timeoutMs: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--minify",
      // Each page is its own chunk (pages.tsx imports them lazily): the first visit loads
      // the shell and one page, not every page and every library.
      "--code-splitting",
      "--outdir",
      out,
      entry,
    ],
    cwd: projectRoot,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  const { code, stderr, stdout } = await child.output().finally(() => clearTimeout(timer));
  if (code !== 0) {
    const text = new TextDecoder().decode(stderr) + new TextDecoder().decode(stdout);
    // The bundler's stack backtrace helps nobody reading the engine log.
    const message = text.split("\nStack backtrace:")[0]!.trim().slice(-4000);
    throw new Error(`deno bundle failed (exit ${code}): ${message || "no output"}`);
  }
}

/**
 * Builds the console, or loads the build of the same inputs from `cacheDir`. Safe to run
 * from several processes at once: each bundles into its own temporary folder and the
 * first to rename it into place wins.
 */
export async function buildConsole(o: BuildOptions): Promise<ConsoleBuild> {
  const started = performance.now();
  const uiDir = o.uiDir ?? join(HERE, "ui");
  const projectRoot = o.projectRoot ?? join(HERE, "..", "..");
  const hash = await inputHash(uiDir, projectRoot);
  const dir = join(o.cacheDir, hash);
  if (await exists(join(dir, "manifest.json"))) return await load(dir, hash, false, started);

  await Deno.mkdir(o.cacheDir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: o.cacheDir, prefix: ".build-" });
  try {
    await bundle(join(uiDir, "main.tsx"), join(tmp, "raw"), projectRoot, o.timeoutMs ?? 180_000);
    await Deno.mkdir(join(tmp, "assets"));
    // Chunks are named by the bundler after their content hash already; the entry is
    // renamed after its own hash. They import each other by relative path, so they
    // stay together in one folder.
    const files: Array<{ path: string; file: string; immutable: boolean }> = [
      { path: "/index.html", file: "index.html", immutable: false },
    ];
    let jsName = "";
    // Stylesheets the sources import (the terminal's) come out of the bundler as main.css.
    let cssName: string | undefined;
    for await (const e of Deno.readDir(join(tmp, "raw"))) {
      if (!e.isFile || !/\.(js|css)$/.test(e.name)) continue;
      const body = await Deno.readFile(join(tmp, "raw", e.name));
      const entry = e.name === "main.js" || e.name === "main.css";
      const name = entry
        ? `main-${(await sha256Hex(body)).slice(0, 12)}.${e.name.endsWith(".css") ? "css" : "js"}`
        : e.name;
      if (e.name === "main.js") jsName = name;
      if (e.name === "main.css") cssName = name;
      await Deno.rename(join(tmp, "raw", e.name), join(tmp, "assets", name));
      files.push({ path: `/assets/${name}`, file: `assets/${name}`, immutable: true });
    }
    if (!jsName) throw new Error("deno bundle wrote no main.js");
    const favicon = await Deno.readFile(join(uiDir, "favicon.svg"));
    const iconName = `favicon-${(await sha256Hex(favicon)).slice(0, 12)}.svg`;
    await Deno.writeFile(join(tmp, "assets", iconName), favicon);
    files.push({ path: `/assets/${iconName}`, file: `assets/${iconName}`, immutable: true });
    let html = (await Deno.readTextFile(join(uiDir, "index.html")))
      .replace("%SCRIPT%", `/assets/${jsName}`)
      .replace("%ICON%", `/assets/${iconName}`);
    if (cssName) {
      html = html.replace(
        "</head>",
        `  <link rel="stylesheet" href="/assets/${cssName}">\n  </head>`,
      );
    }
    await Deno.writeTextFile(join(tmp, "index.html"), html);
    await Deno.remove(join(tmp, "raw"), { recursive: true });
    await Deno.writeTextFile(join(tmp, "manifest.json"), JSON.stringify({ hash, files }));
    try {
      await Deno.rename(tmp, dir);
    } catch {
      // Another process finished the same build first; its result is identical.
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
  await prune(o.cacheDir, hash);
  return await load(dir, hash, true, started);
}

/** Removes builds of other inputs (kept one day, in case another process still serves one). */
async function prune(cacheDir: string, keep: string): Promise<void> {
  const cutoff = Date.now() - 86_400_000;
  for await (const e of Deno.readDir(cacheDir)) {
    if (!e.isDirectory || e.name === keep) continue;
    const p = join(cacheDir, e.name);
    try {
      const info = await Deno.stat(p);
      if ((info.mtime?.getTime() ?? 0) < cutoff) await Deno.remove(p, { recursive: true });
    } catch { /* raced with another process */ }
  }
}

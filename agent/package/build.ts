/**
 * `deno task agent:package`: builds the agent packages the engine serves.
 *
 *   deno task agent:package --version 1.0.0 [--channel stable|beta|none]
 *       [--platforms linux-x64,…] [--entry agent/main.ts] [--out DIR] [--force]
 *
 * A package is, per platform: that platform's Deno runtime (the npm package pinned in
 * deno.json, fetched through Deno's npm cache, which checks the registry's integrity
 * hash against deno.lock), the agent bundled into one file (`deno bundle`), the service
 * files (systemd unit, launchd plist, or the WinSW wrapper from the pinned node-windows
 * package and its XML), every file gzip-compressed, and one manifest listing them all
 * (agent/updater/manifest.ts). It is written to `<data dir>/agent_packages/<version>/`
 * (BOREALIS_DATA_DIR, default `.data`); the engine's agent_updates plugin finds it,
 * signs the manifest with its code-signing key and serves it. Compressed runtimes are
 * cached in `agent_packages/.cache/` (or BOREALIS_AGENT_PACKAGE_CACHE), so a second
 * build takes seconds.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import {
  formatManifest,
  type Manifest,
  type ManifestFile,
  type Platform,
  PLATFORMS,
  sha256File,
  VERSION,
} from "../updater/manifest.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PACKAGE_DIR = join(ROOT, "agent/package");
const SERVICE_FILES = join(ROOT, "agent/service/files");

/** The npm package of each platform's Deno runtime (versions pinned in deno.json). */
export const RUNTIME_PACKAGES: Record<Platform, string> = {
  "linux-x64": "@deno/linux-x64-glibc",
  "linux-arm64": "@deno/linux-arm64-glibc",
  "darwin-x64": "@deno/darwin-x64",
  "darwin-arm64": "@deno/darwin-arm64",
  "windows-x64": "@deno/win32-x64",
};

/** The npm package that ships WinSW (bin/winsw/winsw.exe, MIT). */
export const WINSW_PACKAGE = "node-windows";

/** Service files per OS (from agent/service/files). */
const SERVICE_FILE: Record<string, string[]> = {
  linux: ["borealis-agent.service"],
  darwin: ["com.borealis.agent.plist"],
  windows: ["borealis-agent-service.xml"],
};

interface Pinned {
  spec: string;
  name: string;
  version: string;
  integrity: string;
}

async function pinned(name: string): Promise<Pinned> {
  const denoJson = JSON.parse(await Deno.readTextFile(join(PACKAGE_DIR, "deno.json")));
  const spec = denoJson.imports?.[name] as string | undefined;
  const m = spec && /^npm:(@?[^@]+)@(\d[^/]*)$/.exec(spec);
  if (!m) {
    throw new Error(`${name} is not pinned as npm:${name}@<version> in agent/package/deno.json`);
  }
  return { spec, name: m[1]!, version: m[2]!, integrity: await lockIntegrity(m[1]!, m[2]!) };
}

async function lockIntegrity(name: string, version: string): Promise<string> {
  try {
    const lock = JSON.parse(await Deno.readTextFile(join(PACKAGE_DIR, "deno.lock")));
    return lock.npm?.[`${name}@${version}`]?.integrity ?? "unknown";
  } catch {
    return "unknown";
  }
}

let npmCache: string | undefined;
async function packageDir(p: Pinned): Promise<string> {
  // Importing the package's package.json makes Deno fetch the package into its npm
  // cache, checking the registry's integrity (and deno.lock's) on the way. The
  // specifier is computed so that no module graph pulls five runtimes by accident.
  const spec = [p.name, "package.json"].join("/");
  const json = await import(spec, { with: { type: "json" } });
  if (json.default.version !== p.version) throw new Error(`${p.name}: got ${json.default.version}`);
  if (!npmCache) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
    })
      .output();
    npmCache = JSON.parse(new TextDecoder().decode(out.stdout)).npmCache as string;
  }
  const dir = join(npmCache, "registry.npmjs.org", p.name, p.version);
  await Deno.stat(dir);
  // The lock records the integrity once the package was fetched through it.
  p.integrity = await lockIntegrity(p.name, p.version);
  return dir;
}

/** gzips `from` into `to`, streaming; returns both hashes and sizes. */
async function gzipFile(
  from: string,
  to: string,
): Promise<{ sha256: string; size: number; gz_sha256: string; gz_size: number }> {
  const plain = createHash("sha256");
  const gz = createHash("sha256");
  let size = 0;
  let gzSize = 0;
  await Deno.mkdir(dirname(to), { recursive: true });
  const src = await Deno.open(from);
  const dst = await Deno.open(`${to}.tmp`, { write: true, create: true, truncate: true });
  await src.readable
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(c, ctl) {
          plain.update(c);
          size += c.length;
          ctl.enqueue(c);
        },
      }),
    )
    .pipeThrough(
      new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    )
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(c, ctl) {
          gz.update(c);
          gzSize += c.length;
          ctl.enqueue(c);
        },
      }),
    )
    .pipeTo(dst.writable);
  await Deno.rename(`${to}.tmp`, to);
  return { sha256: plain.digest("hex"), size, gz_sha256: gz.digest("hex"), gz_size: gzSize };
}

/** Options of {@link buildPackages}. */
export interface BuildOptions {
  version: string;
  platforms?: readonly Platform[];
  /** The agent's entry module (default agent/main.ts). */
  entry?: string;
  /** Output root (default `<data dir>/agent_packages`). */
  out?: string;
  channel?: "stable" | "beta" | "none";
  force?: boolean;
  log?: (line: string) => void;
}

/** What was built. */
export interface BuildResult {
  dir: string;
  manifest: Manifest;
  /** Per platform: files and total bytes, plain and compressed. */
  sizes: Record<string, { bytes: number; gz_bytes: number }>;
}

/** The default output root: `<BOREALIS_DATA_DIR or .data>/agent_packages`. */
export function defaultOutput(): string {
  return join(Deno.env.get("BOREALIS_DATA_DIR") ?? join(ROOT, ".data"), "agent_packages");
}

/** Builds the packages of one version. */
export async function buildPackages(o: BuildOptions): Promise<BuildResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  if (!VERSION.test(o.version)) {
    throw new Error(`--version must look like 1.2.3 (got ${o.version})`);
  }
  const platforms = o.platforms ?? PLATFORMS;
  const outRoot = o.out ?? defaultOutput();
  const dir = join(outRoot, o.version);
  try {
    await Deno.stat(join(dir, "manifest.txt"));
    if (!o.force) {
      throw new Error(`version ${o.version} exists in ${outRoot} (use --force to rebuild)`);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const work = `${dir}.building-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(work, { recursive: true });
  const cache = Deno.env.get("BOREALIS_AGENT_PACKAGE_CACHE") || join(outRoot, ".cache");
  await Deno.mkdir(cache, { recursive: true });
  try {
    const bundle = join(work, "agent.js");
    const entry = resolve(o.entry ?? join(ROOT, "agent/main.ts"));
    const b = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "--no-config", "-o", bundle, entry],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    if (!b.success) throw new Error(`deno bundle failed: ${new TextDecoder().decode(b.stderr)}`);
    log(`bundled ${basename(entry)} → agent.js (${(await Deno.stat(bundle)).size} bytes)`);

    const manifest: Manifest = {
      version: o.version,
      created: new Date().toISOString(),
      runtimes: [],
      files: [],
    };
    const sizes: BuildResult["sizes"] = {};
    const add = async (
      platform: string,
      name: string,
      source: string,
      mode: string,
      cacheKey?: string,
    ) => {
      const gzPath = join(work, platform, `${name}.gz`);
      let info: { sha256: string; size: number; gz_sha256: string; gz_size: number };
      const cached = cacheKey ? join(cache, `${cacheKey}.gz`) : undefined;
      const meta = cached ? `${cached}.json` : undefined;
      const hit = meta && await Deno.readTextFile(meta).then(JSON.parse).catch(() => null);
      if (cached && hit) {
        await Deno.mkdir(dirname(gzPath), { recursive: true });
        await Deno.copyFile(cached, gzPath);
        const check = await sha256File(gzPath);
        if (check.sha256 !== hit.gz_sha256) throw new Error(`cache entry ${cached} is damaged`);
        info = hit;
      } else {
        info = await gzipFile(source, gzPath);
        if (cached) {
          // Atomic: builds running in parallel may share one cache.
          const tmp = `${cached}.${crypto.randomUUID().slice(0, 8)}`;
          await Deno.copyFile(gzPath, tmp);
          await Deno.rename(tmp, cached);
          await Deno.writeTextFile(`${tmp}.json`, JSON.stringify(info));
          await Deno.rename(`${tmp}.json`, meta!);
        }
      }
      manifest.files.push({ platform, name, mode, ...info } satisfies ManifestFile);
      const s = sizes[platform] ??= { bytes: 0, gz_bytes: 0 };
      s.bytes += info.size;
      s.gz_bytes += info.gz_size;
    };
    for (const platform of platforms) {
      const os = platform.split("-")[0]!;
      const runtime = await pinned(RUNTIME_PACKAGES[platform]);
      const rdir = await packageDir(runtime);
      const exe = os === "windows" ? "deno.exe" : "deno";
      manifest.runtimes.push({
        platform,
        npm: `${runtime.name}@${runtime.version}`,
        integrity: runtime.integrity,
      });
      await add(platform, exe, join(rdir, exe), "755", `${platform}-deno-${runtime.version}`);
      await add(platform, "agent.js", bundle, "644");
      for (const f of SERVICE_FILE[os] ?? []) await add(platform, f, join(SERVICE_FILES, f), "644");
      if (os === "windows") {
        const winsw = await pinned(WINSW_PACKAGE);
        const wdir = await packageDir(winsw);
        manifest.runtimes.push({
          platform,
          npm: `${winsw.name}@${winsw.version}`,
          integrity: winsw.integrity,
        });
        await add(platform, "winsw.exe", join(wdir, "bin/winsw/winsw.exe"), "755");
        await add(platform, "winsw.exe.config", join(wdir, "bin/winsw/winsw.exe.config"), "644");
        await add(platform, "winsw-license.txt", join(wdir, "LICENSE"), "644");
      }
      log(
        `${platform}: ${(sizes[platform]!.gz_bytes / 1e6).toFixed(1)} MB to download, ${
          (sizes[platform]!.bytes / 1e6).toFixed(1)
        } MB installed`,
      );
    }
    await Deno.remove(bundle);
    await Deno.writeTextFile(join(work, "manifest.txt"), formatManifest(manifest));
    await Deno.writeTextFile(
      join(work, "release.json"),
      JSON.stringify({ channel: o.channel ?? "none", built_at: manifest.created }, null, 2) + "\n",
    );
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(work, dir);
    log(`agent ${o.version} packaged in ${dir}`);
    return { dir, manifest, sizes };
  } catch (err) {
    await Deno.remove(work, { recursive: true }).catch(() => {});
    throw err;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      version: { type: "string" },
      channel: { type: "string" },
      platforms: { type: "string" },
      entry: { type: "string" },
      out: { type: "string" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  const usage = "Usage: deno task agent:package --version 1.2.3 [--channel stable|beta|none] " +
    "[--platforms linux-x64,windows-x64,…] [--entry agent/main.ts] [--out DIR] [--force]";
  if (values.help) {
    console.log(usage);
    Deno.exit(0);
  }
  const platforms = values.platforms?.split(",").map((s) => s.trim()) as Platform[] | undefined;
  if (
    !values.version || platforms?.some((p) => !PLATFORMS.includes(p)) ||
    (values.channel && !["stable", "beta", "none"].includes(values.channel))
  ) {
    console.error(usage);
    Deno.exit(2);
  }
  try {
    await buildPackages({
      version: values.version,
      platforms,
      entry: values.entry,
      out: values.out,
      channel: values.channel as BuildOptions["channel"],
      force: values.force,
    });
  } catch (err) {
    console.error(`agent:package: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}

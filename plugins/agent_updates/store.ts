/**
 * The package store: the folder `deno task agent:package` writes
 * (`<data dir>/agent_packages/<version>/`: manifest.txt, release.json and one folder of
 * gzip files per platform). Reads manifests, checks files against them and opens files
 * for download. With several engine instances on several machines, each needs the same
 * folder (a shared volume, or the packaging task run on each).
 *
 * @module
 */
import { join } from "node:path";
import {
  type Manifest,
  parseManifest,
  PLATFORMS,
  sha256File,
  sha256Hex,
  VERSION,
} from "../../agent/updater/manifest.ts";

/** A package found on disk. */
export interface StoredPackage {
  version: string;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  manifestSha256: string;
  channel: "stable" | "beta" | "none";
}

const FILE = /^[A-Za-z0-9._-]{1,100}$/;

/** Reads and serves packages under one folder. */
export class PackageStore {
  readonly #manifests = new Map<string, Manifest>();

  constructor(readonly dir: string) {}

  /** Versions with a manifest on disk. */
  async versions(): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (!e.isDirectory || !VERSION.test(e.name)) continue;
        try {
          await Deno.stat(join(this.dir, e.name, "manifest.txt"));
          out.push(e.name);
        } catch { /* still building */ }
      }
    } catch { /* no packages yet */ }
    return out;
  }

  /** Loads one package and checks every file it lists (size and SHA-256 of the .gz). */
  async load(version: string, verifyFiles = true): Promise<StoredPackage> {
    if (!VERSION.test(version)) throw new Error(`bad version ${version}`);
    const base = join(this.dir, version);
    const manifestBytes = await Deno.readFile(join(base, "manifest.txt"));
    const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
    if (manifest.version !== version) {
      throw new Error(`${base}: manifest names ${manifest.version}`);
    }
    if (verifyFiles) {
      for (const f of manifest.files) {
        const got = await sha256File(join(base, f.platform, `${f.name}.gz`));
        if (got.sha256 !== f.gz_sha256 || got.size !== f.gz_size) {
          throw new Error(`${version}/${f.platform}/${f.name}.gz does not match its manifest`);
        }
      }
    }
    let channel: StoredPackage["channel"] = "none";
    try {
      const rel = JSON.parse(await Deno.readTextFile(join(base, "release.json")));
      if (rel.channel === "stable" || rel.channel === "beta") channel = rel.channel;
    } catch { /* none */ }
    this.#manifests.set(version, manifest);
    return { version, manifest, manifestBytes, manifestSha256: sha256Hex(manifestBytes), channel };
  }

  /** SHA-256 of a version's manifest on disk, or null. */
  async manifestSha256(version: string): Promise<string | null> {
    const bytes = await this.meta(version, "manifest.txt");
    return bytes ? sha256Hex(bytes) : null;
  }

  /** Writes the engine's signature beside the manifest. */
  async writeSignature(version: string, signature: string): Promise<void> {
    await Deno.writeTextFile(join(this.dir, version, "manifest.sig"), signature + "\n");
  }

  /** The manifest of a version (cached). */
  async manifest(version: string): Promise<Manifest | null> {
    if (!VERSION.test(version)) return null;
    const known = this.#manifests.get(version);
    if (known) return known;
    // (A rebuilt version is loaded again by scan(), which refreshes this cache.)
    try {
      return (await this.load(version, false)).manifest;
    } catch {
      return null;
    }
  }

  /** Opens a package file for download, or null when the manifest does not list it. */
  async open(
    version: string,
    platform: string,
    file: string,
  ): Promise<{ file: Deno.FsFile; size: number } | null> {
    if (!PLATFORMS.includes(platform as never) || !file.endsWith(".gz")) return null;
    const name = file.slice(0, -3);
    if (!FILE.test(name)) return null;
    const m = await this.manifest(version);
    if (!m?.files.some((f) => f.platform === platform && f.name === name)) return null;
    try {
      const path = join(this.dir, version, platform, file);
      const f = await Deno.open(path);
      return { file: f, size: (await f.stat()).size };
    } catch {
      return null;
    }
  }

  /** Raw bytes of manifest.txt or manifest.sig. */
  async meta(version: string, name: "manifest.txt" | "manifest.sig"): Promise<Uint8Array | null> {
    if (!VERSION.test(version)) return null;
    try {
      return await Deno.readFile(join(this.dir, version, name));
    } catch {
      return null;
    }
  }
}

/**
 * The package manifest: a small line-oriented text file (so the shell and PowerShell
 * installers can read it without a JSON parser) that names an agent version, the Deno
 * runtime each platform ships with (npm package and its registry integrity) and every
 * file of every platform with its mode, SHA-256 and size, plain and gzip-compressed:
 *
 * ```text
 * borealis-agent-manifest 1
 * version 1.4.0
 * created 2026-01-05T12:00:00.000Z
 * runtime linux-x64 @deno/linux-x64-glibc@2.9.6 sha512-…
 * file linux-x64 deno 755 <sha256> <bytes> <gz sha256> <gz bytes>
 * file linux-x64 agent.js 644 …
 * ```
 *
 * The engine signs the exact bytes with its code-signing key (Ed25519, base64 in
 * `manifest.sig`); agents verify that signature with the key they pinned at enrollment
 * before they trust any hash in it. Shared by the packaging task, the engine and the agent.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Platforms a package is built for. */
export const PLATFORMS = [
  "linux-x64",
  "linux-arm64",
  "darwin-x64",
  "darwin-arm64",
  "windows-x64",
] as const;

/** One platform id. */
export type Platform = typeof PLATFORMS[number];

/** One file of a platform. */
export interface ManifestFile {
  platform: string;
  name: string;
  /** Octal mode as written ("755"). */
  mode: string;
  sha256: string;
  size: number;
  gz_sha256: string;
  gz_size: number;
}

/** A parsed manifest. */
export interface Manifest {
  version: string;
  created: string;
  runtimes: { platform: string; npm: string; integrity: string }[];
  files: ManifestFile[];
}

/** Versions look like semver: 1.2.3, 1.2.3-beta.1, 1.2.3+build.5. */
export const VERSION =
  /^\d{1,6}\.\d{1,6}\.\d{1,6}(?:-[0-9A-Za-z.-]{1,40})?(?:\+[0-9A-Za-z.-]{1,40})?$/;
const NAME = /^[A-Za-z0-9._-]{1,100}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** The platform of the running agent. */
export function currentPlatform(): Platform {
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  const os = Deno.build.os === "windows"
    ? "windows"
    : Deno.build.os === "darwin"
    ? "darwin"
    : "linux";
  return `${os}-${arch}` as Platform;
}

/** Serializes a manifest (the signed bytes are exactly this text, UTF-8). */
export function formatManifest(m: Manifest): string {
  const lines = ["borealis-agent-manifest 1", `version ${m.version}`, `created ${m.created}`];
  for (const r of m.runtimes) lines.push(`runtime ${r.platform} ${r.npm} ${r.integrity}`);
  for (const f of m.files) {
    lines.push(
      `file ${f.platform} ${f.name} ${f.mode} ${f.sha256} ${f.size} ${f.gz_sha256} ${f.gz_size}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Parses and validates manifest text; throws with the offending line. */
export function parseManifest(text: string): Manifest {
  const lines = text.split("\n").filter((l) => l.length);
  if (lines[0] !== "borealis-agent-manifest 1") throw new Error("not a borealis agent manifest");
  const m: Manifest = { version: "", created: "", runtimes: [], files: [] };
  for (const line of lines.slice(1)) {
    const c = line.split(" ");
    const bad = () => new Error(`bad manifest line: ${line.slice(0, 120)}`);
    switch (c[0]) {
      case "version":
        if (c.length !== 2 || !VERSION.test(c[1]!)) throw bad();
        m.version = c[1]!;
        break;
      case "created":
        if (c.length !== 2 || Number.isNaN(Date.parse(c[1]!))) throw bad();
        m.created = c[1]!;
        break;
      case "runtime":
        if (c.length !== 4) throw bad();
        m.runtimes.push({ platform: c[1]!, npm: c[2]!, integrity: c[3]! });
        break;
      case "file": {
        if (c.length !== 8 || !NAME.test(c[1]!) || !NAME.test(c[2]!) || !/^[0-7]{3}$/.test(c[3]!)) {
          throw bad();
        }
        if (!HEX64.test(c[4]!) || !HEX64.test(c[6]!)) throw bad();
        const size = Number(c[5]);
        const gz = Number(c[7]);
        if (!Number.isSafeInteger(size) || !Number.isSafeInteger(gz) || size < 0 || gz < 0) {
          throw bad();
        }
        m.files.push({
          platform: c[1]!,
          name: c[2]!,
          mode: c[3]!,
          sha256: c[4]!,
          size,
          gz_sha256: c[6]!,
          gz_size: gz,
        });
        break;
      }
      default:
        throw bad();
    }
  }
  if (!m.version || !m.created) throw new Error("manifest lacks version or created");
  return m;
}

/** The files of one platform (throws when the manifest has none). */
export function platformFiles(m: Manifest, platform: string): ManifestFile[] {
  const files = m.files.filter((f) => f.platform === platform);
  if (!files.some((f) => f.name === "agent.js")) {
    throw new Error(`version ${m.version} has no package for ${platform}`);
  }
  return files;
}

const b64 = (text: string): Uint8Array =>
  Uint8Array.from(atob(text.trim().replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/** Verifies a manifest signature (base64 Ed25519) with a base64 SPKI public key. */
export async function verifyManifestSignature(
  manifest: Uint8Array,
  signature: string,
  publicKeySpki: string,
): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey(
      "spki",
      b64(publicKeySpki) as BufferSource,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      { name: "Ed25519" },
      key,
      b64(signature) as BufferSource,
      manifest as BufferSource,
    );
  } catch {
    return false;
  }
}

/** Hex SHA-256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Hex SHA-256 and size of a file, streamed (packages hold 100 MB runtimes). */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  using file = await Deno.open(path);
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest("hex"), size };
}

/**
 * Downloads one gzip-compressed file, decompresses it into `dest` and checks both
 * hashes and sizes against the manifest while streaming; a mismatch removes `dest`.
 */
export async function downloadVerified(
  url: string,
  f: ManifestFile,
  dest: string,
  fetcher: typeof fetch = fetch,
): Promise<void> {
  const res = await fetcher(url);
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new Error(`download ${url}: HTTP ${res.status}`);
  }
  const gzHash = createHash("sha256");
  const plainHash = createHash("sha256");
  let gzSize = 0;
  let plainSize = 0;
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      gzHash.update(chunk);
      gzSize += chunk.length;
      ctl.enqueue(chunk);
    },
  });
  const count = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      plainHash.update(chunk);
      plainSize += chunk.length;
      if (plainSize > f.size) throw new Error(`${f.name} is larger than the manifest says`);
      ctl.enqueue(chunk);
    },
  });
  const mode = parseInt(f.mode, 8);
  try {
    const out = await Deno.open(dest, { write: true, create: true, truncate: true, mode });
    await res.body.pipeThrough(tap).pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    ).pipeThrough(count)
      .pipeTo(out.writable);
    const gz = gzHash.digest("hex");
    const plain = plainHash.digest("hex");
    if (gz !== f.gz_sha256 || gzSize !== f.gz_size) {
      throw new Error(`${f.name}: compressed file does not match the manifest`);
    }
    if (plain !== f.sha256 || plainSize !== f.size) {
      throw new Error(`${f.name}: file does not match the manifest`);
    }
    if (Deno.build.os !== "windows") await Deno.chmod(dest, mode);
  } catch (err) {
    await Deno.remove(dest).catch(() => {});
    throw err;
  }
}

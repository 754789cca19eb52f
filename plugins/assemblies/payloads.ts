/**
 * The payload store: assembly content kept outside the database row, one folder per
 * payload GUID (`<root>/<payload guid>/payload.<ext>`). Writes are atomic (temporary
 * file, fsync, rename, fsync of the folder), so a crash leaves either the old file or
 * the new one, never half of one. Every read checks size and SHA-256 against what the
 * row recorded.
 *
 * @module
 */
import { join } from "node:path";
import { sha256Hex } from "./model.ts";

/** Why a payload could not be served. */
export type PayloadProblemKind = "missing" | "corrupt" | "unreadable";

/** A payload that is not what its row says it is. */
export class PayloadError extends Error {
  constructor(
    readonly kind: PayloadProblemKind,
    readonly payloadGuid: string,
    message: string,
  ) {
    super(message);
    this.name = "PayloadError";
  }
}

/** Size and hash of a written payload. */
export interface WrittenPayload {
  size: number;
  sha256: string;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const EXT = /^[a-z0-9]{1,8}$/;

/** Filesystem payload store rooted at `<data dir>/Assemblies/Payloads`. */
export class PayloadStore {
  constructor(readonly root: string) {}

  /** Path of a payload file; refuses anything that is not a GUID and a plain extension. */
  path(payloadGuid: string, ext: string): string {
    if (!GUID.test(payloadGuid)) throw new Error(`not a payload GUID: ${payloadGuid}`);
    if (!EXT.test(ext)) throw new Error(`not a payload extension: ${ext}`);
    return join(this.root, payloadGuid, `payload.${ext}`);
  }

  /** Writes a payload atomically and returns its size and SHA-256. */
  async write(payloadGuid: string, ext: string, bytes: Uint8Array): Promise<WrittenPayload> {
    const target = this.path(payloadGuid, ext);
    const dir = join(this.root, payloadGuid);
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${target}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
    } finally {
      file.close();
    }
    try {
      await Deno.rename(tmp, target);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
    await syncDir(dir);
    return { size: bytes.length, sha256: await sha256Hex(bytes) };
  }

  /**
   * Reads a payload and proves it is the recorded one. Throws {@link PayloadError}
   * (`missing`, `corrupt` or `unreadable`).
   */
  async read(
    payloadGuid: string,
    ext: string,
    expected: { sha256: string; size: number },
  ): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.path(payloadGuid, ext));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new PayloadError("missing", payloadGuid, `payload file payload.${ext} is missing`);
      }
      throw new PayloadError(
        "unreadable",
        payloadGuid,
        `payload file payload.${ext} cannot be read: ${err instanceof Error ? err.message : err}`,
      );
    }
    if (bytes.length !== expected.size) {
      throw new PayloadError(
        "corrupt",
        payloadGuid,
        `payload file payload.${ext} has ${bytes.length} bytes, expected ${expected.size}`,
      );
    }
    const actual = await sha256Hex(bytes);
    if (actual !== expected.sha256) {
      throw new PayloadError(
        "corrupt",
        payloadGuid,
        `payload file payload.${ext} SHA-256 ${actual.slice(0, 12)}… does not match the recorded ${
          expected.sha256.slice(0, 12)
        }…`,
      );
    }
    return bytes;
  }

  /**
   * Removes payload folders that nothing references and that have not changed for
   * `graceMs` (a folder written a moment ago may belong to a change not staged yet, or
   * to another engine sharing the data dir), and leftover temporary files of writes
   * that never finished. Returns the removed payload GUIDs.
   */
  async sweep(referenced: Set<string>, graceMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.root));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return removed;
      throw err;
    }
    const old = async (path: string) => {
      const info = await Deno.stat(path).catch(() => null);
      return !!info && now - (info.mtime?.getTime() ?? now) >= graceMs;
    };
    for (const e of entries) {
      if (!e.isDirectory || !GUID.test(e.name)) continue;
      const dir = join(this.root, e.name);
      if (!referenced.has(e.name)) {
        if (await old(dir)) {
          await this.remove(e.name);
          removed.push(e.name);
        }
        continue;
      }
      for await (const f of Deno.readDir(dir)) {
        if (f.isFile && f.name.includes(".tmp-") && await old(join(dir, f.name))) {
          await Deno.remove(join(dir, f.name)).catch(() => {});
        }
      }
    }
    return removed;
  }

  /** Removes a payload's folder (after the row that pointed at it is gone). */
  async remove(payloadGuid: string): Promise<void> {
    if (!GUID.test(payloadGuid)) return;
    await Deno.remove(join(this.root, payloadGuid), { recursive: true }).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
}

/** fsync a folder so a rename inside it survives a power cut (best effort). */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Some filesystems refuse fsync on folders; the rename itself is still atomic.
  }
}

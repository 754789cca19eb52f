/**
 * File transfers on the agent (the engine's side is plugins/terminal/transfers.ts).
 *
 * Download (`file_download` with a verified grant): the file is hashed first, its size
 * and SHA-256 announced (`file_meta`), then sent in chunks (`file_chunk`, with offsets)
 * while less than one window is unconfirmed (`file_ack`), and finished with `file_done`
 * carrying the SHA-256 of the bytes actually sent.
 *
 * Upload (`file_upload`): the bytes go to a temporary file beside the target
 * (`.<name>.borealis-<id>.part`, mode 0600), each chunk confirmed once written
 * (`file_written`); `file_commit` compares the size and SHA-256 of what was written with
 * the engine's, then renames the file over the target (keeping an existing file's mode,
 * else 0644). Any error or a `file_cancel` removes the temporary file.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { Frame } from "../protocol/socket.ts";
import { GrantError, type GrantVerifier } from "./grant.ts";
import { fromBase64, OffsetAssembler, toBase64 } from "./offsets.ts";

/** Options of {@link FileHost}. */
export interface FileOptions {
  send: (frame: Frame) => boolean;
  grants: GrantVerifier;
  emit?: (event: string, data: Record<string, unknown>) => void;
  notice?: (message: string) => void;
  /** A transfer with no frame from the engine for this long is abandoned (ms). */
  stallMs?: number;
  maxTransfers?: number;
}

interface Download {
  kind: "download";
  id: string;
  via: string;
  acked: number;
  wake: () => void;
  cancelled: boolean;
  touched: number;
}

interface Upload {
  kind: "upload";
  id: string;
  via: string;
  path: string;
  temp: string;
  file: Deno.FsFile;
  asm: OffsetAssembler;
  hash: ReturnType<typeof createHash>;
  written: number;
  chain: Promise<void>;
  failed?: { code: string; message: string };
  touched: number;
  mode: number;
}

type Transfer = Download | Upload;

/** Maps a file system error to a protocol error code. */
function codeOf(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "not_found";
  if (err instanceof Deno.errors.PermissionDenied) return "permission_denied";
  if (err instanceof Deno.errors.AlreadyExists) return "exists";
  if (err instanceof Deno.errors.IsADirectory) return "is_directory";
  return "io_error";
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function absolute(path: unknown): path is string {
  return typeof path === "string" && !path.includes("\0") &&
    (path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\"));
}

/** Transfers of one agent. */
export class FileHost {
  readonly #live = new Map<string, Transfer>();
  #timer?: ReturnType<typeof setInterval>;

  constructor(private readonly o: FileOptions) {}

  /** Transfers running now. */
  get size(): number {
    return this.#live.size;
  }

  /** Handles a file frame; false when the frame is something else. */
  onFrame(f: Frame): boolean {
    const d = (f.data ?? {}) as Record<string, unknown>;
    const t = this.#live.get(String(d.transfer_id));
    switch (f.type) {
      case "file_download":
        void this.#download(d);
        return true;
      case "file_upload":
        void this.#upload(d);
        return true;
      case "file_ack":
        if (t?.kind === "download") {
          t.acked = Math.max(t.acked, Number(d.offset) || 0);
          t.touched = Date.now();
          t.wake();
        }
        return true;
      case "file_data":
        if (t?.kind === "upload") this.#data(t, d);
        return true;
      case "file_commit":
        if (t?.kind === "upload") void this.#commit(t, d);
        return true;
      case "file_cancel":
        if (t) {
          void this.#abandon(t, "cancelled").then(() =>
            // Said once the temporary file is gone, so the engine can answer "nothing left".
            this.#error(t.via, t.id, "cancelled", "the transfer was cancelled")
          );
        }
        return true;
    }
    return false;
  }

  /** Starts the stall check. */
  start(everyMs = 10_000): void {
    this.#timer ??= setInterval(() => {
      const stale = Date.now() - (this.o.stallMs ?? 120_000);
      for (const t of this.#live.values()) if (t.touched < stale) void this.#abandon(t, "stalled");
    }, everyMs);
  }

  /** Abandons every transfer (agent stopping). */
  async closeAll(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all([...this.#live.values()].map((t) => this.#abandon(t, "agent stopping")));
  }

  async #abandon(t: Transfer, why: string): Promise<void> {
    if (!this.#live.has(t.id)) return;
    this.#live.delete(t.id);
    if (t.kind === "download") {
      t.cancelled = true;
      t.wake();
    } else {
      await t.chain;
      try {
        t.file.close();
      } catch { /* closed */ }
      await Deno.remove(t.temp).catch(() => {});
    }
    this.o.emit?.("file_transfer_ended", {
      transfer_id: t.id,
      kind: t.kind,
      ok: false,
      reason: why,
    });
  }

  #error(via: string, id: string, code: string, text: string): void {
    this.o.send({ type: "file_error", data: { transfer_id: id, via, code, message: text } });
  }

  /** Verifies a grant; on refusal answers (when the grant says where) and returns null. */
  async #grant(d: Record<string, unknown>, purpose: "file_download" | "file_upload") {
    let hint: { id?: string; via?: string } = {};
    try {
      hint = JSON.parse(String(d.grant ?? "{}"));
    } catch { /* no reply address */ }
    try {
      const g = await this.o.grants.verify(d, purpose);
      if (this.#live.size >= (this.o.maxTransfers ?? 8)) {
        this.#error(g.via, g.id, "busy", "too many file transfers on this device");
        return null;
      }
      if (!absolute(g.path)) {
        this.#error(g.via, g.id, "invalid_path", "the path must be absolute");
        return null;
      }
      return g;
    } catch (err) {
      const code = err instanceof GrantError ? err.code : "grant_invalid";
      this.o.emit?.("file_transfer_refused", { transfer_id: hint.id ?? null, reason: code });
      if (typeof hint.id === "string" && typeof hint.via === "string") {
        this.#error(hint.via, hint.id, code, `refused: ${code}`);
      }
      return null;
    }
  }

  async #download(d: Record<string, unknown>): Promise<void> {
    const g = await this.#grant(d, "file_download");
    if (!g) return;
    const path = g.path as string;
    const max = Number(g.max_bytes) || Infinity;
    const chunk = Math.min(1_048_576, Math.max(1024, Number(g.chunk) || 49_152));
    const windowBytes = Math.max(chunk, Number(g.window) || 1_048_576);
    const t: Download = {
      kind: "download",
      id: g.id,
      via: g.via,
      acked: 0,
      wake: () => {},
      cancelled: false,
      touched: Date.now(),
    };
    this.#live.set(t.id, t);
    this.o.notice?.(`remote file download by ${g.operator}: ${path} (transfer ${t.id})`);
    let file: Deno.FsFile | undefined;
    try {
      const st = await Deno.stat(path);
      if (st.isDirectory) {
        throw Object.assign(new Error("is a directory"), { protocolCode: "is_directory" });
      }
      if (!st.isFile) {
        throw Object.assign(new Error("not a regular file"), { protocolCode: "not_a_file" });
      }
      if (st.size > max) {
        throw Object.assign(new Error(`${st.size} bytes, more than the ${max} allowed`), {
          protocolCode: "too_large",
        });
      }
      const size = st.size;
      // First pass: the checksum the engine and the operator check the bytes against.
      const pre = createHash("sha256");
      file = await Deno.open(path, { read: true });
      const buf = new Uint8Array(chunk);
      for (let n; (n = await file.read(buf)) !== null;) pre.update(buf.subarray(0, n));
      file.close();
      file = undefined;
      this.o.send({
        type: "file_meta",
        data: { transfer_id: t.id, via: t.via, size, sha256: pre.digest("hex") },
      });
      const hash = createHash("sha256");
      file = await Deno.open(path, { read: true });
      let sent = 0;
      while (sent < size) {
        while (sent - t.acked >= windowBytes && !t.cancelled) {
          await new Promise<void>((r) => (t.wake = r));
        }
        if (t.cancelled) return;
        const want = Math.min(chunk, size - sent);
        const part = new Uint8Array(want);
        let got = 0;
        while (got < want) {
          const n = await file.read(part.subarray(got));
          if (n === null) break;
          got += n;
        }
        if (got === 0) {
          throw Object.assign(new Error("the file became shorter while it was sent"), {
            protocolCode: "file_changed",
          });
        }
        const bytes = part.subarray(0, got);
        hash.update(bytes);
        this.o.send({
          type: "file_chunk",
          data: { transfer_id: t.id, via: t.via, offset: sent, data: toBase64(bytes) },
        });
        sent += got;
      }
      this.o.send({
        type: "file_done",
        data: { transfer_id: t.id, via: t.via, size: sent, sha256: hash.digest("hex") },
      });
      this.o.emit?.("file_transfer_ended", {
        transfer_id: t.id,
        kind: "download",
        ok: true,
        bytes: sent,
      });
    } catch (err) {
      const code = (err as { protocolCode?: string }).protocolCode ?? codeOf(err);
      this.#error(t.via, t.id, code, message(err));
      this.o.emit?.("file_transfer_ended", {
        transfer_id: t.id,
        kind: "download",
        ok: false,
        reason: code,
      });
    } finally {
      try {
        file?.close();
      } catch { /* closed */ }
      this.#live.delete(t.id);
    }
  }

  async #upload(d: Record<string, unknown>): Promise<void> {
    const g = await this.#grant(d, "file_upload");
    if (!g) return;
    const path = g.path as string;
    const dir = dirname(path);
    const temp = join(dir, `.${basename(path)}.borealis-${g.id.slice(0, 8)}.part`);
    let mode = 0o644;
    try {
      const dirInfo = await Deno.stat(dir);
      if (!dirInfo.isDirectory) throw new Deno.errors.NotFound(`${dir} is not a folder`);
      const existing = await Deno.stat(path).catch((err) => {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      });
      if (existing?.isDirectory) {
        return this.#error(g.via, g.id, "is_directory", `${path} is a folder`);
      }
      if (existing && g.overwrite !== true) {
        return this.#error(g.via, g.id, "exists", `${path} exists (overwrite was not asked)`);
      }
      if (existing?.mode) mode = existing.mode & 0o7777;
      const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
      const t: Upload = {
        kind: "upload",
        id: g.id,
        via: g.via,
        path,
        temp,
        file,
        asm: new OffsetAssembler(0, Math.max(1_048_576, Number(g.window) || 0) * 2),
        hash: createHash("sha256"),
        written: 0,
        chain: Promise.resolve(),
        touched: Date.now(),
        mode,
      };
      this.#live.set(t.id, t);
      this.o.notice?.(`remote file upload by ${g.operator}: ${path} (transfer ${t.id})`);
      this.o.send({ type: "file_ready", data: { transfer_id: t.id, via: t.via } });
    } catch (err) {
      this.#error(g.via, g.id, codeOf(err), message(err));
    }
  }

  #data(t: Upload, d: Record<string, unknown>): void {
    t.touched = Date.now();
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(String(d.data));
    } catch {
      return;
    }
    const r = t.asm.push(Number(d.offset), bytes);
    if (r.overflow) t.failed ??= { code: "protocol", message: "chunks arrived out of window" };
    for (const part of r.ready) {
      t.chain = t.chain.then(async () => {
        if (t.failed) return;
        try {
          for (let at = 0; at < part.length;) at += await t.file.write(part.subarray(at));
          t.hash.update(part);
          t.written += part.length;
          this.o.send({
            type: "file_written",
            data: { transfer_id: t.id, via: t.via, offset: t.written },
          });
        } catch (err) {
          t.failed = { code: codeOf(err), message: message(err) };
          this.#error(t.via, t.id, t.failed.code, t.failed.message);
        }
      });
    }
  }

  async #commit(t: Upload, d: Record<string, unknown>): Promise<void> {
    await t.chain;
    if (!this.#live.has(t.id)) return;
    this.#live.delete(t.id);
    const digest = t.hash.digest("hex");
    try {
      if (t.failed) {
        throw Object.assign(new Error(t.failed.message), { protocolCode: t.failed.code });
      }
      if (t.written !== Number(d.size) || digest !== d.sha256) {
        throw Object.assign(
          new Error(
            `wrote ${t.written} bytes with SHA-256 ${digest}; the engine sent ${d.size} bytes with ${d.sha256}`,
          ),
          { protocolCode: "checksum_mismatch" },
        );
      }
      await t.file.syncData();
      t.file.close();
      if (Deno.build.os !== "windows") await Deno.chmod(t.temp, t.mode);
      await Deno.rename(t.temp, t.path);
      this.o.send({
        type: "file_done",
        data: { transfer_id: t.id, via: t.via, size: t.written, sha256: digest },
      });
      this.o.emit?.("file_transfer_ended", {
        transfer_id: t.id,
        kind: "upload",
        ok: true,
        bytes: t.written,
        path: t.path,
      });
    } catch (err) {
      try {
        t.file.close();
      } catch { /* closed */ }
      await Deno.remove(t.temp).catch(() => {});
      const code = (err as { protocolCode?: string }).protocolCode ?? codeOf(err);
      this.#error(t.via, t.id, code, message(err));
      this.o.emit?.("file_transfer_ended", {
        transfer_id: t.id,
        kind: "upload",
        ok: false,
        reason: code,
      });
    }
  }
}

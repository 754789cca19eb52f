/**
 * File transfers between an operator and a device, streamed through the engine in
 * chunks with flow control and checked with SHA-256 end to end.
 *
 * Download: the agent hashes the file, says its size and SHA-256 (`file_meta`), then
 * sends chunks while the engine has confirmed all but one window of them; the engine
 * confirms a chunk when the HTTP client has pulled it, so a slow client slows the agent
 * and no hop holds more than a window. The response carries the agent's checksum
 * (`X-Checksum-SHA256`, `Digest`); the engine hashes what it relays and ends the body
 * with an error instead of a clean end when the bytes differ from the announced hash
 * (a file that changed while it was read), so a client never takes a wrong file for a
 * good one.
 *
 * Upload: the request body is read only as fast as the agent writes (`file_written`);
 * the agent writes to a temporary file beside the target, and on `file_commit` compares
 * its own hash with the engine's, then renames the file into place. A checksum the
 * client declares (`X-Checksum-SHA256`) is compared before the commit; a mismatch leaves
 * nothing behind.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { z } from "@hono/zod-openapi";
import { fromBase64, OffsetAssembler, toBase64 } from "../../agent/terminal/offsets.ts";
import type { Auditor } from "../../core/audit.ts";
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import { badRequest, forbidden, HttpError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { AgentChannel, AgentMessage } from "../realtime/mod.ts";
import { liveDevice } from "./access.ts";
import { FILE_CHUNK_BYTES, type TransferView } from "./api.ts";
import type { GrantSigner } from "./grant.ts";
import type { Relay, RelayedFrame } from "./relay.ts";
import type {
  AgentFileChunk,
  AgentFileDone,
  AgentFileError,
  AgentFileMeta,
  AgentFileWritten,
} from "./schemas.ts";
import type { TerminalStore } from "./store.ts";

/** What {@link FileTransfers} works with. */
export interface TransferDeps {
  store: TerminalStore;
  channel: AgentChannel;
  inventory: InventoryService;
  grants: GrantSigner;
  relay: Relay;
  clock: Clock;
  log: Logger;
  audit: Auditor;
  instanceId: string;
  maxBytes: number;
  windowBytes: number;
  /** No word from the agent for this long fails the transfer. */
  stallMs: number;
}

/** One transfer in progress on this instance. */
interface Transfer {
  id: string;
  guid: string;
  direction: "download" | "upload";
  /** Wakes whoever waits for the next frame. */
  wake: () => void;
  meta?: { size: number; sha256: string };
  ready: boolean;
  chunks: OffsetAssembler;
  queue: Uint8Array[];
  written: number;
  done?: { size: number; sha256: string };
  error?: { code: string; message: string };
  chain: Promise<void>;
}

/** Maps an agent's error code to the HTTP answer. */
function agentError(e: { code: string; message: string }): HttpError {
  const status: Record<string, number> = {
    not_found: 404,
    is_directory: 400,
    not_a_file: 400,
    too_large: 413,
    exists: 409,
    permission_denied: 403,
    invalid_path: 400,
    checksum_mismatch: 422,
  };
  const code = e.code === "not_found" ? "file_not_found" : e.code;
  return new HttpError(status[e.code] ?? 502, code, `the agent answered: ${e.message}`);
}

const basename = (path: string) => path.split(/[\\/]/).filter(Boolean).pop() ?? "download";

/** File transfers of one engine instance. */
export class FileTransfers {
  readonly #live = new Map<string, Transfer>();

  constructor(private readonly d: TransferDeps) {
    const t = (f: RelayedFrame) => {
      const id = String(f.data.transfer_id);
      const x = this.#live.get(id);
      return x && x.guid === f.guid ? x : undefined;
    };
    d.relay.on("file_meta", (f) => {
      const x = t(f);
      if (!x) return;
      const m = f.data as z.infer<typeof AgentFileMeta>;
      x.meta = { size: m.size, sha256: m.sha256 };
      x.wake();
    });
    d.relay.on("file_chunk", (f) => {
      const x = t(f);
      if (!x) return;
      const c = f.data as z.infer<typeof AgentFileChunk>;
      let bytes: Uint8Array;
      try {
        bytes = fromBase64(c.data);
      } catch {
        return;
      }
      const r = x.chunks.push(c.offset, bytes);
      if (r.overflow) x.error ??= { code: "protocol", message: "chunks arrived out of window" };
      x.queue.push(...r.ready);
      x.wake();
    });
    d.relay.on("file_ready", (f) => {
      const x = t(f);
      if (!x) return;
      x.ready = true;
      x.wake();
    });
    d.relay.on("file_written", (f) => {
      const x = t(f);
      if (!x) return;
      x.written = Math.max(x.written, (f.data as z.infer<typeof AgentFileWritten>).offset);
      x.wake();
    });
    d.relay.on("file_done", (f) => {
      const x = t(f);
      if (!x) return;
      const m = f.data as z.infer<typeof AgentFileDone>;
      x.done = { size: m.size, sha256: m.sha256 };
      x.wake();
    });
    d.relay.on("file_error", (f) => {
      const x = t(f);
      if (!x) return;
      const e = f.data as z.infer<typeof AgentFileError>;
      x.error ??= { code: e.code, message: e.message };
      x.wake();
    });
  }

  /** Transfers in progress here. */
  get size(): number {
    return this.#live.size;
  }

  #new(id: string, guid: string, direction: "download" | "upload"): Transfer {
    const x: Transfer = {
      id,
      guid,
      direction,
      wake: () => {},
      ready: false,
      chunks: new OffsetAssembler(0, this.d.windowBytes * 2),
      queue: [],
      written: 0,
      chain: Promise.resolve(),
    };
    this.#live.set(id, x);
    return x;
  }

  /** Resolves when `pred` holds (checked after every frame) or fails after a stall. */
  async #until(
    x: Transfer,
    pred: () => boolean,
    what: string,
    ms = this.d.stallMs,
  ): Promise<void> {
    while (!pred()) {
      if (x.error) throw agentError(x.error);
      let timer = 0;
      const stalled = await new Promise<boolean>((resolve) => {
        x.wake = () => resolve(false);
        timer = this.d.clock.setTimeout(() => resolve(true), ms);
      });
      this.d.clock.clearTimeout(timer);
      x.wake = () => {};
      if (stalled && !pred() && !x.error) {
        throw new HttpError(504, "agent_timeout", `the agent did not answer (${what})`);
      }
    }
    if (x.error && !pred()) throw agentError(x.error);
  }

  #send(x: Transfer, message: AgentMessage): void {
    x.chain = x.chain.then(async () => {
      await this.d.channel.send(x.guid, message);
    }).catch((err) => this.d.log.warn(`transfer ${x.id}: ${message.type} not sent: ${err}`));
  }

  async #policy(siteId: number | null): Promise<void> {
    const policy = await this.d.store.policy(siteId);
    if (!policy.files_enabled) {
      throw forbidden("files_disabled", "file transfer is turned off for this site");
    }
  }

  async #finish(
    p: Principal,
    x: Transfer,
    path: string,
    o: { ok: boolean; bytes: number; size?: number | null; sha256?: string | null; error?: string },
  ): Promise<TransferView | undefined> {
    this.#live.delete(x.id);
    const view = await this.d.store.finishTransfer(x.id, {
      status: o.ok ? "succeeded" : "failed",
      bytes: o.bytes,
      size: o.size,
      sha256: o.sha256,
      error: o.error ?? null,
    });
    await this.d.audit(null, {
      actor: p,
      action: `terminal.file.${x.direction}`,
      target: `device:${x.guid}`,
      outcome: o.ok ? "success" : "failure",
      details: {
        transfer_id: x.id,
        path,
        bytes: o.bytes,
        sha256: o.sha256 ?? null,
        error: o.error ?? null,
      },
    });
    return view;
  }

  /** Starts a download; resolves with the streaming response once the agent has hashed the file. */
  async download(p: Principal, guid: string, path: string): Promise<Response> {
    const d = this.d;
    const device = await liveDevice(d.inventory, d.channel, p, guid);
    await this.#policy(device.site_id);
    const id = crypto.randomUUID();
    await d.store.addTransfer({
      id,
      guid: device.guid,
      hostname: device.hostname,
      siteId: device.site_id,
      operatorId: p.id,
      operatorName: p.name,
      direction: "download",
      path,
      size: null,
    });
    const x = this.#new(id, device.guid, "download");
    try {
      const grant = await d.grants.sign(d.clock.now(), {
        purpose: "file_download",
        id,
        guid: device.guid,
        operator: p.name,
        via: d.instanceId,
      }, { path, max_bytes: d.maxBytes, chunk: FILE_CHUNK_BYTES, window: d.windowBytes });
      this.#send(x, { type: "file_download", data: grant });
      await this.#until(x, () => !!x.meta, "reading the file");
    } catch (err) {
      await this.#finish(p, x, path, {
        ok: false,
        bytes: 0,
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
    const meta = x.meta!;
    const hash = createHash("sha256");
    let sent = 0;
    let finished = false;
    const end = async (ok: boolean, error?: string) => {
      if (finished) return;
      finished = true;
      if (!ok) this.#send(x, { type: "file_cancel", data: { transfer_id: id, reason: error } });
      await this.#finish(p, x, path, {
        ok,
        bytes: sent,
        size: meta.size,
        sha256: meta.sha256,
        error,
      });
    };
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          await this.#until(
            x,
            () => x.queue.length > 0 || (!!x.done && sent >= meta.size) || sent >= meta.size,
            "sending the file",
          );
        } catch (err) {
          await end(false, err instanceof Error ? err.message : String(err));
          controller.error(err);
          return;
        }
        const chunk = x.queue.shift();
        if (chunk) {
          const part = chunk.subarray(0, Math.max(0, meta.size - sent));
          hash.update(part);
          sent += part.length;
          controller.enqueue(part);
          this.#send(x, { type: "file_ack", data: { transfer_id: id, offset: sent } });
        }
        if (sent < meta.size) return;
        const digest = hash.digest("hex");
        if (digest !== meta.sha256) {
          const message = "the file changed while it was read (SHA-256 differs); download again";
          await end(false, message);
          controller.error(new Error(message));
          return;
        }
        await end(true);
        controller.close();
      },
      cancel: async () => {
        await end(false, "the client stopped reading");
      },
    }, { highWaterMark: 0 });
    const name = basename(path).replace(/["\\\r\n]/g, "_");
    return new Response(body, {
      status: 200,
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Length": String(meta.size),
        "Content-Disposition": `attachment; filename="${name}"; filename*=UTF-8''${
          encodeURIComponent(basename(path))
        }`,
        "X-Checksum-SHA256": meta.sha256,
        "Digest": `sha-256=${Buffer.from(meta.sha256, "hex").toString("base64")}`,
        "Cache-Control": "no-store",
        "X-Transfer-Id": id,
      },
    });
  }

  /** Streams a request body to a file on the device. */
  async upload(
    p: Principal,
    guid: string,
    o: {
      path: string;
      overwrite: boolean;
      length: number | null;
      sha256: string | null;
      body: ReadableStream<Uint8Array> | null;
    },
  ): Promise<TransferView> {
    const d = this.d;
    if (o.length !== null && o.length > d.maxBytes) {
      throw new HttpError(413, "too_large", `files are limited to ${d.maxBytes} bytes`);
    }
    const device = await liveDevice(d.inventory, d.channel, p, guid);
    await this.#policy(device.site_id);
    if (!o.body) throw badRequest("body_required", "send the file as the request body");
    const id = crypto.randomUUID();
    await d.store.addTransfer({
      id,
      guid: device.guid,
      hostname: device.hostname,
      siteId: device.site_id,
      operatorId: p.id,
      operatorName: p.name,
      direction: "upload",
      path: o.path,
      size: o.length,
    });
    const x = this.#new(id, device.guid, "upload");
    const hash = createHash("sha256");
    let sent = 0;
    const reader = o.body.getReader();
    try {
      const grant = await d.grants.sign(d.clock.now(), {
        purpose: "file_upload",
        id,
        guid: device.guid,
        operator: p.name,
        via: d.instanceId,
      }, {
        path: o.path,
        size: o.length,
        overwrite: o.overwrite,
        max_bytes: d.maxBytes,
        window: d.windowBytes,
      });
      this.#send(x, { type: "file_upload", data: grant });
      await this.#until(x, () => x.ready, "opening the file");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (let at = 0; at < value.length; at += FILE_CHUNK_BYTES) {
          const part = value.subarray(at, at + FILE_CHUNK_BYTES);
          if (sent + part.length > d.maxBytes) {
            throw new HttpError(413, "too_large", `files are limited to ${d.maxBytes} bytes`);
          }
          await this.#until(x, () => sent - x.written < d.windowBytes, "writing the file");
          hash.update(part);
          this.#send(x, {
            type: "file_data",
            data: { transfer_id: id, offset: sent, data: toBase64(part) },
          });
          sent += part.length;
        }
      }
      if (o.length !== null && sent !== o.length) {
        throw badRequest("incomplete_body", `received ${sent} of ${o.length} bytes`);
      }
      const digest = hash.digest("hex");
      if (o.sha256 && o.sha256 !== digest) {
        throw new HttpError(
          422,
          "checksum_mismatch",
          `the body's SHA-256 is ${digest}, not the declared ${o.sha256}`,
        );
      }
      this.#send(x, { type: "file_commit", data: { transfer_id: id, size: sent, sha256: digest } });
      await this.#until(x, () => !!x.done, "verifying the file");
      if (x.done!.sha256 !== digest || x.done!.size !== sent) {
        throw new HttpError(
          422,
          "checksum_mismatch",
          "the device's copy differs from what was sent",
        );
      }
      const view = await this.#finish(p, x, o.path, {
        ok: true,
        bytes: sent,
        size: sent,
        sha256: digest,
      });
      return view!;
    } catch (err) {
      await reader.cancel().catch(() => {});
      if (x.ready && !x.error) {
        // The agent removes its temporary file and says so; answer after that.
        this.#send(x, { type: "file_cancel", data: { transfer_id: id, reason: String(err) } });
        await this.#until(x, () => !!x.error, "removing the partial file", 5000).catch(() => {});
      }
      await this.#finish(p, x, o.path, {
        ok: false,
        bytes: sent,
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  }
}

/**
 * Schemas of the terminal plugin: frames operators send on `/api/ws`, frames agents send
 * on `/api/agent/ws`, and the HTTP bodies. Base64 is standard base64 of raw bytes.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import { TERMINAL_CHUNK_BYTES } from "./api.ts";

const b64 = (maxBytes: number) =>
  z.string().max(Math.ceil(maxBytes / 3) * 4).regex(
    /^[A-Za-z0-9+/]*={0,2}$/,
    "standard base64",
  );
const offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const sessionId = z.uuid();
const cols = z.number().int().min(2).max(1000);
const rows = z.number().int().min(1).max(500);
/** Instance ids are UUIDs; the relay only routes to a well-formed one. */
const via = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/);

// ---------------------------------------------------------------- operator frames

/** `terminal_open`. */
export const OpenFrame = z.object({
  guid: z.string().min(1).max(64),
  cols,
  rows,
  reason: z.string().trim().max(500).optional(),
  run_as: z.enum(["system", "user"]).default("system"),
}).strict();

/** `terminal_attach`: back after a blip, possibly on another instance. */
export const AttachFrame = z.object({
  session_id: sessionId,
  /** Output bytes the console has. */
  offset,
  /** Keystroke bytes the console knows the agent has written. */
  input: offset,
  cols: cols.optional(),
  rows: rows.optional(),
}).strict();

/** `terminal_input`: keystrokes at byte `offset` of the session's input. */
export const InputFrame = z.object({
  session_id: sessionId,
  offset,
  data: b64(TERMINAL_CHUNK_BYTES),
}).strict();

/** `terminal_resize`. */
export const ResizeFrame = z.object({ session_id: sessionId, cols, rows }).strict();

/** `terminal_ack`: the console has taken output up to `offset`. */
export const AckFrame = z.object({ session_id: sessionId, offset }).strict();

/** `terminal_close`. */
export const CloseFrame = z.object({ session_id: sessionId }).strict();

// ---------------------------------------------------------------- agent frames

/** `terminal_opened`. */
export const AgentOpened = z.object({
  session_id: sessionId,
  via,
  pid: z.number().int().nullable().optional(),
  mode: z.enum(["pty", "line"]),
  user: z.string().max(256).nullable().optional(),
  shell: z.string().max(1024).optional(),
}).passthrough();

/** `terminal_output`: output at `offset`; `input` = keystroke bytes written so far. */
export const AgentOutput = z.object({
  session_id: sessionId,
  via,
  offset,
  data: b64(1_048_576),
  input: offset,
}).passthrough();

/** `terminal_exit`: the shell ended (or never started: `code` null and a reason). */
export const AgentExit = z.object({
  session_id: sessionId,
  via,
  code: z.number().int().nullable(),
  reason: z.string().max(1000),
  bytes_out: offset,
  bytes_in: offset.optional(),
}).passthrough();

/** `terminal_sync`: after the agent's socket came back, where the session stands. */
export const AgentSync = z.object({
  session_id: sessionId,
  via,
  /** Output bytes read from the terminal so far. */
  offset,
  /** Keystroke bytes written so far. */
  input: offset,
}).passthrough();

const transferId = z.uuid();

/** `file_meta`: a download's size and SHA-256 (computed before streaming). */
export const AgentFileMeta = z.object({
  transfer_id: transferId,
  via,
  size: offset,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
}).passthrough();

/** `file_chunk`: download bytes. */
export const AgentFileChunk = z.object({
  transfer_id: transferId,
  via,
  offset,
  data: b64(1_048_576),
}).passthrough();

/** `file_ready`: an upload's temporary file is open. */
export const AgentFileReady = z.object({ transfer_id: transferId, via }).passthrough();

/** `file_written`: upload bytes on disk so far. */
export const AgentFileWritten = z.object({ transfer_id: transferId, via, offset }).passthrough();

/** `file_done`: download sent, or upload verified and in place. */
export const AgentFileDone = z.object({
  transfer_id: transferId,
  via,
  size: offset,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
}).passthrough();

/** `file_error`. */
export const AgentFileError = z.object({
  transfer_id: transferId,
  via,
  code: z.string().max(64),
  message: z.string().max(2000),
}).passthrough();

/** `device_action_result`. */
export const AgentActionResult = z.object({
  action_id: z.uuid(),
  via,
  ok: z.boolean(),
  output: z.string().max(65_536).optional(),
  error: z.string().max(65_536).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

// ---------------------------------------------------------------- HTTP bodies

/** `PUT /api/terminal/site-policies/{site_id}`. */
export const PolicyInput = z.object({
  terminal_enabled: z.boolean(),
  require_reason: z.boolean(),
  record_transcripts: z.boolean(),
  files_enabled: z.boolean(),
}).strict().openapi("TerminalSitePolicyInput");

/** A service name as Linux, macOS and Windows service managers accept them. */
export const ServiceName = z.string().min(1).max(256).regex(
  /^[A-Za-z0-9@._:+][A-Za-z0-9@._:+ -]*$/,
  "letters, digits, spaces and @ . _ : + - (not first: a name is never an option)",
).refine((n) => !n.includes(".."), "no ..");

/** `POST /api/terminal/devices/{guid}/actions`. */
export const ActionInput = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("service"),
    action: z.enum(["start", "stop", "restart"]),
    name: ServiceName,
  }).strict(),
  z.object({
    kind: z.literal("process_kill"),
    pid: z.number().int().min(1).max(4_294_967_295),
    /** When given, the agent refuses if the process has another name (the pid was reused). */
    name: z.string().min(1).max(256).optional(),
    force: z.boolean().default(false),
  }).strict(),
  z.object({
    kind: z.literal("refresh"),
    parts: z.array(z.enum(["services", "processes"])).min(1).max(2).default([
      "services",
      "processes",
    ]),
  }).strict(),
]).openapi("TerminalDeviceActionInput");

/** An absolute path on the device (Linux/macOS `/…`, Windows `C:\…` or `\\server\share\…`). */
export const DevicePath = z.string().min(2).max(4096).refine(
  (p) => !p.includes("\0") && (/^\//.test(p) || /^[A-Za-z]:[\\/]/.test(p) || /^\\\\/.test(p)),
  "an absolute path on the device",
);

/**
 * The terminal plugin's public contract: its service key and the shapes it answers
 * with. The wire protocol (operator socket frames, agent socket frames) is documented in
 * docs/terminal.md, docs/operator-socket.md and docs/agent-protocol.md.
 *
 * @module
 */
import { serviceKey } from "../../core/plugin.ts";

/** Output bytes per agent frame (at most; a frame carries what the terminal had ready). */
export const TERMINAL_CHUNK_BYTES = 16_384;
/** File bytes per agent frame. */
export const FILE_CHUNK_BYTES = 49_152;
/** Keystrokes an operator may have in flight before the agent has written them. */
export const INPUT_WINDOW_BYTES = 65_536;

/** A site's terminal policy (defaults when an admin never set one). */
export interface SitePolicy {
  site_id: number;
  terminal_enabled: boolean;
  require_reason: boolean;
  record_transcripts: boolean;
  files_enabled: boolean;
  updated_by: string | null;
  updated_at: string | null;
}

/** Where a session stands. */
export type SessionStatus = "opening" | "open" | "detached" | "closed";

/** One session as the API shows it (the audit record). */
export interface SessionView {
  id: string;
  device_guid: string;
  hostname: string;
  site_id: number | null;
  operator: string;
  reason: string | null;
  run_as: "system" | "user";
  status: SessionStatus;
  recorded: boolean;
  mode: "pty" | "line" | null;
  shell_user: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  exit_code: number | null;
  bytes_in: number;
  bytes_out: number;
}

/** A device action as the API shows it. */
export interface ActionView {
  id: string;
  device_guid: string;
  hostname: string;
  operator: string;
  kind: "service" | "process_kill" | "refresh";
  params: Record<string, unknown>;
  status: "pending" | "succeeded" | "failed" | "timed_out";
  result: Record<string, unknown> | null;
  created_at: string;
  finished_at: string | null;
}

/** A file transfer as the API shows it. */
export interface TransferView {
  id: string;
  device_guid: string;
  hostname: string;
  operator: string;
  direction: "download" | "upload";
  path: string;
  status: "running" | "succeeded" | "failed";
  size: number | null;
  bytes: number;
  sha256: string | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

/** What the plugin exposes to tests and benchmarks. */
export interface TerminalInternals {
  /** Sessions this instance relays (as the owner of the operator's socket). */
  readonly localSessions: number;
  /** Bytes this instance holds for its sessions (reordering and retransmit buffers). */
  bufferedBytes(): number;
  /** Runs the periodic checks now (idle, detached, agent gone, transcript flush). */
  sweep(): Promise<void>;
}

/** `ctx.use(terminalKey)`. */
export const terminalKey = serviceKey<TerminalInternals>("terminal.internals");

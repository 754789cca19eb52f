/**
 * Terminal sessions on the agent (the engine's side is plugins/terminal/sessions.ts;
 * the protocol is in docs/agent-protocol.md, "Terminal sessions").
 *
 * A session starts from a `terminal_open` whose grant verifies (./grant.ts), runs a
 * shell on a terminal (./spawn.ts) and streams its output as `terminal_output` frames
 * carrying byte offsets. It reads the terminal only while less than one window of output
 * is unconfirmed by the operator's console (`terminal_ack`), so a flood of output waits
 * in the program that makes it, not in memory; the unconfirmed bytes are kept so they
 * can be sent again after a reconnect (`terminal_resume` from a new engine instance, or
 * this agent's own socket coming back: `terminal_sync`). Keystrokes carry offsets too
 * and are written once, in order.
 *
 * A session ends when its shell exits, when the engine closes it, when no keystroke came
 * for the idle time the grant names (a backstop to the engine's own check), or when the
 * agent's socket stayed away longer than the resume window.
 *
 * @module
 */
import type { Frame } from "../protocol/socket.ts";
import { GrantError, type GrantVerifier } from "./grant.ts";
import { fromBase64, OffsetAssembler, toBase64 } from "./offsets.ts";
import type { Pty, PtySpawn } from "./pty.ts";
import { chooseShell, type ShellChoice } from "./shell.ts";
import { spawnTerminal } from "./spawn.ts";

/** Options of {@link TerminalHost}. */
export interface HostOptions {
  /** Sends a frame on the agent's socket; false when it is not open. */
  send: (frame: Frame) => boolean;
  grants: GrantVerifier;
  /** Worker events (the agent's log). */
  emit?: (event: string, data: Record<string, unknown>) => void;
  /** Written to the system log (./notice.ts). */
  notice?: (message: string) => void;
  /** Starts shells (tests pass their own). */
  spawn?: (o: PtySpawn) => Pty;
  shell?: (runAs: "system" | "user") => Promise<ShellChoice>;
  /** Most sessions at once on this device. */
  maxSessions?: number;
  now?: () => number;
}

interface Session {
  id: string;
  via: string;
  operator: string;
  pty: Pty;
  window: number;
  chunk: number;
  idleMs: number;
  resumeMs: number;
  /** Output offsets: read and sent so far / confirmed by the console. */
  outSent: number;
  outAcked: number;
  /** Output kept for a resend: [outAcked, outSent). */
  retained: Array<{ offset: number; bytes: Uint8Array }>;
  /** Wakes the reader when the window opens. */
  credit: () => void;
  waitingForCredit: boolean;
  lastReadAt: number;
  /** Keystrokes written so far; early ones wait in `inAsm`, unwritten ones in `inQueue`. */
  inWritten: number;
  inAsm: OffsetAssembler;
  inQueue: Uint8Array[];
  inRetry?: ReturnType<typeof setTimeout>;
  inputAckTimer?: ReturnType<typeof setTimeout>;
  inReported: number;
  lastInputAt: number;
  exitCode?: number;
  ended: boolean;
}

/** Keystrokes that may wait for an earlier frame. */
const INPUT_HOLD_BYTES = 262_144;

/** The terminal sessions of one agent. */
export class TerminalHost {
  readonly #sessions = new Map<string, Session>();
  /** Exits that happened while the socket was away, sent once it is back. */
  readonly #unsent = new Map<string, Frame>();
  #disconnectedAt?: number;
  #timer?: ReturnType<typeof setInterval>;

  constructor(private readonly o: HostOptions) {}

  #now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** Sessions running now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Bytes held (unconfirmed output and keystrokes not yet written). */
  bufferedBytes(): number {
    let n = 0;
    for (const s of this.#sessions.values()) {
      for (const r of s.retained) n += r.bytes.length;
      for (const q of s.inQueue) n += q.length;
      n += s.inAsm.heldBytes;
    }
    return n;
  }

  /** Handles a terminal frame; false when the frame is not for the terminal. */
  onFrame(f: Frame): boolean {
    const d = (f.data ?? {}) as Record<string, unknown>;
    switch (f.type) {
      case "terminal_open":
        void this.#open(d);
        return true;
      case "terminal_input":
        this.#input(d);
        return true;
      case "terminal_resize": {
        const s = this.#sessions.get(String(d.session_id));
        const cols = Number(d.cols), rows = Number(d.rows);
        if (s && cols >= 2 && cols <= 1000 && rows >= 1 && rows <= 500) {
          s.lastInputAt = this.#now();
          s.pty.resize(cols, rows);
        }
        return true;
      }
      case "terminal_ack": {
        const s = this.#sessions.get(String(d.session_id));
        if (s) this.#acked(s, Number(d.offset));
        return true;
      }
      case "terminal_resume": {
        const s = this.#sessions.get(String(d.session_id));
        if (!s) {
          this.#sendExitOfUnknown(String(d.session_id), String(d.via ?? ""));
          return true;
        }
        if (typeof d.via === "string" && d.via) s.via = d.via;
        this.#acked(s, Math.min(Number(d.offset), s.outSent));
        this.#sync(s);
        return true;
      }
      case "terminal_close": {
        const s = this.#sessions.get(String(d.session_id));
        if (s) void this.#end(s, String(d.reason ?? "closed"), true);
        return true;
      }
    }
    return false;
  }

  /** The socket is back (after `welcome`): every session says where it stands and resends. */
  onConnected(): void {
    this.#disconnectedAt = undefined;
    for (const [id, frame] of this.#unsent) if (this.o.send(frame)) this.#unsent.delete(id);
    for (const s of this.#sessions.values()) this.#sync(s);
  }

  /** The socket closed: sessions wait up to their resume window for it. */
  onDisconnected(): void {
    this.#disconnectedAt ??= this.#now();
  }

  /** The periodic checks (idle, socket away); the worker calls it every few seconds. */
  tick(): void {
    const now = this.#now();
    for (const s of [...this.#sessions.values()]) {
      if (this.#disconnectedAt !== undefined && now - this.#disconnectedAt > s.resumeMs) {
        void this.#end(s, "engine_unreachable", true);
      } else if (now - s.lastInputAt > s.idleMs) {
        void this.#end(s, "idle", true);
      }
    }
  }

  /** Starts the periodic checks. */
  start(everyMs = 5000): void {
    this.#timer ??= setInterval(() => this.tick(), everyMs);
  }

  /** Ends every session (agent stopping, device quarantined). */
  async closeAll(reason: string): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all([...this.#sessions.values()].map((s) => this.#end(s, reason, true)));
  }

  #sendExitOfUnknown(id: string, via: string): void {
    if (!via) return;
    this.o.send({
      type: "terminal_exit",
      data: { session_id: id, via, code: null, reason: "unknown_session", bytes_out: 0 },
    });
  }

  async #open(d: Record<string, unknown>): Promise<void> {
    // Until the grant verifies nothing in it is trusted; its id and via only address the refusal.
    let hint: { id?: string; via?: string } = {};
    try {
      hint = JSON.parse(String(d.grant ?? "{}"));
    } catch { /* no reply address */ }
    const refuse = (reason: string) => {
      this.o.emit?.("terminal_refused", { session_id: hint.id ?? null, reason });
      if (typeof hint.id === "string" && typeof hint.via === "string") {
        this.o.send({
          type: "terminal_exit",
          data: { session_id: hint.id, via: hint.via, code: null, reason, bytes_out: 0 },
        });
      }
    };
    let g;
    try {
      g = await this.o.grants.verify(d, "terminal");
    } catch (err) {
      return refuse(`refused: ${err instanceof GrantError ? err.code : "grant_invalid"}`);
    }
    if (this.#sessions.size >= (this.o.maxSessions ?? 16)) {
      return refuse("refused: too many terminal sessions on this device");
    }
    const runAs = g.run_as === "user" ? "user" : "system";
    const choice = await (this.o.shell ?? chooseShell)(runAs);
    if (typeof choice === "string") return refuse(choice);
    const cols = clamp(Number(g.cols), 2, 1000, 80);
    const rows = clamp(Number(g.rows), 1, 500, 24);
    let pty: Pty;
    try {
      pty = (this.o.spawn ?? spawnTerminal)({ ...choice, cols, rows });
    } catch (err) {
      return refuse(`the shell did not start: ${err instanceof Error ? err.message : err}`);
    }
    const now = this.#now();
    const s: Session = {
      id: g.id,
      via: g.via,
      operator: g.operator,
      pty,
      window: clamp(Number(g.window), 4096, 64 * 1_048_576, 262_144),
      chunk: clamp(Number(g.chunk), 512, 1_048_576, 4096),
      idleMs: clamp(Number(g.idle_seconds), 30, 86_400, 900) * 1000 + 60_000,
      resumeMs: clamp(Number(g.resume_seconds), 5, 3600, 60) * 1000,
      outSent: 0,
      outAcked: 0,
      retained: [],
      credit: () => {},
      waitingForCredit: false,
      lastReadAt: now,
      inWritten: 0,
      inAsm: new OffsetAssembler(0, INPUT_HOLD_BYTES),
      inQueue: [],
      inReported: 0,
      lastInputAt: now,
      ended: false,
    };
    this.#sessions.set(s.id, s);
    this.o.send({
      type: "terminal_opened",
      data: {
        session_id: s.id,
        via: s.via,
        pid: pty.pid,
        mode: pty.mode,
        user: choice.user,
        shell: choice.file,
      },
    });
    this.o.emit?.("terminal_opened", {
      session_id: s.id,
      operator: s.operator,
      user: choice.user,
      mode: pty.mode,
    });
    this.o.notice?.(
      `remote terminal opened by ${s.operator} as ${choice.user} (session ${s.id})`,
    );
    void this.#pump(s);
    void pty.wait().then((code) => {
      s.exitCode = code;
      void this.#drainAfterExit(s);
    });
  }

  /** Reads the terminal while the window allows. */
  async #pump(s: Session): Promise<void> {
    while (!s.ended) {
      const room = s.window - (s.outSent - s.outAcked);
      if (room <= 0) {
        s.waitingForCredit = true;
        await new Promise<void>((r) => (s.credit = r));
        s.waitingForCredit = false;
        continue;
      }
      const bytes = await s.pty.read(Math.min(s.chunk, room));
      if (!bytes) break;
      s.lastReadAt = this.#now();
      const offset = s.outSent;
      s.retained.push({ offset, bytes });
      s.outSent += bytes.length;
      this.#sendOutput(s, offset, bytes);
    }
    if (!s.ended) await this.#end(s, "exited", false);
  }

  #sendOutput(s: Session, offset: number, bytes: Uint8Array): void {
    clearTimeout(s.inputAckTimer);
    s.inputAckTimer = undefined;
    s.inReported = s.inWritten;
    this.o.send({
      type: "terminal_output",
      data: { session_id: s.id, via: s.via, offset, data: toBase64(bytes), input: s.inWritten },
    });
  }

  /**
   * After the shell exited, output may still be on its way (or waiting for the window);
   * a background program holding the terminal open must not keep the session alive.
   */
  async #drainAfterExit(s: Session): Promise<void> {
    while (!s.ended) {
      await new Promise((r) => setTimeout(r, 250));
      if (!s.waitingForCredit && this.#now() - s.lastReadAt > 500) {
        await s.pty.close();
        return;
      }
    }
  }

  #acked(s: Session, offset: number): void {
    if (!Number.isFinite(offset) || offset <= s.outAcked) return;
    s.outAcked = Math.min(offset, s.outSent);
    while (s.retained.length) {
      const r = s.retained[0]!;
      if (r.offset + r.bytes.length <= s.outAcked) s.retained.shift();
      else {
        if (r.offset < s.outAcked) {
          s.retained[0] = { offset: s.outAcked, bytes: r.bytes.subarray(s.outAcked - r.offset) };
        }
        break;
      }
    }
    s.credit();
  }

  /** Tells the owner where the session stands and sends the unconfirmed output again. */
  #sync(s: Session): void {
    this.o.send({
      type: "terminal_sync",
      data: { session_id: s.id, via: s.via, offset: s.outSent, input: s.inWritten },
    });
    s.inReported = s.inWritten;
    for (const r of s.retained) {
      for (let at = 0; at < r.bytes.length; at += s.chunk) {
        this.#sendOutput(s, r.offset + at, r.bytes.subarray(at, at + s.chunk));
      }
    }
  }

  #input(d: Record<string, unknown>): void {
    const s = this.#sessions.get(String(d.session_id));
    if (!s || typeof d.data !== "string") return;
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(d.data);
    } catch {
      return;
    }
    const r = s.inAsm.push(Number(d.offset), bytes);
    if (!r.ready.length) return;
    s.inQueue.push(...r.ready);
    s.lastInputAt = this.#now();
    this.#writeInput(s);
  }

  #writeInput(s: Session): void {
    clearTimeout(s.inRetry);
    s.inRetry = undefined;
    while (s.inQueue.length && !s.ended) {
      const next = s.inQueue[0]!;
      let n = 0;
      try {
        n = s.pty.write(next);
      } catch {
        s.inQueue = [];
        break;
      }
      s.inWritten += n;
      if (n < next.length) {
        // The terminal's input buffer is full (a paste into a busy program): try again soon.
        s.inQueue[0] = next.subarray(n);
        s.inRetry = setTimeout(() => this.#writeInput(s), 20);
        break;
      }
      s.inQueue.shift();
    }
    // Keystrokes without an echo (a password) still tell the console they arrived.
    if (s.inWritten > s.inReported && !s.inputAckTimer) {
      s.inputAckTimer = setTimeout(() => {
        s.inputAckTimer = undefined;
        if (s.ended || s.inWritten <= s.inReported) return;
        s.inReported = s.inWritten;
        this.o.send({
          type: "terminal_output",
          data: { session_id: s.id, via: s.via, offset: s.outSent, data: "", input: s.inWritten },
        });
      }, 30);
    }
  }

  async #end(s: Session, reason: string, kill: boolean): Promise<void> {
    if (s.ended) return;
    s.ended = true;
    this.#sessions.delete(s.id);
    clearTimeout(s.inRetry);
    clearTimeout(s.inputAckTimer);
    s.credit();
    if (kill) await s.pty.close();
    const code = s.exitCode ?? await Promise.race([
      s.pty.wait(),
      new Promise<null>((r) => setTimeout(() => r(null), 2000)),
    ]);
    if (!kill) await s.pty.close();
    const frame: Frame = {
      type: "terminal_exit",
      data: {
        session_id: s.id,
        via: s.via,
        code,
        reason,
        bytes_out: s.outSent,
        bytes_in: s.inWritten,
      },
    };
    if (!this.o.send(frame)) this.#unsent.set(s.id, frame);
    this.o.emit?.("terminal_closed", {
      session_id: s.id,
      reason,
      code,
      bytes_out: s.outSent,
      bytes_in: s.inWritten,
    });
    this.o.notice?.(
      `remote terminal of ${s.operator} ended: ${reason} (session ${s.id}, ${s.outSent} bytes out, ${s.inWritten} in)`,
    );
  }
}

function clamp(n: number, min: number, max: number, fallback: number): number {
  return Number.isFinite(n) ? Math.min(max, Math.max(min, Math.round(n))) : fallback;
}

/**
 * One terminal session as the console drives it over the operator socket (protocol:
 * docs/terminal.md). Output carries byte offsets: a resend after a reconnect is dropped,
 * and the console confirms output (`terminal_ack`) only once the terminal component has
 * processed it, so a flood is paced by how fast this tab can draw — the agent stops
 * reading its terminal when a window of output is unconfirmed. Keystrokes carry offsets
 * too; at most one input window is unconfirmed by the agent, and after a reconnect the
 * unconfirmed ones are sent again (the agent drops what it already wrote).
 *
 * @module
 */
import { type OperatorSocket, SocketError, type SocketFrame } from "../api/socket.ts";

/** Where a session stands. */
export type TerminalState = "opening" | "open" | "reconnecting" | "closed";

/** What the client writes to and tells. */
export interface TerminalSink {
  /** Writes output; `done` runs once the terminal has processed it. */
  write(bytes: Uint8Array, done: () => void): void;
  /** State changes (and the exit, when closed). */
  state(state: TerminalState, detail?: { code: number | null; reason: string }): void;
}

/** Options of {@link TerminalClient.open}. */
export interface OpenOptions {
  guid: string;
  cols: number;
  rows: number;
  reason?: string;
  runAs?: "system" | "user";
}

const enc = new TextEncoder();

function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A terminal session of this tab. */
export class TerminalClient {
  id?: string;
  #state: TerminalState = "opening";
  #window = 262_144;
  #inputWindow = 65_536;
  #chunk = 4096;
  /** Output received (next expected offset), processed by the terminal, confirmed. */
  #received = 0;
  #processed = 0;
  #acked = 0;
  #ackTimer?: ReturnType<typeof setTimeout>;
  /** Keystrokes: sent so far, confirmed by the agent, kept until confirmed, waiting to go. */
  #inputSent = 0;
  #inputConsumed = 0;
  #unconfirmed: Array<{ offset: number; bytes: Uint8Array }> = [];
  #waiting: Uint8Array[] = [];
  #cols = 80;
  #rows = 24;
  #off: Array<() => void> = [];
  /** Everything received (tests and the status line read it). */
  bytesIn = 0;

  constructor(private readonly socket: OperatorSocket, private readonly sink: TerminalSink) {}

  get state(): TerminalState {
    return this.#state;
  }

  #set(state: TerminalState, detail?: { code: number | null; reason: string }): void {
    if (this.#state === "closed") return;
    this.#state = state;
    this.sink.state(state, detail);
    if (state === "closed") this.dispose();
  }

  /** Opens a session; rejects with a {@link SocketError} (reason_required, terminal_disabled …). */
  async open(o: OpenOptions): Promise<void> {
    this.#cols = o.cols;
    this.#rows = o.rows;
    this.#listen();
    const ack = await this.socket.request("terminal_open", {
      guid: o.guid,
      cols: o.cols,
      rows: o.rows,
      ...(o.reason ? { reason: o.reason } : {}),
      run_as: o.runAs ?? "system",
    });
    this.id = String(ack.session_id);
    this.#window = Number(ack.window) || this.#window;
    this.#inputWindow = Number(ack.input_window) || this.#inputWindow;
    this.#chunk = Number(ack.chunk) || this.#chunk;
  }

  #listen(): void {
    const mine = (f: SocketFrame) => this.id !== undefined && f.data?.session_id === this.id;
    this.#off.push(
      this.socket.onFrame("terminal_opened", (f) => mine(f) && this.#set("open")),
      this.socket.onFrame("terminal_output", (f) => mine(f) && this.#output(f.data)),
      this.socket.onFrame("terminal_exit", (f) => {
        if (!mine(f)) return;
        this.#set("closed", {
          code: typeof f.data.code === "number" ? f.data.code : null,
          reason: String(f.data.reason ?? "closed"),
        });
      }),
      this.socket.subscribeState(() => {
        if (this.socket.state === "closed" && this.#state === "open") this.#set("reconnecting");
      }),
      this.socket.onOpen(() => void this.#reattach()),
    );
  }

  async #reattach(): Promise<void> {
    if (!this.id || this.#state === "closed" || this.#state === "opening") return;
    try {
      await this.socket.request("terminal_attach", {
        session_id: this.id,
        offset: this.#received,
        input: this.#inputConsumed,
        cols: this.#cols,
        rows: this.#rows,
      });
      this.#set("open");
      for (const u of this.#unconfirmed) this.#sendInput(u.offset, u.bytes);
      this.#pump();
    } catch (err) {
      if (err instanceof SocketError && err.code === "disconnected") return; // the next open retries
      this.#set("closed", {
        code: null,
        reason: err instanceof SocketError && err.code === "not_found"
          ? "ended while away"
          : String(err),
      });
    }
  }

  #output(d: Record<string, unknown>): void {
    const consumed = Number(d.input);
    if (consumed > this.#inputConsumed) {
      this.#inputConsumed = consumed;
      while (
        this.#unconfirmed.length &&
        this.#unconfirmed[0]!.offset + this.#unconfirmed[0]!.bytes.length <= consumed
      ) this.#unconfirmed.shift();
      this.#pump();
    }
    if (this.#state === "opening" || this.#state === "reconnecting") this.#set("open");
    const offset = Number(d.offset);
    const bytes = unb64(String(d.data ?? ""));
    if (!bytes.length || offset + bytes.length <= this.#received) return;
    const fresh = bytes.subarray(Math.max(0, this.#received - offset));
    this.#received = offset + bytes.length;
    this.bytesIn += fresh.length;
    this.sink.write(fresh, () => {
      this.#processed += fresh.length;
      this.#scheduleAck();
    });
  }

  /** Confirms processed output: at once after a quarter window, else within 40 ms. */
  #scheduleAck(): void {
    if (this.#processed - this.#acked >= this.#window / 4) return this.#ack();
    this.#ackTimer ??= setTimeout(() => this.#ack(), 40);
  }

  #ack(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (!this.id || this.#processed <= this.#acked) return;
    if (
      this.socket.send({
        type: "terminal_ack",
        data: { session_id: this.id, offset: this.#processed },
      })
    ) {
      this.#acked = this.#processed;
    }
  }

  /** Keystrokes (xterm's onData text, or binary from onBinary). */
  type(data: string | Uint8Array): void {
    if (this.#state === "closed") return;
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    for (let at = 0; at < bytes.length; at += this.#chunk) {
      this.#waiting.push(bytes.subarray(at, at + this.#chunk));
    }
    // A paste larger than a few windows is refused rather than buffered without bound.
    const waiting = this.#waiting.reduce((n, b) => n + b.length, 0);
    if (waiting > this.#inputWindow * 64) {
      this.#waiting = [];
      throw new Error("too much input at once (paste less)");
    }
    this.#pump();
  }

  #pump(): void {
    if (!this.id || this.#state !== "open") return;
    while (
      this.#waiting.length &&
      this.#inputSent - this.#inputConsumed + this.#waiting[0]!.length <= this.#inputWindow
    ) {
      const bytes = this.#waiting.shift()!;
      this.#unconfirmed.push({ offset: this.#inputSent, bytes });
      this.#sendInput(this.#inputSent, bytes);
      this.#inputSent += bytes.length;
    }
  }

  #sendInput(offset: number, bytes: Uint8Array): void {
    this.socket.send({
      type: "terminal_input",
      data: { session_id: this.id, offset, data: b64(bytes) },
    });
  }

  /** The terminal's new size. */
  resize(cols: number, rows: number): void {
    if (cols === this.#cols && rows === this.#rows) return;
    this.#cols = cols;
    this.#rows = rows;
    if (this.id && this.#state !== "closed") {
      this.socket.send({ type: "terminal_resize", data: { session_id: this.id, cols, rows } });
    }
  }

  /** Ends the session. */
  async close(): Promise<void> {
    if (!this.id || this.#state === "closed") return this.dispose();
    try {
      await this.socket.request("terminal_close", { session_id: this.id });
    } finally {
      this.#set("closed", { code: null, reason: "operator_closed" });
    }
  }

  /** Stops listening (the session itself goes on until closed or timed out). */
  dispose(): void {
    clearTimeout(this.#ackTimer);
    for (const off of this.#off.splice(0)) off();
  }
}

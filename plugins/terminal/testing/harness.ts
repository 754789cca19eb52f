/**
 * Shared setup for terminal tests: an engine with the terminal plugin (and the
 * scheduler, whose code-signing key signs grants) on a real port, reference agents whose
 * sockets run the production agent's terminal, file and action hosts (real shells on
 * real pseudo-terminals), and an operator socket client that speaks the terminal frames
 * the console speaks (offsets, acknowledgements, keystrokes).
 *
 * @module
 */
import { ActionRunner } from "../../../agent/terminal/actions.ts";
import { FileHost } from "../../../agent/terminal/files.ts";
import { GrantVerifier } from "../../../agent/terminal/grant.ts";
import { TerminalHost } from "../../../agent/terminal/host.ts";
import { fromBase64, toBase64 } from "../../../agent/terminal/offsets.ts";
import { collectDetails } from "../../../agent/collectors/mod.ts";
import type { TestOperator } from "../../../tests/helpers/operators.ts";
import { AgentSocket, type Frame } from "../../../tests/agent/socket.ts";
import type { TestEngineOptions } from "../../../tests/helpers/test_engine.ts";
import {
  schedulerPlugins,
  type SchedulerSetup,
  startScheduler,
} from "../../scheduler/testing/helpers.ts";
import terminal from "../mod.ts";

// deno-lint-ignore no-explicit-any
export type Json = any;

/** Plugins the terminal tests load. */
export const terminalPlugins = [...schedulerPlugins, terminal];

/** Waits (real time) until `pred` holds. */
export async function until<T>(
  what: string,
  pred: () => T | Promise<T>,
  ms = 20_000,
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A connected agent running the production agent's hosts. */
export interface TerminalAgent {
  guid: string;
  socket: AgentSocket;
  terminal: TerminalHost;
  files: FileHost;
  events: Array<{ event: string } & Record<string, unknown>>;
  stop(): Promise<void>;
}

/** The terminal test setup. */
export interface TerminalSetup extends SchedulerSetup {
  /** Enrolls and connects an agent (to `server`, default this engine). */
  terminalAgent(
    hostname: string,
    o?: { server?: string; siteCode?: string },
  ): Promise<TerminalAgent>;
  /** Opens an operator socket (as `who`, default the admin) to `server`. */
  operator(who?: TestOperator, server?: string): Promise<OperatorClient>;
}

/** Starts an engine with the terminal plugin on a real port. */
export async function startTerminal(
  options: Partial<TestEngineOptions> = {},
): Promise<TerminalSetup> {
  const s = await startScheduler({ plugins: terminalPlugins, ...options });
  const agents: TerminalAgent[] = [];
  const clients: OperatorClient[] = [];
  return {
    ...s,
    async terminalAgent(hostname, o = {}) {
      const agent = await s.enroll(hostname, o.siteCode);
      const events: TerminalAgent["events"] = [];
      const emit = (event: string, data: Record<string, unknown>) =>
        void events.push({ event, ...data });
      const ref: { socket?: AgentSocket } = {};
      const send = (f: Frame) => {
        if (!ref.socket?.open) return false;
        ref.socket.send(f);
        return true;
      };
      const grants = new GrantVerifier({
        signingKey: agent.state.signing_key ?? "",
        guid: () => agent.state.guid,
        now: () => s.h.t.clock.now(),
      });
      const host = new TerminalHost({ send, grants, emit });
      const files = new FileHost({ send, grants, emit });
      const actions = new ActionRunner({
        send,
        grants,
        emit,
        refresh: async (parts) => {
          const details = await collectDetails({
            disabled: [
              "hardware",
              "storage",
              "network",
              "software",
              "sessions",
              "services",
              "processes",
            ]
              .filter((c) => !parts.includes(c as "services")) as never,
          });
          const doc: Record<string, unknown> = {};
          for (const p of parts) doc[p] = details[p] ?? [];
          const res = await agent.call("POST", "/api/agent/details", { details: doc });
          await res.body?.cancel();
          return Object.fromEntries(parts.map((p) => [p, (doc[p] as unknown[]).length]));
        },
      });
      const socket = ref.socket = new AgentSocket(agent, {
        server: o.server ?? s.server,
        heartbeat: false,
        reconnect: false,
        onFrame: (f) => {
          if (f.type === "welcome") host.onConnected();
          host.onFrame(f) || files.onFrame(f) || actions.onFrame(f);
        },
        onClose: () => host.onDisconnected(),
      });
      await socket.start();
      await socket.waitFor((f) => f.type === "welcome", 1500).catch(() => socket.request("ping"));
      const a: TerminalAgent = {
        guid: agent.state.guid!.toUpperCase(),
        socket,
        terminal: host,
        files,
        events,
        async stop() {
          await host.closeAll("test finished");
          await files.closeAll();
          socket.stop();
        },
      };
      agents.push(a);
      return a;
    },
    async operator(who, server) {
      const c = await OperatorClient.connect(server ?? s.server, (who ?? s.h.admin).headers);
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      for (const a of agents) await a.stop().catch(() => {});
      await s.close();
    },
  };
}

/** An operator socket speaking the terminal frames. */
export class OperatorClient {
  readonly frames: Json[] = [];
  #next = 1;
  #waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const f = JSON.parse(String(e.data));
      if (this.frames.length > 20_000) this.frames.splice(0, 10_000);
      this.frames.push(f);
      for (const w of this.#waiters) w();
      this.onFrame?.(f);
    };
  }

  /** Every frame as it arrives (terminals read their output here). */
  onFrame?: (f: Json) => void;

  /** Opens `/api/ws` with the operator's headers. */
  static async connect(server: string, headers: Record<string, string>): Promise<OperatorClient> {
    const ws = new (WebSocket as unknown as new (
      u: string,
      o: { headers: Record<string, string> },
    ) => WebSocket)(`${server.replace(/^http/, "ws")}/api/ws`, { headers });
    const c = new OperatorClient(ws);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("operator socket did not open"));
    });
    return c;
  }

  send(frame: Json): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Sends a frame with an id; resolves with its `_ack` data or rejects with its error. */
  async request(type: string, data: Json, ms = 15_000): Promise<Json> {
    const id = `r${this.#next++}`;
    this.send({ type, id, data });
    const f = await this.waitFor((f) => f.id === id, ms);
    if (f.type === "error") {
      throw Object.assign(new Error(`${f.data.code}: ${f.data.message}`), { code: f.data.code });
    }
    return f.data;
  }

  /** Resolves with the first frame (seen so far or later) matching `pred`. */
  async waitFor(pred: (f: Json) => boolean, ms = 15_000): Promise<Json> {
    const end = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (Date.now() > end) throw new Error("frame did not arrive");
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(200, Math.max(1, end - Date.now())));
        const w = () => {
          clearTimeout(t);
          this.#waiters.delete(w);
          r();
        };
        this.#waiters.add(w);
      });
    }
  }

  /** Opens a terminal on `guid`. */
  async open(
    guid: string,
    o: { cols?: number; rows?: number; reason?: string; runAs?: "system" | "user" } = {},
  ) {
    const ack = await this.request("terminal_open", {
      guid,
      cols: o.cols ?? 80,
      rows: o.rows ?? 24,
      ...(o.reason ? { reason: o.reason } : {}),
      ...(o.runAs ? { run_as: o.runAs } : {}),
    });
    return new TermSession(this, ack.session_id, ack.window, ack);
  }

  close(): void {
    try {
      this.ws.close();
    } catch { /* closed */ }
  }
}

/** One terminal as a console would drive it: output by offset, acknowledged as read. */
export class TermSession {
  /** Output bytes taken (the next expected offset). */
  received = 0;
  acked = 0;
  inputSent = 0;
  inputConsumed = 0;
  #decoder = new TextDecoder();
  text = "";
  /** Keep at most this much text (floods). */
  keepText = 1_000_000;
  /** Acknowledge output as it arrives (a console that keeps up). */
  autoAck = true;
  exit?: Json;
  opened?: Json;

  constructor(
    public client: OperatorClient,
    readonly id: string,
    readonly window: number,
    readonly openAck: Json,
  ) {
    this.#listen(client);
  }

  #listen(client: OperatorClient): void {
    const prev = client.onFrame;
    client.onFrame = (f) => {
      prev?.(f);
      this.take(f);
    };
  }

  /** Takes the session over on another socket (`terminal_attach`), as the console does after a blip. */
  async reattach(client: OperatorClient): Promise<Json> {
    this.client = client;
    this.#listen(client);
    const ack = await client.request("terminal_attach", {
      session_id: this.id,
      offset: this.received,
      input: this.inputConsumed,
    });
    // Keystrokes the agent has not confirmed are sent again at their offsets (it drops
    // what it already wrote).
    this.#unconfirmed = this.#unconfirmed.filter((u) =>
      u.offset + u.bytes.length > this.inputConsumed
    );
    for (const u of this.#unconfirmed) this.#sendInput(u.offset, u.bytes);
    return ack;
  }

  /** Handles one frame of this session. */
  take(f: Json): void {
    if (f.data?.session_id !== this.id) return;
    if (f.type === "terminal_opened") this.opened = f.data;
    if (f.type === "terminal_exit") this.exit = f.data;
    if (f.type !== "terminal_output") return;
    this.inputConsumed = Math.max(this.inputConsumed, f.data.input);
    while (
      this.#unconfirmed.length &&
      this.#unconfirmed[0]!.offset + this.#unconfirmed[0]!.bytes.length <= this.inputConsumed
    ) this.#unconfirmed.shift();
    const bytes = fromBase64(f.data.data);
    const start = f.data.offset;
    if (start + bytes.length <= this.received) return;
    const fresh = bytes.subarray(Math.max(0, this.received - start));
    this.received = start + bytes.length;
    this.text += this.#decoder.decode(fresh, { stream: true });
    if (this.text.length > this.keepText) this.text = this.text.slice(-this.keepText / 2);
    if (this.autoAck && this.received - this.acked >= Math.min(16_384, this.window / 4)) this.ack();
    else if (this.autoAck) queueMicrotask(() => this.received > this.acked && this.ack());
  }

  ack(): void {
    this.acked = this.received;
    this.client.send({ type: "terminal_ack", data: { session_id: this.id, offset: this.acked } });
  }

  type(text: string | Uint8Array): void {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    for (let at = 0; at < bytes.length; at += 4096) {
      const part = bytes.subarray(at, at + 4096);
      this.#unconfirmed.push({ offset: this.inputSent, bytes: part });
      this.#sendInput(this.inputSent, part);
      this.inputSent += part.length;
    }
  }

  #unconfirmed: Array<{ offset: number; bytes: Uint8Array }> = [];

  #sendInput(offset: number, bytes: Uint8Array): void {
    try {
      this.client.send({
        type: "terminal_input",
        data: { session_id: this.id, offset, data: toBase64(bytes) },
      });
    } catch { /* the socket is gone: sent again after reattach */ }
  }

  resize(cols: number, rows: number): void {
    this.client.send({ type: "terminal_resize", data: { session_id: this.id, cols, rows } });
  }

  /** Waits until the output matches. */
  async expect(re: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
    return await until(
      `output matching ${re} (got …${JSON.stringify(this.text.slice(-300))})`,
      () => this.text.match(re),
      ms,
    );
  }

  async close(): Promise<void> {
    await this.client.request("terminal_close", { session_id: this.id });
  }
}

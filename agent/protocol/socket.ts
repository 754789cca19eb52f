/**
 * The agent's WebSocket: opens `/api/agent/ws` with `Authorization: DPoP` and a proof
 * for `GET <http(s) URL of the path>`, answers frames, heartbeats on the interval the
 * engine announces, and reconnects with full-jitter backoff (a random delay in
 * [0, min(cap, base·2^attempt)]), honouring close code 4001 (refresh first), a 401
 * upgrade (refresh, then retry), the reconnect delay the engine gives each agent when it
 * shuts down (close code 4503, see {@link shutdownHint}) or any other delay hint (see
 * {@link reconnectHintMs}), and giving up when retrying cannot help (403
 * `device_revoked`, or a refresh family that is gone).
 *
 * @module
 */
import { type Agent, AgentError } from "./client.ts";

/** One frame. */
export interface Frame {
  type: string;
  id?: string;
  data?: unknown;
}

/** Options of {@link AgentSocket}. */
export interface AgentSocketOptions {
  /** Engine base URL (http/https). */
  server: string;
  /** Called for every frame the engine sends. */
  onFrame?: (frame: Frame) => void | Promise<void>;
  /** Send heartbeats on the announced interval (default true). */
  heartbeat?: boolean;
  /** Telemetry each heartbeat carries. */
  heartbeatData?: () => Record<string, unknown>;
  /** Reconnect after a close (default true). */
  reconnect?: boolean;
  /** Backoff base and cap (ms). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Called when an open socket closes (before any reconnect is scheduled). */
  onClose?: (e: CloseEvent) => void;
  /**
   * How many received frames {@link AgentSocket.frames} keeps (default 10000, for tests
   * that look back). The live agent keeps a few: a file upload's frames are 64 KB each.
   */
  keepFrames?: number;
  /**
   * Called once when reconnecting cannot help and the socket stops for good: the upgrade
   * was refused with 403 (`device_revoked`), or the token refresh answered 401/403 (the
   * refresh family is gone, or the device was revoked). Receives that error.
   */
  onGiveUp?: (err: unknown) => void;
  /** Called when a reconnect attempt starts (after a close or a failed attempt). */
  onAttempt?: () => void;
  /** Called when a reconnect attempt fails (before the next is scheduled). */
  onFailure?: (err: unknown) => void;
  /** Treat a shutdown's reconnect delay like any close (benchmarks' baseline). */
  ignoreShutdownHint?: boolean;
}

/**
 * A socket that did not open. `status` is the HTTP status of a refused upgrade when the
 * runtime reports it (Deno's message reads "… Invalid status code: 403"); undefined for
 * network errors.
 */
export class SocketOpenError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = "SocketOpenError";
  }
}

/** Longest shutdown delay honoured (a bad hint must not park an agent for hours). */
const MAX_SHUTDOWN_HINT_MS = 600_000;
/** After a shutdown's delay: retry an unreachable engine every 1–2 s for this long. */
const STEADY_FOR_MS = 60_000;
const STEADY_MIN_MS = 1000;

/**
 * This agent's own reconnect delay from the engine's shutdown close (code 4503, reason
 * `engine shutting down; reconnect_after_ms=<n>`, docs/agent-protocol.md), or null for
 * any other close. The engine has already drawn it per agent, so it is waited exactly.
 */
export function shutdownHint(e: { code: number; reason: string }): number | null {
  if (e.code !== 4503) return null;
  const m = /reconnect_after_ms=(\d{1,9})/.exec(e.reason);
  return m ? Math.min(Number(m[1]), MAX_SHUTDOWN_HINT_MS) : null;
}

/**
 * The reconnect delay (ms) an engine asked for, or undefined. An engine going down may
 * say when to come back, either in the close reason or in a frame sent just before the
 * close. Accepted forms (docs/agent-protocol.md, "Reconnecting without a storm"): a JSON
 * reason or frame data with `reconnect_after_ms`, `retry_after_ms` or `retry_after`
 * (seconds), or text such as `retry_after_ms=1500`, `reconnect_after_ms: 1500` or
 * `retry after 5 s`. Values are capped at one hour.
 */
export function reconnectHintMs(source: unknown): number | undefined {
  const cap = (
    ms: number,
  ) => (Number.isFinite(ms) && ms >= 0 ? Math.min(ms, 3_600_000) : undefined);
  const fromObject = (o: Record<string, unknown>): number | undefined => {
    for (const k of ["reconnect_after_ms", "retry_after_ms", "reconnect_delay_ms"]) {
      if (typeof o[k] === "number") return cap(o[k] as number);
    }
    for (const k of ["retry_after", "reconnect_after"]) {
      if (typeof o[k] === "number") return cap((o[k] as number) * 1000);
    }
    return undefined;
  };
  if (source && typeof source === "object") return fromObject(source as Record<string, unknown>);
  if (typeof source !== "string" || !source) return undefined;
  const text = source.trim();
  if (text.startsWith("{")) {
    try {
      return fromObject(JSON.parse(text));
    } catch { /* not JSON after all */ }
  }
  const ms = /(?:reconnect|retry)[_ -]?(?:after|delay)[_ -]?ms\s*[=:]?\s*(\d+)/i.exec(text);
  if (ms) return cap(Number(ms[1]));
  const s = /(?:reconnect|retry)[_ -]?(?:after|in)\s*[=:]?\s*(\d+(?:\.\d+)?)\s*(ms|s)?/i.exec(text);
  if (s) return cap(Number(s[1]) * (s[2]?.toLowerCase() === "ms" ? 1 : 1000));
  return undefined;
}

/** True when retrying cannot help (docs/agent-protocol.md: upgrade answers, §3.1). */
export function isFatalSocketError(err: unknown): boolean {
  if (err instanceof SocketOpenError) return err.status === 403;
  return err instanceof AgentError && (err.status === 401 || err.status === 403);
}

/** Opens one socket (no reconnect); resolves once open, rejects with a {@link SocketOpenError} otherwise. */
export async function openAgentSocket(
  agent: Agent,
  server: string,
  opts: {
    ticket?: string;
    onMessage?: (e: MessageEvent) => void;
    onClose?: (e: CloseEvent) => void;
  } = {},
): Promise<WebSocket> {
  const httpUrl = server.replace(/\/+$/, "") + "/api/agent/ws";
  const wsUrl = httpUrl.replace(/^http/, "ws");
  let ws: WebSocket;
  if (opts.ticket) {
    ws = new WebSocket(`${wsUrl}?ticket=${encodeURIComponent(opts.ticket)}`);
  } else {
    await agent.ensureFresh();
    const token = agent.state.access_token!;
    const headers = {
      Authorization: `DPoP ${token}`,
      DPoP: await agent.proof("GET", httpUrl, { accessToken: token }),
    };
    // Deno's WebSocket accepts headers; browsers cannot, which is what tickets are for.
    ws = new (WebSocket as unknown as new (
      url: string,
      o: { headers: Record<string, string> },
    ) => WebSocket)(wsUrl, { headers });
  }
  // The engine sends `welcome` the moment the socket opens, which can be dispatched
  // before the caller's continuation after `await` runs: install the handler now.
  if (opts.onMessage) ws.onmessage = opts.onMessage;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error("websocket open timed out"));
      try {
        ws.close();
      } catch { /* never opened */ }
    }, 15_000);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.onerror = (e) => {
      clearTimeout(timer);
      const message = (e as ErrorEvent).message ?? "websocket error";
      const status = /status code:? (\d{3})/i.exec(message)?.[1];
      reject(new SocketOpenError(message, status ? Number(status) : undefined));
    };
    let opened = false;
    ws.onclose = (e) => {
      clearTimeout(timer);
      if (opened) opts.onClose?.(e);
      else reject(new SocketOpenError("websocket closed before opening"));
    };
    const onopen = ws.onopen;
    ws.onopen = (e) => {
      opened = true;
      onopen?.call(ws, e);
    };
  });
  return ws;
}

/** A long-lived agent socket with heartbeats and jittered reconnects. */
export class AgentSocket {
  #ws?: WebSocket;
  #timer?: ReturnType<typeof setInterval>;
  #stopped = false;
  #attempt = 0;
  /** Until then an unreachable engine is retried at a steady pace (after a shutdown). */
  #steadyUntil = 0;
  #pending = new Map<string, (f: Frame) => void>();
  #nextId = 1;
  /** A reconnect delay announced in a frame before the close (see {@link reconnectHintMs}). */
  #hintMs?: number;
  /** Frames received, newest last (tests read this). */
  readonly frames: Frame[] = [];
  connects = 0;
  failedAttempts = 0;
  /** The delay chosen before the latest reconnect (ms). */
  lastReconnectDelayMs?: number;
  /** The reconnect delay the last shutdown close (4503) asked for, if any. */
  lastShutdownHintMs?: number;

  constructor(readonly agent: Agent, readonly o: AgentSocketOptions) {}

  /**
   * Connects (and keeps reconnecting after a close unless told not to). A failed first
   * attempt throws, unless `keepTrying`: then it is retried like a reconnect (jittered
   * backoff, `onGiveUp` when hopeless) and `start` resolves after the first attempt.
   */
  async start(opts: { keepTrying?: boolean } = {}): Promise<void> {
    if (opts.keepTrying) await this.#retry(false);
    else await this.#connect();
  }

  async #connect(): Promise<void> {
    const ws = await openAgentSocket(this.agent, this.o.server, {
      onMessage: (e) => void this.#onMessage(e),
      onClose: (e) => this.#onClose(e),
    });
    this.#ws = ws;
    this.connects++;
    this.#attempt = 0;
  }

  #onClose(e: CloseEvent): void {
    clearInterval(this.#timer);
    if (!this.#stopped) this.o.onClose?.(e);
    if (this.#stopped || this.o.reconnect === false) return;
    if (e.code === 4409) return; // replaced by a newer connection of the same device
    const base = this.o.backoffBaseMs ?? 1000;
    const cap = this.o.backoffCapMs ?? 60_000;
    const ignore = this.o.ignoreShutdownHint === true;
    const own = ignore ? null : shutdownHint(e);
    if (own !== null) {
      // The engine is shutting down and drew this agent's own delay (so the fleet returns
      // spread out at the rate it accepts): wait exactly that; backoff starts over after.
      this.#hintMs = undefined;
      this.lastShutdownHintMs = own;
      this.lastReconnectDelayMs = own;
      this.#attempt = 0;
      this.#steadyUntil = Date.now() + own + STEADY_FOR_MS;
      setTimeout(() => void this.#retry(false), own);
      return;
    }
    const hint = ignore ? undefined : reconnectHintMs(e.reason) ?? this.#hintMs;
    this.#hintMs = undefined;
    let delay: number;
    if (e.code === 4001) delay = 0;
    else if (hint !== undefined) {
      // A delay that was not drawn per agent: spread the herd over as long again so that
      // every agent it dropped does not return in the same millisecond.
      this.#attempt++;
      delay = hint + Math.random() * Math.min(hint, cap);
    } else delay = Math.random() * Math.min(cap, base * 2 ** this.#attempt++);
    this.lastReconnectDelayMs = delay;
    setTimeout(() => void this.#retry(e.code === 4001), delay);
  }

  async #onMessage(e: MessageEvent): Promise<void> {
    const frame = JSON.parse(String(e.data)) as Frame;
    const keep = this.o.keepFrames ?? 10_000;
    if (keep > 0) {
      if (this.frames.length >= keep) this.frames.splice(0, Math.ceil(keep / 2));
      this.frames.push(frame);
    }
    if (frame.type !== "welcome" && frame.type !== "heartbeat_ack" && frame.data) {
      const hint = reconnectHintMs(frame.data);
      if (hint !== undefined && /shutdown|reconnect|closing|going_away/.test(frame.type)) {
        this.#hintMs = hint;
      }
    }
    if (frame.type === "welcome" && this.o.heartbeat !== false) {
      const every = Number(
        (frame.data as { heartbeat_interval_ms?: number })?.heartbeat_interval_ms ?? 30_000,
      );
      clearInterval(this.#timer);
      this.#timer = setInterval(
        () => void this.send({ type: "heartbeat", data: this.o.heartbeatData?.() ?? {} }),
        every,
      );
    }
    if (frame.id && this.#pending.has(frame.id)) {
      this.#pending.get(frame.id)!(frame);
      this.#pending.delete(frame.id);
    }
    await this.o.onFrame?.(frame);
  }

  /** One reconnect attempt; schedules the next (with a longer jittered delay) on failure. */
  async #retry(refreshFirst: boolean): Promise<void> {
    if (this.#stopped) return;
    this.o.onAttempt?.();
    try {
      if (refreshFirst) await this.agent.refresh();
      await this.#connect();
    } catch (err) {
      this.failedAttempts++;
      this.o.onFailure?.(err);
      if (isFatalSocketError(err)) {
        this.#stopped = true;
        this.o.onGiveUp?.(err);
        return;
      }
      // Right after a shutdown's delay, an engine that does not answer yet is restarting:
      // try again every second or so (a refused connection costs it nothing) instead of
      // backing off further and further from its return.
      const unreachable = !(err instanceof AgentError) &&
        !(err instanceof SocketOpenError && err.status !== undefined);
      const delay = unreachable && Date.now() < this.#steadyUntil
        ? STEADY_MIN_MS + Math.random() * STEADY_MIN_MS
        : Math.random() *
          Math.min(
            this.o.backoffCapMs ?? 60_000,
            (this.o.backoffBaseMs ?? 1000) * 2 ** this.#attempt++,
          );
      // A 401 upgrade means the access token was refused (expired, old token_version after
      // a quarantine): refresh before the next attempt instead of presenting it again.
      const refresh = err instanceof SocketOpenError && err.status === 401;
      setTimeout(() => void this.#retry(refresh), delay);
    }
  }

  /** Sends a frame. */
  send(frame: Frame): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(frame));
  }

  /** Sends raw text (protocol tests). */
  sendRaw(text: string): void {
    this.#ws?.send(text);
  }

  /** True while the socket is open. */
  get open(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /** Sends a frame with an id and waits for the frame answering it. */
  request(type: string, data?: unknown, timeoutMs = 5000): Promise<Frame> {
    const id = String(this.#nextId++);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer to ${type}`)), timeoutMs);
      this.#pending.set(id, (f) => {
        clearTimeout(t);
        resolve(f);
      });
      this.send({ type, id, data });
    });
  }

  /** Waits for a frame matching `pred`. */
  async waitFor(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const f = this.frames.find(pred);
      if (f) return f;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("frame did not arrive");
  }

  /** Closes for good. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#ws?.close(1000, "agent stopping");
  }
}

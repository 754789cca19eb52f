/**
 * The operator socket `/api/ws` (see docs/operator-socket.md): one connection per tab,
 * authenticated by the session cookie, subscribed to every topic the console shows,
 * reconnecting with jittered backoff. Pages listen to events by topic; the current page
 * is sent as presence. Features with frames of their own (the terminal) send requests
 * with ids, listen to frames by type and hear every (re)open.
 *
 * @module
 */
import { useEffect, useRef, useSyncExternalStore } from "react";

/** Topics the console subscribes to. */
export const TOPICS = [
  "device_status",
  "inventory",
  "activity",
  "approvals",
  "incidents",
  "notifications",
  "presence",
] as const;

/** A socket topic. */
export type Topic = typeof TOPICS[number];

/** An event frame from the engine. */
export interface SocketEvent {
  type: string;
  topic: Topic;
  data: Record<string, unknown>;
}

type Handler = (e: SocketEvent) => void;

/** A frame that is not an event: answers, terminal output, errors. */
export interface SocketFrame {
  type: string;
  id?: string;
  data: Record<string, unknown>;
}

/** An `error` frame answering a request. */
export class SocketError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "SocketError";
  }
}

/** Connection state, for the status indicator. */
export type SocketState = "connecting" | "open" | "closed";

/** One operator socket with reconnects. */
export class OperatorSocket {
  #ws?: WebSocket;
  #handlers = new Map<Topic, Set<Handler>>();
  #state: SocketState = "closed";
  #stateListeners = new Set<() => void>();
  #attempt = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #page = "/";
  #stopped = true;
  #frameHandlers = new Map<string, Set<(f: SocketFrame) => void>>();
  #openListeners = new Set<() => void>();
  #pending = new Map<
    string,
    { resolve: (d: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  #nextId = 1;
  /**
   * Called when the socket closes before opening (the session may be gone), or when the
   * engine closes it because the session ended (4401) or its role or sites changed (4403).
   */
  onRefused?: () => void;

  get state(): SocketState {
    return this.#state;
  }

  #setState(s: SocketState) {
    this.#state = s;
    for (const fn of this.#stateListeners) fn();
  }

  /** Subscribes to state changes (for useSyncExternalStore). */
  subscribeState = (fn: () => void): () => void => {
    this.#stateListeners.add(fn);
    return () => void this.#stateListeners.delete(fn);
  };

  /** Opens the socket (again) unless already open or opening. */
  start(): void {
    this.#stopped = false;
    if (this.#ws && this.#ws.readyState <= WebSocket.OPEN) return;
    clearTimeout(this.#timer);
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/ws`;
    let opened = false;
    const ws = new WebSocket(url);
    this.#ws = ws;
    this.#setState("connecting");
    ws.onopen = () => {
      opened = true;
      this.#attempt = 0;
      this.#setState("open");
      ws.send(JSON.stringify({ type: "subscribe", id: "topics", data: { topics: TOPICS } }));
      this.#sendPresence();
      for (const fn of this.#openListeners) {
        try {
          fn();
        } catch (err) {
          console.error("socket open listener failed", err);
        }
      }
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== "string") return;
      let frame: SocketEvent;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      if (!frame.topic) return this.#answer(frame as unknown as SocketFrame);
      for (const fn of this.#handlers.get(frame.topic) ?? []) {
        try {
          fn(frame);
        } catch (err) {
          console.error("socket handler failed", err);
        }
      }
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      for (const p of this.#pending.values()) {
        p.reject(new SocketError("disconnected", "the connection to the engine was lost"));
      }
      this.#pending.clear();
      this.#setState("closed");
      if (this.#stopped) return;
      if (!opened || e.code === 4401 || e.code === 4403) this.onRefused?.();
      // The session ended: knocking again would only be refused (and logged by the
      // browser); a new sign-in starts the socket again.
      if (e.code === 4401) return;
      // Jittered backoff: 1 s, 2 s, 4 s … up to 30 s.
      const delay = Math.min(30_000, 1000 * 2 ** this.#attempt++) * (0.5 + Math.random() / 2);
      this.#timer = setTimeout(() => this.start(), delay);
    };
  }

  /** Closes the socket for good (sign-out). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = undefined;
    ws?.close();
    this.#setState("closed");
  }

  /** Listens to one topic; returns the unsubscribe function. */
  on(topic: Topic, fn: Handler): () => void {
    let set = this.#handlers.get(topic);
    if (!set) this.#handlers.set(topic, set = new Set());
    set.add(fn);
    return () => void set.delete(fn);
  }

  #answer(frame: SocketFrame): void {
    if (frame.id && this.#pending.has(frame.id)) {
      const p = this.#pending.get(frame.id)!;
      this.#pending.delete(frame.id);
      if (frame.type === "error") {
        p.reject(
          new SocketError(String(frame.data?.code ?? "error"), String(frame.data?.message ?? "")),
        );
      } else p.resolve(frame.data ?? {});
      return;
    }
    for (const fn of this.#frameHandlers.get(frame.type) ?? []) {
      try {
        fn(frame);
      } catch (err) {
        console.error("socket frame handler failed", err);
      }
    }
  }

  /** Sends one frame; false when the socket is not open. */
  send(frame: { type: string; id?: string; data?: unknown }): boolean {
    if (this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** Bytes the browser has not yet put on the network. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** Sends a frame with an id; resolves with its `_ack` data, rejects with a {@link SocketError}. */
  request(type: string, data: unknown, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const id = `c${this.#nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SocketError("timeout", "the engine did not answer"));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (d) => (clearTimeout(timer), resolve(d)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      if (!this.send({ type, id, data })) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new SocketError("disconnected", "not connected to the engine"));
      }
    });
  }

  /** Listens to frames of one type (not events); returns the unsubscribe function. */
  onFrame(type: string, fn: (f: SocketFrame) => void): () => void {
    let set = this.#frameHandlers.get(type);
    if (!set) this.#frameHandlers.set(type, set = new Set());
    set.add(fn);
    return () => void set.delete(fn);
  }

  /** Runs `fn` after every open (features re-attach there); returns the unsubscribe function. */
  onOpen(fn: () => void): () => void {
    this.#openListeners.add(fn);
    return () => void this.#openListeners.delete(fn);
  }

  /** Tells other operators which page this tab shows. */
  setPage(page: string): void {
    this.#page = page;
    this.#sendPresence();
  }

  #sendPresence() {
    if (this.#ws?.readyState !== WebSocket.OPEN) return;
    this.#ws.send(
      JSON.stringify({
        type: "operator_presence_sync",
        data: { current_page: this.#page.slice(0, 300) },
      }),
    );
  }
}

/** The console's one socket. */
export const socket: OperatorSocket = new OperatorSocket();

/** Runs `handler` for every event of `topic` while the component is mounted. */
export function useSocketEvent(topic: Topic, handler: Handler): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => socket.on(topic, (e) => ref.current(e)), [topic]);
}

/** The socket's connection state. */
export function useSocketState(): SocketState {
  return useSyncExternalStore(socket.subscribeState, () => socket.state);
}

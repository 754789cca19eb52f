/**
 * The service other plugins use to talk to agents: send a message to an agent wherever
 * it is connected, handle a message type agents send, and ask whether an agent is
 * online. Also the operator feed: emit an event to operators, site-scoped.
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import type { Principal } from "../../core/auth.ts";
import { type EventBus, eventKey } from "../../core/events.ts";
import type { AgentState, Liveness } from "./liveness.ts";
import type { AgentMessage, AgentRegistry, SendResult } from "./registry.ts";
import type { Topic } from "./schemas.ts";

/** The agent a message came from. */
export interface AgentRef {
  guid: string;
  hostname: string;
  siteId: number | null;
}

/** Handles one message type; a returned value is sent back as `<type>_ack`. */
export type AgentHandler<T> = (
  agent: AgentRef,
  data: T,
  frame: AgentMessage,
) => Promise<unknown> | unknown;

interface Registered {
  schema: z.ZodType<unknown>;
  handler: AgentHandler<unknown>;
  allowQuarantined: boolean;
}

/** What an agent reported in an `error` frame (it could not handle an engine message). */
export interface AgentErrorReport {
  code: string;
  message?: string;
  [key: string]: unknown;
}

/** Hears agents' `error` frames; several plugins may listen, none replies. */
export type AgentErrorListener = (
  agent: AgentRef,
  report: AgentErrorReport,
  frame: AgentMessage,
) => Promise<void> | void;

/** An operator socket as a plugin's frame handler sees it. */
export interface OperatorLink {
  /** The connection's id (unique across the cluster). */
  readonly id: string;
  /** Who opened the socket (scope as of the upgrade). */
  readonly principal: Principal;
  /** True while the socket is open. */
  readonly open: boolean;
  /** Bytes handed to the socket and not yet written to the network. */
  readonly bufferedAmount: number;
  /** Sends one frame; false when the socket is no longer open. */
  send(frame: { type: string; id?: string; data?: unknown }): boolean;
  /**
   * Runs `fn` once when the socket closes, with the close code (4401: the session or
   * token that opened it ended, see docs/operator-socket.md).
   */
  onClose(fn: (code: number) => void): void;
}

/**
 * Handles one frame type operators send on `/api/ws`; a returned value is sent back as
 * `<type>_ack` (with the frame's id), an {@link HttpError}-like throw as an `error` frame.
 */
export type OperatorHandler<T> = (
  link: OperatorLink,
  data: T,
  frame: { type: string; id?: string },
) => Promise<unknown> | unknown;

interface RegisteredOperator {
  schema: z.ZodType<unknown>;
  handler: OperatorHandler<unknown>;
}

/** One operator event as it travels the bus. */
export interface OperatorEvent {
  topic: Topic;
  type: string;
  data: unknown;
  /** Site of the object: operators of that site and admins see it; null = admins only; "all" = everyone. */
  site_id: number | null | "all";
}

/** Bus key of operator events (fanned out by every instance to its operator sockets). */
export const operatorEvent = eventKey<OperatorEvent>("realtime.operator_event");

/** Published on every agent state change (online / offline / overdue). */
export const agentStatusChanged = eventKey<{
  guid: string;
  hostname: string;
  site_id: number | null;
  status: AgentState;
  previous: AgentState | null;
  changed_at: string;
}>("realtime.agent_status_changed");

/** Published (in this instance) when an agent reported telemetry. */
export const telemetryReceived = eventKey<
  { guid: string; site_id: number | null; kinds: string[] }
>(
  "realtime.telemetry_received",
);

const RESERVED_OPERATOR_TYPES = new Set([
  "subscribe",
  "unsubscribe",
  "operator_presence_sync",
  "operator_presence_clear",
  "ping",
]);

/** What `ctx.use(realtimeKey)` returns. */
export class AgentChannel {
  readonly #handlers = new Map<string, Registered>();
  readonly #operatorHandlers = new Map<string, RegisteredOperator>();
  readonly #errorListeners: AgentErrorListener[] = [];

  constructor(
    private readonly registry: AgentRegistry,
    private readonly liveness: Liveness,
    private readonly events: EventBus,
  ) {}

  /** Sends `{type, id?, data}` to an agent on any instance; held briefly when it is offline. */
  send(guid: string, message: AgentMessage): Promise<SendResult> {
    return this.registry.send(guid, message);
  }

  /** Registers the handler of a message type agents send (one per type). */
  on<T>(
    type: string,
    schema: z.ZodType<T>,
    handler: AgentHandler<T>,
    options: { allowQuarantined?: boolean } = {},
  ): void {
    if (type === "error") {
      throw new Error("agents' error frames are heard with onAgentError, not handled with on");
    }
    if (this.#handlers.has(type)) {
      throw new Error(`agent message type ${type} already has a handler`);
    }
    this.#handlers.set(type, {
      schema: schema as z.ZodType<unknown>,
      handler: handler as AgentHandler<unknown>,
      allowQuarantined: !!options.allowQuarantined,
    });
  }

  /**
   * Listens to the `error` frames agents send when they cannot handle an engine message
   * (the frame's `id` echoes the message's). Every listener hears every report; nothing
   * is ever answered, so an engine and an agent cannot trade errors forever.
   */
  onAgentError(listener: AgentErrorListener): void {
    this.#errorListeners.push(listener);
  }

  /** The error listeners (used by the socket). */
  get errorListeners(): readonly AgentErrorListener[] {
    return this.#errorListeners;
  }

  /** The handler of a type (used by the socket). */
  handler(type: string): Registered | undefined {
    return this.#handlers.get(type);
  }

  /**
   * Registers the handler of a frame type operators send on `/api/ws` (one per type; the
   * socket's own types — subscribe, presence, ping — cannot be taken). Frames are at
   * most 64 KB; `schema` validates `data`.
   */
  onOperator<T>(type: string, schema: z.ZodType<T>, handler: OperatorHandler<T>): void {
    if (RESERVED_OPERATOR_TYPES.has(type) || this.#operatorHandlers.has(type)) {
      throw new Error(`operator frame type ${type} already has a handler`);
    }
    this.#operatorHandlers.set(type, {
      schema: schema as z.ZodType<unknown>,
      handler: handler as OperatorHandler<unknown>,
    });
  }

  /** The plugin handler of an operator frame type (used by the socket). */
  operatorHandler(type: string): RegisteredOperator | undefined {
    return this.#operatorHandlers.get(type);
  }

  /** Ids of the engine instances alive now (this one included), from the shared registry. */
  liveInstances(): Promise<Set<string>> {
    return this.registry.liveInstances();
  }

  /** Derived state of an agent. */
  state(guid: string): AgentState {
    return this.liveness.state(guid.toUpperCase());
  }

  /**
   * When this instance last heard from the agent (epoch ms), fresher than
   * `devices.last_seen`, which is written in batches every few seconds; null when this
   * instance has not heard from it since it started.
   */
  lastSeen(guid: string): number | null {
    return this.liveness.lastSeen(guid.toUpperCase());
  }

  /**
   * Writes this instance's pending `last_seen` values and heartbeat fields now, for a
   * reader that is about to judge devices from the database (watchdogs).
   */
  async flushTelemetry(): Promise<void> {
    if (this.liveness.pendingCount) await this.liveness.flush();
  }

  /**
   * Whether the agent's socket is open anywhere, asking the shared registry when this
   * instance has not seen it (for live work that must not be queued).
   */
  connectedNow(guid: string): Promise<boolean> {
    return this.registry.connectedNow(guid);
  }

  /** Whether the agent's socket is open somewhere. */
  connected(guid: string): boolean {
    return this.registry.isConnected(guid.toUpperCase());
  }

  /** Emits an event to operators subscribed to `topic`, filtered by site. */
  async emitToOperators(
    topic: Topic,
    type: string,
    data: unknown,
    siteId: number | null | "all",
  ): Promise<void> {
    await this.events.publish(operatorEvent, { topic, type, data, site_id: siteId });
  }
}

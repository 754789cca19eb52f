/**
 * Frames an agent sends about a session, transfer or action name the engine instance
 * that asked (`via`, taken from the grant): the instance holding the operator's socket
 * or the HTTP request. Whichever instance holds the agent's socket hands each frame to
 * that instance — directly when it is itself, else over the event bus. Publishes of one
 * stream are chained, so they leave in the order the agent sent them; the receiver
 * still orders by byte offset, because a bus payload too large to travel inline is read
 * back from the database and can overtake a smaller one.
 *
 * @module
 */
import { type EventBus, eventKey } from "../../core/events.ts";
import type { Logger } from "../../core/log.ts";

/** A frame from an agent, as handed to the owning instance. */
export interface RelayedFrame {
  /** The agent's device GUID (upper case), as its socket authenticated it. */
  guid: string;
  type: string;
  data: Record<string, unknown>;
}

const relayed = eventKey<{ instance: string; stream: string } & RelayedFrame>("terminal.relay");

/** Handles frames of one type on the owning instance. */
export type RelayHandler = (frame: RelayedFrame) => void | Promise<void>;

/** The relay of one engine instance. */
export class Relay {
  readonly #handlers = new Map<string, RelayHandler>();
  readonly #chains = new Map<string, Promise<void>>();
  /** Frames this instance published for another one (benchmarks read it). */
  routed = 0;

  constructor(
    private readonly events: EventBus,
    private readonly instanceId: string,
    private readonly log: Logger,
  ) {
    events.subscribe(relayed, (e) => {
      if (e.instance !== instanceId) return;
      this.#dispatch({ guid: e.guid, type: e.type, data: e.data });
    });
  }

  /** Registers the owner-side handler of one agent frame type. */
  on(type: string, handler: RelayHandler): void {
    this.#handlers.set(type, handler);
  }

  /**
   * Hands an agent frame to the instance named `via` (this one, or another over the bus).
   * Call it synchronously from the socket handler: frames of one stream keep their order.
   */
  deliver(via: string, stream: string, frame: RelayedFrame): void {
    if (via === this.instanceId) return this.#dispatch(frame);
    const prev = this.#chains.get(stream) ?? Promise.resolve();
    const next = prev.then(() =>
      this.events.publish(relayed, { instance: via, stream, ...frame }).then(() => {
        this.routed++;
      })
    ).catch((err) =>
      this.log.warn(
        `relaying ${frame.type} to ${via} failed: ${err instanceof Error ? err.message : err}`,
      )
    );
    this.#chains.set(stream, next);
    void next.then(() => {
      if (this.#chains.get(stream) === next) this.#chains.delete(stream);
    });
  }

  #dispatch(frame: RelayedFrame): void {
    const h = this.#handlers.get(frame.type);
    if (!h) return;
    try {
      const r = h(frame);
      if (r instanceof Promise) {
        r.catch((err) =>
          this.log.error(
            `terminal ${frame.type} failed: ${err instanceof Error ? err.message : err}`,
          )
        );
      }
    } catch (err) {
      this.log.error(`terminal ${frame.type} failed: ${err instanceof Error ? err.message : err}`);
    }
  }
}

/**
 * Frames an agent sends about a session, transfer or action name the engine instance
 * that asked (`via`, taken from the grant): the instance holding the operator's socket
 * or the HTTP request. Whichever instance holds the agent's socket hands each frame to
 * that instance — directly when it is itself, else over the event bus. Frames for one
 * instance leave one publish at a time, in the order the agent sent them; those that
 * arrive while a publish is in flight go together in the next one (a busy terminal costs
 * a few bus messages per round trip, not one per chunk). The receiver still orders data
 * by byte offset, because a bus payload too large to travel inline is read back from the
 * database and can overtake a smaller one.
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

const relayed = eventKey<{ instance: string; frames: RelayedFrame[] }>("terminal.relay");

/** Frames per bus message (a few hundred KB at most). */
const BATCH = 64;

/** Handles frames of one type on the owning instance. */
export type RelayHandler = (frame: RelayedFrame) => void | Promise<void>;

/** The relay of one engine instance. */
export class Relay {
  readonly #handlers = new Map<string, RelayHandler>();
  readonly #queues = new Map<string, RelayedFrame[]>();
  /** Frames this instance published for another one (benchmarks read it). */
  routed = 0;

  constructor(
    private readonly events: EventBus,
    private readonly instanceId: string,
    private readonly log: Logger,
  ) {
    events.subscribe(relayed, (e) => {
      if (e.instance !== instanceId) return;
      for (const f of e.frames) this.#dispatch(f);
    });
  }

  /** Registers the owner-side handler of one agent frame type. */
  on(type: string, handler: RelayHandler): void {
    this.#handlers.set(type, handler);
  }

  /**
   * Hands an agent frame to the instance named `via` (this one, or another over the bus).
   * Call it synchronously from the socket handler: frames keep their order.
   */
  deliver(via: string, frame: RelayedFrame): void {
    if (via === this.instanceId) return this.#dispatch(frame);
    const queue = this.#queues.get(via);
    if (queue) {
      queue.push(frame);
      return;
    }
    const fresh = [frame];
    this.#queues.set(via, fresh);
    void this.#pump(via, fresh);
  }

  async #pump(via: string, queue: RelayedFrame[]): Promise<void> {
    while (queue.length) {
      const frames = queue.splice(0, BATCH);
      try {
        await this.events.publish(relayed, { instance: via, frames });
        this.routed += frames.length;
      } catch (err) {
        this.log.warn(
          `relaying ${frames.length} frame(s) to ${via} failed: ${
            err instanceof Error ? err.message : err
          }`,
        );
      }
    }
    this.#queues.delete(via);
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

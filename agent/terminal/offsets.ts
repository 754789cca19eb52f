/**
 * Byte streams with offsets, shared by the agent and the engine. Terminal output,
 * keystrokes and file chunks each carry the offset of their first byte, so either side
 * can drop what it already has (a resend after a reconnect), hold what arrived early (a
 * relay can reorder) and hand on exactly the next bytes, once. The held bytes are
 * bounded: a sender never has more than its window in flight.
 *
 * @module
 */

/** What {@link OffsetAssembler.push} returns. */
export interface Assembled {
  /** Bytes that now continue the stream, in order (empty when nothing new). */
  ready: Uint8Array[];
  /** The chunk was entirely old (a resend). */
  duplicate: boolean;
  /** The chunk was dropped: holding it would exceed the bound. */
  overflow: boolean;
}

/** Reassembles one byte stream. */
export class OffsetAssembler {
  #next: number;
  readonly #held = new Map<number, Uint8Array>();
  #heldBytes = 0;

  /** `next`: the offset expected first; `maxHeld`: bytes that may wait for a gap. */
  constructor(next: number, private readonly maxHeld: number) {
    this.#next = next;
  }

  /** The offset of the next byte the stream expects. */
  get next(): number {
    return this.#next;
  }

  /** Bytes held early. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Restarts at `next` (a resume from the receiver's position); forgets what was held. */
  reset(next: number): void {
    this.#next = next;
    this.#held.clear();
    this.#heldBytes = 0;
  }

  /**
   * The fast path of {@link push} for a relay that does not need the bytes: when `length`
   * bytes at `offset` continue the stream exactly and nothing is held, takes them and
   * returns true; otherwise returns false and the caller pushes the bytes.
   */
  advance(offset: number, length: number): boolean {
    if (offset !== this.#next || this.#held.size || length <= 0) return false;
    this.#next += length;
    return true;
  }

  /** Feeds one chunk. */
  push(offset: number, bytes: Uint8Array): Assembled {
    const end = offset + bytes.length;
    if (end <= this.#next) return { ready: [], duplicate: bytes.length > 0, overflow: false };
    if (offset > this.#next) {
      const old = this.#held.get(offset);
      if (old && old.length >= bytes.length) {
        return { ready: [], duplicate: true, overflow: false };
      }
      if (this.#heldBytes - (old?.length ?? 0) + bytes.length > this.maxHeld) {
        return { ready: [], duplicate: false, overflow: true };
      }
      this.#heldBytes += bytes.length - (old?.length ?? 0);
      this.#held.set(offset, bytes);
      return { ready: [], duplicate: false, overflow: false };
    }
    const ready = [bytes.subarray(this.#next - offset)];
    this.#next = end;
    // Held chunks that now continue the stream (or are covered by it).
    for (let progressed = true; progressed && this.#held.size;) {
      progressed = false;
      for (const [o, b] of this.#held) {
        if (o > this.#next) continue;
        this.#held.delete(o);
        this.#heldBytes -= b.length;
        if (o + b.length > this.#next) {
          ready.push(b.subarray(this.#next - o));
          this.#next = o + b.length;
        }
        progressed = true;
      }
    }
    return { ready, duplicate: false, overflow: false };
  }
}

/** Standard base64 of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** How many bytes canonical standard base64 holds (-1 when it is not canonical). */
export function base64Length(text: string): number {
  if (text.length % 4) return -1;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  return (text.length / 4) * 3 - pad;
}

/** Bytes of standard base64; throws on anything else. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Transcripts of recorded sessions: the output (what the operator saw, not the
 * keystrokes — typed passwords are not echoed and so are not recorded) and the window
 * resizes, as asciicast v2 event lines (`[seconds, "o", text]`, `[seconds, "r",
 * "COLSxROWS"]`), sealed by the vault chunk by chunk. The header line is built when the
 * transcript is read, from the session row. A chunk is sealed once 64 KB have gathered
 * or at the next sweep, so at most one chunk per session waits in memory.
 *
 * @module
 */

/** Where a chunk goes (bound by the plugin to the store and the vault). */
export type ChunkSink = (seq: number, text: string, bytes: number) => Promise<void>;

/** Flush at this many bytes of event text. */
const FLUSH_BYTES = 65_536;

/** Records one session's output. */
export class Recorder {
  readonly #decoder = new TextDecoder("utf-8", { fatal: false });
  #lines: string[] = [];
  #bytes = 0;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly sink: ChunkSink,
    private readonly startedAt: number,
    private seq: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Bytes waiting to be sealed. */
  get pendingBytes(): number {
    return this.#bytes;
  }

  #at(now: number): number {
    return Math.max(0, Math.round(now - this.startedAt)) / 1000;
  }

  /** Output bytes shown at `now` (ms). */
  output(now: number, bytes: Uint8Array): void {
    const text = this.#decoder.decode(bytes, { stream: true });
    if (!text) return;
    this.#push(JSON.stringify([this.#at(now), "o", text]));
  }

  /** A window resize at `now`. */
  resize(now: number, cols: number, rows: number): void {
    this.#push(JSON.stringify([this.#at(now), "r", `${cols}x${rows}`]));
  }

  #push(line: string): void {
    this.#lines.push(line);
    this.#bytes += line.length + 1;
    if (this.#bytes >= FLUSH_BYTES) void this.flush();
  }

  /** Seals what has gathered (chunks are written one after another, in order). */
  flush(): Promise<void> {
    if (!this.#lines.length) return this.#writing;
    const text = this.#lines.join("\n") + "\n";
    const bytes = this.#bytes;
    this.#lines = [];
    this.#bytes = 0;
    const seq = this.seq++;
    this.#writing = this.#writing.then(() => this.sink(seq, text, bytes)).catch(this.onError);
    return this.#writing;
  }
}

/** The asciicast v2 header of a transcript. */
export function asciicastHeader(o: {
  cols: number;
  rows: number;
  startedAt: Date | null;
  title: string;
}): string {
  return JSON.stringify({
    version: 2,
    width: o.cols,
    height: o.rows,
    ...(o.startedAt ? { timestamp: Math.floor(o.startedAt.getTime() / 1000) } : {}),
    title: o.title,
    env: { TERM: "xterm-256color" },
  });
}

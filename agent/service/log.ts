/**
 * The agent's log: one JSON object per line in agent.log, rotated by size
 * (agent.log → agent.log.1 … agent.log.N, oldest dropped). Only the supervising
 * process writes it (it also writes what the worker prints), so rotation never races.
 *
 * @module
 */
import { dirname } from "node:path";

/** Options of {@link RotatingLog}. */
export interface RotatingLogOptions {
  path: string;
  maxBytes?: number;
  keep?: number;
  /** Also print each line here (foreground mode). */
  echo?: (line: string) => void;
}

/** An append-only, size-rotated log file. */
export class RotatingLog {
  #file?: Deno.FsFile;
  #size = 0;
  readonly #enc = new TextEncoder();

  constructor(readonly o: RotatingLogOptions) {}

  #open(): void {
    Deno.mkdirSync(dirname(this.o.path), { recursive: true });
    this.#file = Deno.openSync(this.o.path, { append: true, create: true, mode: 0o640 });
    this.#size = this.#file.statSync().size;
  }

  #rotate(): void {
    this.#file?.close();
    this.#file = undefined;
    const keep = this.o.keep ?? 5;
    try {
      Deno.removeSync(`${this.o.path}.${keep}`);
    } catch { /* none */ }
    for (let i = keep - 1; i >= 1; i--) {
      try {
        Deno.renameSync(`${this.o.path}.${i}`, `${this.o.path}.${i + 1}`);
      } catch { /* none */ }
    }
    try {
      Deno.renameSync(this.o.path, `${this.o.path}.1`);
    } catch { /* none */ }
  }

  /** Writes one line (a newline is added). */
  line(text: string): void {
    this.o.echo?.(text);
    try {
      if (!this.#file) this.#open();
      const bytes = this.#enc.encode(text + "\n");
      if (this.#size + bytes.length > (this.o.maxBytes ?? 10 * 1024 * 1024) && this.#size > 0) {
        this.#rotate();
        this.#open();
      }
      this.#file!.writeSync(bytes);
      this.#size += bytes.length;
    } catch { /* a full disk must not stop the agent */ }
  }

  /** Writes an event as JSON with a timestamp. */
  event(event: string, data: Record<string, unknown> = {}): void {
    this.line(JSON.stringify({ at: new Date().toISOString(), event, ...data }));
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

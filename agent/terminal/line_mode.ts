/**
 * Line mode: the fallback where no pseudo-terminal is reachable (Windows before 10 1809
 * without ConPTY, or a runtime without FFI). The shell runs with pipes; the agent echoes
 * what is typed, handles backspace, and hands the shell one line at Enter. There is no
 * window size, no colours the shell would send only to a terminal, no full-screen
 * programs, and Ctrl+C cannot interrupt a running command (there is no terminal to
 * deliver it): it is echoed as ^C and discards the line being typed.
 *
 * @module
 */
import type { Pty, PtySpawn } from "./pty.ts";

const enc = new TextEncoder();

/** A shell on pipes with a minimal line discipline. */
export class LineModeShell implements Pty {
  readonly mode = "line" as const;
  readonly pid: number;
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #wake: () => void = () => {};
  #eof = 0;
  #line: number[] = [];
  #closed = false;
  #exit: Promise<number>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = child.pid;
    this.#writer = child.stdin.getWriter();
    this.#exit = child.status.then((s) => s.signal ? 128 : s.code);
    void this.#pump(child.stdout);
    void this.#pump(child.stderr);
  }

  /** Starts `o.file` with pipes (`argv[0]` is dropped: pipes need no login shell). */
  static spawn(o: PtySpawn): LineModeShell {
    const child = new Deno.Command(o.file, {
      args: o.argv.slice(1),
      env: o.env,
      clearEnv: Deno.build.os !== "windows",
      cwd: o.cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new LineModeShell(child);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of stream) {
        // A terminal expects CR LF; pipes give LF.
        const text = new TextDecoder().decode(chunk).replace(/\r?\n/g, "\r\n");
        this.#queue(enc.encode(text));
        // The shell outruns the reader only by what the pipes hold.
        while (this.#outBytes > 1_048_576 && !this.#closed) {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    } catch { /* closed */ }
    this.#eof++;
    this.#wake();
  }

  #queue(bytes: Uint8Array): void {
    if (!bytes.length) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    this.#wake();
  }

  async read(max: number): Promise<Uint8Array | null> {
    while (!this.#out.length) {
      if (this.#closed || this.#eof >= 2) return null;
      await new Promise<void>((r) => (this.#wake = r));
    }
    const first = this.#out[0]!;
    if (first.length <= max) {
      this.#out.shift();
      this.#outBytes -= first.length;
      return first;
    }
    this.#out[0] = first.subarray(max);
    this.#outBytes -= max;
    return first.subarray(0, max);
  }

  write(data: Uint8Array): number {
    for (const b of data) {
      if (b === 0x0d || b === 0x0a) {
        this.#queue(enc.encode("\r\n"));
        const line = new Uint8Array([...this.#line, 0x0a]);
        this.#line = [];
        this.#writer.write(line).catch(() => {});
      } else if (b === 0x7f || b === 0x08) {
        if (this.#line.length) {
          this.#line.pop();
          this.#queue(enc.encode("\b \b"));
        }
      } else if (b === 0x03) {
        this.#line = [];
        this.#queue(enc.encode("^C\r\n"));
      } else if (b >= 0x20 || b === 0x09) {
        this.#line.push(b);
        this.#queue(new Uint8Array([b]));
      }
    }
    return data.length;
  }

  resize(): void {/* pipes have no window */}

  wait(): Promise<number> {
    return this.#exit;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake();
    await this.#writer.close().catch(() => {});
    try {
      this.#child.kill(Deno.build.os === "windows" ? undefined : "SIGHUP");
    } catch { /* gone */ }
    const gone = await Promise.race([
      this.#exit.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
    ]);
    if (!gone) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }
}

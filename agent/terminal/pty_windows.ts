/**
 * A pseudo console on Windows (ConPTY, Windows 10 1809 and later) through Deno's FFI to
 * kernel32: two pipes, `CreatePseudoConsole` over them, PowerShell started with the
 * pseudo console as a process attribute (`STARTUPINFOEX`), `ResizePseudoConsole` for
 * the window size. Output is read with `ReadFile` run as a non-blocking FFI call (on a
 * worker thread); keystrokes are queued and written the same way, so a slow console
 * host never blocks the agent. Where `CreatePseudoConsole` does not exist, the caller
 * falls back to line mode (./line_mode.ts).
 *
 * THIS MODULE IS UNTESTED: the project has no Windows machine. It is type-checked, and
 * written from the Win32 documentation (x64 structure layouts).
 *
 * @module
 */
import type { Pty, PtySpawn } from "./pty.ts";

const EXTENDED_STARTUPINFO_PRESENT = 0x00080000;
const CREATE_UNICODE_ENVIRONMENT = 0x00000400;
const STARTF_USESTDHANDLES = 0x00000100;
const PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE = 0x00020016n;
const INFINITE = 0xffffffff;
const WAIT_OBJECT_0 = 0;
/** sizeof(STARTUPINFOEXW) on x64. */
const STARTUPINFOEX_BYTES = 112;
/** sizeof(PROCESS_INFORMATION) on x64. */
const PROCESS_INFORMATION_BYTES = 24;

const SYMBOLS = {
  CreatePipe: { parameters: ["buffer", "buffer", "pointer", "u32"], result: "i32" },
  CreatePseudoConsole: {
    parameters: ["u32", "pointer", "pointer", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
  ResizePseudoConsole: { parameters: ["pointer", "u32"], result: "i32", optional: true },
  ClosePseudoConsole: {
    parameters: ["pointer"],
    result: "void",
    optional: true,
    nonblocking: true,
  },
  InitializeProcThreadAttributeList: {
    parameters: ["pointer", "u32", "u32", "buffer"],
    result: "i32",
  },
  UpdateProcThreadAttribute: {
    parameters: ["buffer", "u32", "usize", "pointer", "usize", "pointer", "pointer"],
    result: "i32",
  },
  DeleteProcThreadAttributeList: { parameters: ["buffer"], result: "void" },
  CreateProcessW: {
    parameters: [
      "pointer",
      "buffer",
      "pointer",
      "pointer",
      "i32",
      "u32",
      "pointer",
      "pointer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  ReadFile: {
    parameters: ["pointer", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  WriteFile: {
    parameters: ["pointer", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32", nonblocking: true },
  GetExitCodeProcess: { parameters: ["pointer", "buffer"], result: "i32" },
  TerminateProcess: { parameters: ["pointer", "u32"], result: "i32" },
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  GetLastError: { parameters: [], result: "u32" },
} as const;

type Kernel32 = Deno.DynamicLibrary<typeof SYMBOLS>;
let lib: Kernel32 | undefined;

function kernel32(): Kernel32 {
  lib ??= Deno.dlopen("kernel32.dll", SYMBOLS);
  return lib;
}

/** True where ConPTY is available (Windows 10 1809+, FFI allowed). */
export function conptyAvailable(): boolean {
  if (Deno.build.os !== "windows") return false;
  try {
    return kernel32().symbols.CreatePseudoConsole !== null;
  } catch {
    return false;
  }
}

function wstr(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return new Uint8Array(out.buffer);
}

const coord = (cols: number, rows: number) => ((rows & 0xffff) << 16 | (cols & 0xffff)) >>> 0;

function handleOut(buf: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(buf[0]!);
}

function quoteArg(a: string): string {
  return /[\s"]/.test(a) ? `"${a.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"` : a;
}

/** A shell on a Windows pseudo console. */
export class ConPty implements Pty {
  readonly mode = "pty" as const;
  #closed = false;
  #exit: Promise<number>;
  #writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly pid: number,
    private readonly hpc: Deno.PointerValue,
    private readonly process: Deno.PointerValue,
    private readonly inWrite: Deno.PointerValue,
    private readonly outRead: Deno.PointerValue,
  ) {
    const k = kernel32().symbols;
    this.#exit = (async () => {
      await k.WaitForSingleObject(process, INFINITE) === WAIT_OBJECT_0;
      const code = new Uint32Array(1);
      k.GetExitCodeProcess(process, new Uint8Array(code.buffer));
      return code[0]!;
    })();
  }

  /** Starts `o.file` on a new pseudo console of `o.cols` × `o.rows`. */
  static spawn(o: PtySpawn): ConPty {
    const k = kernel32().symbols;
    if (!k.CreatePseudoConsole) throw new Error("CreatePseudoConsole is not available");
    const inRead = new BigUint64Array(1);
    const inWrite = new BigUint64Array(1);
    const outRead = new BigUint64Array(1);
    const outWrite = new BigUint64Array(1);
    const u8 = (b: BigUint64Array) => new Uint8Array(b.buffer);
    if (!k.CreatePipe(u8(inRead), u8(inWrite), null, 0)) {
      throw new Error(`CreatePipe failed (${k.GetLastError()})`);
    }
    if (!k.CreatePipe(u8(outRead), u8(outWrite), null, 0)) {
      throw new Error(`CreatePipe failed (${k.GetLastError()})`);
    }
    const hpcOut = new BigUint64Array(1);
    const hr = k.CreatePseudoConsole(
      coord(o.cols, o.rows),
      handleOut(inRead),
      handleOut(outWrite),
      0,
      u8(hpcOut),
    );
    // The pseudo console holds its own copies of its ends of the pipes.
    k.CloseHandle(handleOut(inRead));
    k.CloseHandle(handleOut(outWrite));
    if (hr !== 0) throw new Error(`CreatePseudoConsole failed (HRESULT ${hr >>> 0})`);
    const hpc = handleOut(hpcOut);

    const size = new BigUint64Array(1);
    k.InitializeProcThreadAttributeList(null, 1, 0, u8(size));
    const attrs = new Uint8Array(Number(size[0]));
    if (!k.InitializeProcThreadAttributeList(Deno.UnsafePointer.of(attrs), 1, 0, u8(size))) {
      throw new Error(`InitializeProcThreadAttributeList failed (${k.GetLastError()})`);
    }
    try {
      if (
        !k.UpdateProcThreadAttribute(
          attrs,
          0,
          PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE,
          hpc,
          8n,
          null,
          null,
        )
      ) {
        throw new Error(`UpdateProcThreadAttribute failed (${k.GetLastError()})`);
      }
      const si = new Uint8Array(STARTUPINFOEX_BYTES);
      const view = new DataView(si.buffer);
      view.setUint32(0, STARTUPINFOEX_BYTES, true); // cb
      // No standard handles: the child must not inherit the service's redirected ones.
      view.setUint32(60, STARTF_USESTDHANDLES, true); // dwFlags
      view.setBigUint64(104, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(attrs))), true);
      const pi = new Uint8Array(PROCESS_INFORMATION_BYTES);
      const cmdline = wstr(o.argv.map(quoteArg).join(" "));
      const envEntries = Object.entries(o.env);
      const env = envEntries.length
        ? wstr(envEntries.map(([k, v]) => `${k}=${v}`).join("\0") + "\0")
        : null;
      const file = wstr(o.file);
      const cwd = o.cwd ? wstr(o.cwd) : null;
      const ok = k.CreateProcessW(
        Deno.UnsafePointer.of(file),
        cmdline,
        null,
        null,
        0,
        EXTENDED_STARTUPINFO_PRESENT | (env ? CREATE_UNICODE_ENVIRONMENT : 0),
        env ? Deno.UnsafePointer.of(env) : null,
        cwd ? Deno.UnsafePointer.of(cwd) : null,
        si,
        pi,
      );
      // Referenced after the call so the collector cannot take them before it.
      void file.length, void env?.length, void cwd?.length;
      if (!ok) throw new Error(`CreateProcessW ${o.file} failed (${k.GetLastError()})`);
      const piView = new DataView(pi.buffer);
      const process = Deno.UnsafePointer.create(piView.getBigUint64(0, true));
      k.CloseHandle(Deno.UnsafePointer.create(piView.getBigUint64(8, true)));
      return new ConPty(
        piView.getUint32(16, true),
        hpc,
        process,
        handleOut(inWrite),
        handleOut(outRead),
      );
    } finally {
      k.DeleteProcThreadAttributeList(attrs);
    }
  }

  async read(max: number): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    const buf = new Uint8Array(max);
    const got = new Uint32Array(1);
    const ok = await kernel32().symbols.ReadFile(
      this.outRead,
      buf,
      max,
      new Uint8Array(got.buffer),
      null,
    );
    // A broken pipe: the pseudo console has closed.
    if (!ok || got[0] === 0) return null;
    return buf.subarray(0, got[0]);
  }

  write(data: Uint8Array): number {
    if (this.#closed) return 0;
    const copy = new Uint8Array(data);
    this.#writing = this.#writing.then(async () => {
      const done = new Uint32Array(1);
      await kernel32().symbols.WriteFile(
        this.inWrite,
        copy,
        copy.length,
        new Uint8Array(done.buffer),
        null,
      );
    });
    return data.length;
  }

  resize(cols: number, rows: number): void {
    if (!this.#closed) kernel32().symbols.ResizePseudoConsole?.(this.hpc, coord(cols, rows));
  }

  wait(): Promise<number> {
    return this.#exit;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const k = kernel32().symbols;
    k.TerminateProcess(this.process, 1);
    k.CloseHandle(this.inWrite);
    await k.ClosePseudoConsole?.(this.hpc);
    k.CloseHandle(this.outRead);
    k.CloseHandle(this.process);
  }
}

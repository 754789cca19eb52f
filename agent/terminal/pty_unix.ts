/**
 * A real pseudo-terminal on Linux and macOS through Deno's FFI to the C library — Deno
 * has no PTY API, and the agent runs on the plain Deno runtime of its package, where
 * `--allow-all` includes FFI. No native addon is involved, so the per-platform packages
 * stay the runtime plus one bundled file.
 *
 * How: `posix_openpt` + `grantpt` + `unlockpt` + `ptsname_r` give the master and the
 * slave's path; `posix_spawn` starts the shell with `POSIX_SPAWN_SETSID` (its own
 * session), an open of the slave as fd 0 (a session leader opening a terminal without
 * `O_NOCTTY` acquires it as its controlling terminal, on Linux and on XNU alike) and
 * dups to 1 and 2, every signal back to its default and an empty signal mask (the
 * runtime ignores SIGPIPE; a shell must not inherit that). `posix_spawn` does not fork
 * the JavaScript engine, which is why it is used instead of `fork`. The master is
 * non-blocking: output is awaited with `poll` run as a non-blocking FFI call (on a
 * worker thread, with a short timeout so a close is noticed), then read synchronously.
 * `ioctl(TIOCSWINSZ)` resizes. `ioctl` and `fcntl` are variadic; on Apple arm64 variadic
 * arguments travel on the stack, so there they are declared with six padding arguments
 * that push the real one into the first stack slot.
 *
 * Linux x86-64 is what this project tests. The macOS constants and the arm64 calling
 * convention are written from Apple's headers and are not exercised here.
 *
 * @module
 */
import type { Pty, PtySpawn } from "./pty.ts";

interface Consts {
  lib: string;
  O_RDWR: number;
  O_NOCTTY: number;
  O_NONBLOCK: number;
  TIOCSWINSZ: bigint;
  SPAWN_SETSIGDEF: number;
  SPAWN_SETSIGMASK: number;
  SPAWN_SETSID: number;
  SIGSET_BYTES: number;
  EAGAIN: number;
  EINTR: number;
  errno: string;
}

const LINUX: Consts = {
  lib: "libc.so.6",
  O_RDWR: 2,
  O_NOCTTY: 0o400,
  O_NONBLOCK: 0o4000,
  TIOCSWINSZ: 0x5414n,
  SPAWN_SETSIGDEF: 0x04,
  SPAWN_SETSIGMASK: 0x08,
  SPAWN_SETSID: 0x80,
  SIGSET_BYTES: 128,
  EAGAIN: 11,
  EINTR: 4,
  errno: "__errno_location",
};

const DARWIN: Consts = {
  lib: "/usr/lib/libSystem.B.dylib",
  O_RDWR: 2,
  O_NOCTTY: 0x20000,
  O_NONBLOCK: 0x4,
  TIOCSWINSZ: 0x80087467n,
  SPAWN_SETSIGDEF: 0x04,
  SPAWN_SETSIGMASK: 0x08,
  SPAWN_SETSID: 0x400,
  SIGSET_BYTES: 4,
  EAGAIN: 35,
  EINTR: 4,
  errno: "__error",
};

const F_GETFL = 3;
const F_SETFL = 4;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const POLLIN = 0x1;
const WNOHANG = 1;
/** Opaque posix_spawn structures: 336 and 80 bytes on glibc, one pointer on macOS. */
const OPAQUE_BYTES = 512;

/** Apple arm64 passes variadic arguments on the stack (see the module comment). */
const appleArm = Deno.build.os === "darwin" && Deno.build.arch === "aarch64";
const PAD = appleArm ? ["u64", "u64", "u64", "u64", "u64", "u64"] as const : [] as const;

function symbols(c: Consts) {
  return {
    posix_openpt: { parameters: ["i32"], result: "i32" },
    grantpt: { parameters: ["i32"], result: "i32" },
    unlockpt: { parameters: ["i32"], result: "i32" },
    ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
    ioctl: { parameters: ["i32", "u64", ...PAD, "buffer"], result: "i32" },
    fcntl: { parameters: ["i32", "i32", ...PAD, "i64"], result: "i32" },
    posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
    posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
    posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
    posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
    posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
    posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
    posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
    posix_spawn_file_actions_addopen: {
      parameters: ["buffer", "i32", "buffer", "i32", "u32"],
      result: "i32",
    },
    posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
    posix_spawn_file_actions_addchdir_np: {
      parameters: ["buffer", "buffer"],
      result: "i32",
      optional: true,
    },
    posix_spawn: {
      parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
      result: "i32",
    },
    sigemptyset: { parameters: ["buffer"], result: "i32" },
    sigfillset: { parameters: ["buffer"], result: "i32" },
    poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
    kill: { parameters: ["i32", "i32"], result: "i32" },
    [c.errno]: { name: c.errno, parameters: [], result: "pointer" },
  } as const;
}

type Lib = Deno.DynamicLibrary<ReturnType<typeof symbols>>;
let loaded: { lib: Lib; c: Consts } | undefined;

function libc(): { lib: Lib; c: Consts } {
  if (loaded) return loaded;
  const c = Deno.build.os === "darwin" ? DARWIN : LINUX;
  loaded = { lib: Deno.dlopen(c.lib, symbols(c)) as unknown as Lib, c };
  return loaded;
}

/** True where this module can open a terminal (Linux and macOS with FFI allowed). */
export function unixPtyAvailable(): boolean {
  if (Deno.build.os !== "linux" && Deno.build.os !== "darwin") return false;
  try {
    libc();
    return true;
  } catch {
    return false;
  }
}

/** `ioctl(fd, request, arg)` (variadic: see the module comment). */
function ioctl(fd: number, request: bigint, arg: Uint8Array): number {
  const f = libc().lib.symbols.ioctl as unknown as (...a: unknown[]) => number;
  return f(fd, request, ...PAD.map(() => 0n), arg);
}

/** `fcntl(fd, cmd, arg)` (variadic, an integer argument). */
function fcntl(fd: number, cmd: number, arg: number): number {
  const f = libc().lib.symbols.fcntl as unknown as (...a: unknown[]) => number;
  return f(fd, cmd, ...PAD.map(() => 0n), BigInt(arg));
}

function errno(): number {
  const { lib, c } = libc();
  const p = (lib.symbols as Record<string, () => Deno.PointerValue>)[c.errno]!();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** A NULL-terminated array of C strings; `keep` holds the strings alive. */
function cstrArray(items: string[]): { array: BigUint64Array<ArrayBuffer>; keep: Uint8Array[] } {
  const keep = items.map(cstr);
  const array = new BigUint64Array(items.length + 1);
  keep.forEach((b, i) => (array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)))));
  return { array, keep };
}

function check(what: string, rc: number): void {
  if (rc !== 0) throw new Error(`${what} failed (${rc === -1 ? `errno ${errno()}` : rc})`);
}

function winsize(cols: number, rows: number): Uint8Array<ArrayBuffer> {
  const ws = new Uint16Array([rows, cols, 0, 0]);
  return new Uint8Array(ws.buffer);
}

/** Decodes a waitpid status: the exit code, or 128 + the signal that ended it. */
export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  return sig === 0 ? (status >> 8) & 0xff : 128 + sig;
}

/** A shell on a pseudo-terminal. */
export class UnixPty implements Pty {
  readonly mode = "pty" as const;
  #fd: number;
  #closed = false;
  #exit?: number;
  #exited: Promise<number>;
  #resolveExit!: (code: number) => void;
  #pollFd = new Uint8Array(8);

  private constructor(readonly pid: number, fd: number) {
    this.#fd = fd;
    this.#exited = new Promise((r) => (this.#resolveExit = r));
    new DataView(this.#pollFd.buffer).setInt32(0, fd, true);
    new DataView(this.#pollFd.buffer).setInt16(4, POLLIN, true);
  }

  /** Opens a terminal and starts `o.file` on it as a session leader. */
  static spawn(o: PtySpawn): UnixPty {
    const { lib, c } = libc();
    const s = lib.symbols;
    const master = s.posix_openpt(c.O_RDWR | c.O_NOCTTY);
    if (master < 0) throw new Error(`posix_openpt failed (errno ${errno()})`);
    try {
      check("grantpt", s.grantpt(master));
      check("unlockpt", s.unlockpt(master));
      const name = new Uint8Array(256);
      check("ptsname_r", s.ptsname_r(master, name, BigInt(name.length)));
      const slave = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
      fcntl(master, F_SETFD, FD_CLOEXEC);
      fcntl(master, F_SETFL, fcntl(master, F_GETFL, 0) | c.O_NONBLOCK);
      ioctl(master, c.TIOCSWINSZ, winsize(o.cols, o.rows));

      const attr = new Uint8Array(OPAQUE_BYTES);
      const actions = new Uint8Array(OPAQUE_BYTES);
      const empty = new Uint8Array(c.SIGSET_BYTES);
      const all = new Uint8Array(c.SIGSET_BYTES);
      check("sigemptyset", s.sigemptyset(empty));
      check("sigfillset", s.sigfillset(all));
      check("posix_spawnattr_init", s.posix_spawnattr_init(attr));
      check("posix_spawn_file_actions_init", s.posix_spawn_file_actions_init(actions));
      try {
        check(
          "posix_spawnattr_setflags",
          s.posix_spawnattr_setflags(
            attr,
            c.SPAWN_SETSID | c.SPAWN_SETSIGDEF | c.SPAWN_SETSIGMASK,
          ),
        );
        check("posix_spawnattr_setsigmask", s.posix_spawnattr_setsigmask(attr, empty));
        check("posix_spawnattr_setsigdefault", s.posix_spawnattr_setsigdefault(attr, all));
        const slavePath = cstr(slave);
        check(
          "addopen",
          s.posix_spawn_file_actions_addopen(actions, 0, slavePath, c.O_RDWR, 0),
        );
        check("adddup2", s.posix_spawn_file_actions_adddup2(actions, 0, 1));
        check("adddup2", s.posix_spawn_file_actions_adddup2(actions, 0, 2));
        const cwd = o.cwd ? cstr(o.cwd) : undefined;
        if (cwd && s.posix_spawn_file_actions_addchdir_np) {
          s.posix_spawn_file_actions_addchdir_np(actions, cwd);
        }
        const argv = cstrArray(o.argv);
        const envp = cstrArray(Object.entries(o.env).map(([k, v]) => `${k}=${v}`));
        const pid = new Int32Array(1);
        const rc = s.posix_spawn(
          new Uint8Array(pid.buffer),
          cstr(o.file),
          actions,
          attr,
          new Uint8Array(argv.array.buffer),
          new Uint8Array(envp.array.buffer),
        );
        if (rc !== 0) throw new Error(`posix_spawn ${o.file} failed (error ${rc})`);
        // Referenced after the call so the collector cannot take them before it.
        void argv.keep.length, void envp.keep.length, void slavePath.length;
        const pty = new UnixPty(pid[0]!, master);
        void pty.#reap();
        return pty;
      } finally {
        s.posix_spawnattr_destroy(attr);
        s.posix_spawn_file_actions_destroy(actions);
      }
    } catch (err) {
      s.close(master);
      throw err;
    }
  }

  /** Collects the exit status without blocking a thread per session. */
  async #reap(): Promise<void> {
    const { lib } = libc();
    const status = new Int32Array(1);
    const buf = new Uint8Array(status.buffer);
    for (let wait = 20; this.#exit === undefined; wait = Math.min(wait * 2, 500)) {
      const r = lib.symbols.waitpid(this.pid, buf, WNOHANG);
      if (r === this.pid) {
        this.#exit = exitCodeOf(status[0]!);
        break;
      }
      if (r < 0) {
        this.#exit = 255; // not ours to wait for any more
        break;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
    this.#resolveExit(this.#exit!);
  }

  async read(max: number): Promise<Uint8Array | null> {
    const { lib, c } = libc();
    const buf = new Uint8Array(max);
    while (!this.#closed) {
      // The kernel hands out at most a few KB per read: take what is there now, up to max.
      let got = 0;
      let eof = false;
      for (;;) {
        const n = Number(
          lib.symbols.read(this.#fd, got ? buf.subarray(got) : buf, BigInt(max - got)),
        );
        if (n > 0) {
          got += n;
          if (got < max) continue;
        } else if (n === 0) eof = true;
        break;
      }
      if (got > 0) return buf.subarray(0, got);
      if (eof) return null;
      const e = errno();
      if (e === c.EINTR) continue;
      // EIO: every slave descriptor is closed (the shell and its children are gone).
      if (e !== c.EAGAIN) return null;
      await lib.symbols.poll(this.#pollFd, 1n, 200);
    }
    return null;
  }

  write(data: Uint8Array): number {
    if (this.#closed || !data.length) return 0;
    const { lib, c } = libc();
    const n = Number(
      lib.symbols.write(this.#fd, data as Uint8Array<ArrayBuffer>, BigInt(data.length)),
    );
    if (n >= 0) return n;
    const e = errno();
    if (e === c.EAGAIN || e === c.EINTR) return 0;
    throw new Error(`write to the terminal failed (errno ${e})`);
  }

  resize(cols: number, rows: number): void {
    if (this.#closed) return;
    ioctl(this.#fd, libc().c.TIOCSWINSZ, winsize(cols, rows));
  }

  wait(): Promise<number> {
    return this.#exited;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const { lib } = libc();
    // The shell leads its own session and process group: signal the whole group.
    if (this.#exit === undefined) {
      lib.symbols.kill(-this.pid, 1); // SIGHUP, what a closed terminal sends
      const killed = await Promise.race([
        this.#exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
      ]);
      if (!killed) lib.symbols.kill(-this.pid, 9);
    }
    this.#closed = true;
    lib.symbols.close(this.#fd);
  }
}

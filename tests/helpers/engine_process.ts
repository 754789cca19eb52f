/**
 * The engine as a real process (`main.ts start`) for fault tests: optionally under a
 * lowered open-file limit (`prlimit`) or as another user (`runuser`), its log lines
 * collected, ready once `/health/ready` answers.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** Options of {@link startEngineProcess}. */
export interface EngineProcessOptions {
  env: Record<string, string>;
  /** Run under `prlimit --nofile=N:N`. */
  nofile?: number;
  /** Run as this user (`runuser -u <user> --`; the test must be root). */
  user?: string;
  /**
   * Run without the capabilities that let root ignore file permissions
   * (`setpriv --bounding-set=-dac_override,…`), so a `chmod a-w` binds it.
   */
  honourFileModes?: boolean;
  /** Wait for `/health/ready` to answer 200 (default true). */
  waitReady?: boolean;
}

/** A running engine process. */
export interface EngineProcess {
  url: string;
  port: number;
  child: Deno.ChildProcess;
  /** Log lines written so far (stderr). */
  lines: string[];
  /** True once the process has exited. */
  readonly exited: boolean;
  /** Waits for a log line matching `re`. */
  waitForLine(re: RegExp, ms?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

/** True when a program is on PATH. */
export async function hasProgram(name: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** A free loopback port. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

/** Polls `pred` until it holds, or throws after `ms`. */
export async function until(
  pred: () => boolean | Promise<boolean>,
  ms = 30_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `main.ts start` on a free port. */
export async function startEngineProcess(o: EngineProcessOptions): Promise<EngineProcess> {
  const port = freePort();
  const deno = [Deno.execPath(), "run", "-A", `${ROOT}main.ts`, "start"];
  const prefix = [
    ...(o.honourFileModes
      ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
      : []),
    ...(o.user ? ["runuser", "-u", o.user, "--"] : []),
    ...(o.nofile ? ["prlimit", `--nofile=${o.nofile}:${o.nofile}`] : []),
  ];
  const cmd = [...prefix, ...deno];
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    cwd: ROOT,
    env: {
      BOREALIS_PORT: String(port),
      // Deno keeps its caches per user; another user needs its own.
      ...(o.user
        ? { DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno` }
        : {}),
      ...o.env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let exited = false;
  child.status.then(() => (exited = true));
  (async () => {
    let buffer = "";
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        const parts = buffer.split("\n");
        buffer = parts.pop() ?? "";
        lines.push(...parts);
      }
    } catch { /* closed */ }
    if (buffer) lines.push(buffer);
  })();
  const url = `http://127.0.0.1:${port}`;
  const proc: EngineProcess = {
    url,
    port,
    child,
    lines,
    get exited() {
      return exited;
    },
    async waitForLine(re, ms = 30_000) {
      await until(() => lines.some((l) => re.test(l)) || exited, ms, `log line ${re}`);
      const line = lines.find((l) => re.test(l));
      if (!line) throw new Error(`engine exited without ${re}:\n${lines.slice(-30).join("\n")}`);
      return line;
    },
    async stop(graceMs = 20_000) {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      const status = await child.status;
      clearTimeout(timer);
      return status;
    },
  };
  if (o.waitReady ?? true) {
    try {
      await until(
        async () => {
          if (exited) throw new Error(`engine exited:\n${lines.slice(-30).join("\n")}`);
          try {
            const r = await fetch(`${url}/health/ready`);
            await r.body?.cancel();
            return r.ok;
          } catch {
            return false;
          }
        },
        90_000,
        "engine ready",
      );
    } catch (err) {
      await proc.stop(1000);
      throw err;
    }
  }
  return proc;
}

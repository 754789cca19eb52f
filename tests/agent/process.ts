/**
 * The reference agent's command line (cli.ts) as a real child process, for end-to-end
 * tests: its JSON event lines are collected as they arrive.
 *
 * @module
 */

/** One event line the CLI printed. */
export type AgentEvent = Record<string, unknown>;

/** How a CLI process ended. */
export interface AgentExit {
  code: number;
  events: AgentEvent[];
  stderr: string;
}

/** A running CLI process. */
export interface AgentProcess {
  /** Events so far, oldest first. */
  events: AgentEvent[];
  /** Resolves when the process has exited and its output is read. */
  done: Promise<AgentExit>;
  /**
   * Waits (real time) for an event matching `pred` at index `from` or later; throws when
   * the process ends first.
   */
  waitFor(
    pred: (e: AgentEvent) => boolean,
    opts?: { from?: number; timeoutMs?: number },
  ): Promise<AgentEvent>;
  /** Sends a signal (no error when the process is gone). */
  kill(signal?: Deno.Signal): void;
}

const CLI = new URL("./cli.ts", import.meta.url).pathname;

/**
 * Spawns `deno run -A tests/agent/cli.ts …args`; `onLine` sees each event in order, `env`
 * is added to the inherited environment.
 */
export function spawnAgent(
  args: string[],
  opts: { onLine?: (e: AgentEvent) => void | Promise<void>; env?: Record<string, string> } = {},
): AgentProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const events: AgentEvent[] = [];
  const stderr = new Response(child.stderr).text();
  let exited = false;
  const read = async () => {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const e = JSON.parse(line);
        events.push(e);
        await opts.onLine?.(e);
      }
    }
  };
  const done = (async () => {
    await read();
    const status = await child.status;
    exited = true;
    return { code: status.code, events, stderr: await stderr };
  })();
  return {
    events,
    done,
    async waitFor(pred, opts = {}) {
      const end = Date.now() + (opts.timeoutMs ?? 30_000);
      for (;;) {
        const hit = events.slice(opts.from ?? 0).find(pred);
        if (hit) return hit;
        if (exited || Date.now() > end) {
          const why = exited ? "the agent exited" : "timed out";
          throw new Error(`${why} waiting for an event; events: ${JSON.stringify(events)}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    kill(signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    },
  };
}

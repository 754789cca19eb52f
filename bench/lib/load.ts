/**
 * Load generation for benchmarks. Uses `wrk` (Debian package) when present, pinned to
 * the last core with taskset so the server keeps the others; otherwise a Deno fetch
 * client in a separate process. Either way the baseline and the subject are measured
 * by the same generator in the same run, so their ratio is what matters.
 *
 * @module
 */

/** Result of one load run. */
export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  tool: string;
}

/** Options for {@link measure}. */
export interface LoadOptions {
  durationSeconds?: number;
  connections?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

let wrkPath: string | null | undefined;

async function findWrk(): Promise<string | null> {
  if (wrkPath !== undefined) return wrkPath;
  try {
    const { success, stdout } = await new Deno.Command("sh", {
      args: ["-c", "command -v wrk"],
      stdout: "piped",
    })
      .output();
    wrkPath = success ? new TextDecoder().decode(stdout).trim() : null;
  } catch {
    wrkPath = null;
  }
  return wrkPath;
}

/** CPU cores, for pinning. */
export const cores: number = navigator.hardwareConcurrency || 1;

/** `taskset` prefix pinning a command to one core (empty on one-core machines). */
export function pin(core: number): string[] {
  return cores > 1 ? ["taskset", "-c", String(core % cores)] : [];
}

function luaScript(o: LoadOptions): string {
  const lines = [`wrk.method = ${JSON.stringify(o.method ?? "GET")}`];
  for (const [k, v] of Object.entries(o.headers ?? {})) {
    lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  }
  if (o.body !== undefined) lines.push(`wrk.body = ${JSON.stringify(o.body)}`);
  lines.push(
    `done = function(summary, latency, requests)`,
    `  io.write(string.format("JSON {\\"rps\\":%f,\\"p50\\":%f,\\"p99\\":%f,\\"errors\\":%d}\\n",`,
    `    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,`,
    `    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))`,
    `end`,
  );
  return lines.join("\n");
}

/** Measures a URL under load. */
export async function measure(url: string, options: LoadOptions = {}): Promise<LoadResult> {
  const duration = options.durationSeconds ?? 5;
  const connections = options.connections ?? 50;
  const wrk = await findWrk();
  if (wrk) {
    const script = await Deno.makeTempFile({ suffix: ".lua" });
    await Deno.writeTextFile(script, luaScript(options));
    try {
      const cmd = [
        ...pin(cores - 1),
        wrk,
        "-t1",
        `-c${connections}`,
        `-d${duration}s`,
        "-s",
        script,
        url,
      ];
      const { stdout } = await new Deno.Command(cmd[0]!, {
        args: cmd.slice(1),
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      const text = new TextDecoder().decode(stdout);
      const json = /JSON (\{.*\})/.exec(text)?.[1];
      if (!json) throw new Error(`wrk printed no result: ${text}`);
      const r = JSON.parse(json);
      return {
        requestsPerSecond: r.rps,
        p50Ms: r.p50,
        p99Ms: r.p99,
        errors: r.errors,
        tool: "wrk",
      };
    } finally {
      await Deno.remove(script).catch(() => {});
    }
  }
  return await fetchLoad(url, duration, connections, options);
}

async function fetchLoad(
  url: string,
  duration: number,
  connections: number,
  o: LoadOptions,
): Promise<LoadResult> {
  const deadline = performance.now() + duration * 1000;
  const latencies: number[] = [];
  let errors = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await fetch(url, {
          method: o.method ?? "GET",
          headers: o.headers,
          body: o.body,
        });
        await res.arrayBuffer();
        if (res.status >= 400) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return {
    requestsPerSecond: latencies.length / seconds,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    errors,
    tool: "deno-fetch (install wrk for better figures)",
  };
}

/** A server process started for a benchmark. */
export interface ServerProcess {
  port: number;
  pid: number;
  /** CPU time the process has used so far (ms, all threads), or null off Linux. */
  cpuMs(): number | null;
  stop(): Promise<void>;
}

/**
 * CPU time of a process in ms, summed over its threads (Linux /proc). Per request it is
 * a steadier figure than requests per second on a machine other work shares.
 */
export function processCpuMs(pid: number): number | null {
  try {
    let ticks = 0;
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      const f = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`).split(") ")[1]!
        .split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
    }
    return ticks * 10; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** Starts `deno run -A <script>` pinned to core 0; the script prints "READY <port>". */
export async function startServer(
  script: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const cmd = [...pin(0), Deno.execPath(), "run", "-A", script];
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server ${script} exited before READY: ${buffer}`);
    buffer += value;
    const m = /READY (\d+)/.exec(buffer);
    if (m) {
      // Keep draining stdout so the child never blocks on a full pipe.
      (async () => {
        try {
          while (!(await reader.read()).done) { /* discard */ }
        } catch { /* closed */ }
      })();
      return {
        port: Number(m[1]),
        pid: child.pid,
        cpuMs: () => processCpuMs(child.pid),
        async stop() {
          try {
            child.kill("SIGTERM");
          } catch { /* gone */ }
          await child.status;
        },
      };
    }
  }
}

/** Formats a req/s figure. */
export function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1);
}

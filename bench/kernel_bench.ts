/**
 * GET /health and GET /health/ready through the engine's full middleware stack (every
 * built-in plugin loaded) on its own listener, against the same engine handler on a bare
 * `Deno.serve` (no connection limits: what the listener costs) and a bare Deno.serve
 * handler; same load generator, same run. The servers are measured in turns,
 * `BENCH_ROUNDS` times, and the median of each is printed, so one noisy moment on a
 * shared machine does not decide the figure. Besides requests per second, each server's
 * own CPU time per request is printed (Linux): on a machine other work shares it is the
 * steadier figure.
 */
import { fmt, type LoadResult, measure, type ServerProcess, startServer } from "./lib/load.ts";

const duration = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const rounds = Math.max(1, Number(Deno.env.get("BENCH_ROUNDS") ?? 3));
const here = new URL(".", import.meta.url).pathname;

const fixtures = ["bare_server.ts", "engine_serve_server.ts", "engine_server.ts"] as const;
type Run = LoadResult & { cpuUs: number | null };
const servers: ServerProcess[] = [];
for (const f of fixtures) servers.push(await startServer(`${here}fixtures/${f}`));
const runs = new Map<string, Run[]>();

async function run(s: ServerProcess, key: string, path: string) {
  const before = s.cpuMs();
  const r = await measure(`http://127.0.0.1:${s.port}${path}`, { durationSeconds: duration });
  const after = s.cpuMs();
  const requests = r.requestsPerSecond * duration;
  const cpuUs = before !== null && after !== null && requests > 0
    ? ((after - before) * 1000) / requests
    : null;
  if (!runs.has(key)) runs.set(key, []);
  runs.get(key)!.push({ ...r, cpuUs });
}

try {
  for (const s of servers) {
    await measure(`http://127.0.0.1:${s.port}/health`, { durationSeconds: 1 }); // warm-up
  }
  for (let i = 0; i < rounds; i++) {
    for (const [j, s] of servers.entries()) await run(s, `${fixtures[j]} /health`, "/health");
    // The bare server answers any path; readiness also reads the database on the engine.
    for (const [j, s] of servers.entries()) {
      if (j > 0) await run(s, `${fixtures[j]} /health/ready`, "/health/ready");
    }
  }
} finally {
  for (const s of servers) await s.stop();
}

function median(key: string): Run {
  const sorted = [...runs.get(key)!].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
  return sorted[Math.floor(sorted.length / 2)]!;
}
function medianCpu(key: string): string {
  const xs = runs.get(key)!.map((r) => r.cpuUs).filter((x): x is number => x !== null)
    .sort((a, b) => a - b);
  return xs.length ? `${xs[Math.floor(xs.length / 2)]!.toFixed(1)} µs CPU/req` : "CPU n/a";
}
const show = (key: string) => {
  const r = median(key);
  return `${fmt(r.requestsPerSecond)} req/s, ${medianCpu(key)}`;
};
const bare = median("bare_server.ts /health");
const unguarded = median("engine_serve_server.ts /health");
const engine = median("engine_server.ts /health");
const ratio = engine.requestsPerSecond / bare.requestsPerSecond;
console.log(
  `kernel GET /health: engine ${show("engine_server.ts /health")} (p50 ${
    engine.p50Ms.toFixed(2)
  } ms, p99 ${engine.p99Ms.toFixed(2)} ms, errors ${engine.errors}) | same handler on bare ` +
    `Deno.serve, no connection limits ${show("engine_serve_server.ts /health")} (listener ` +
    `cost ${((1 - engine.requestsPerSecond / unguarded.requestsPerSecond) * 100).toFixed(0)} %)` +
    ` | baseline bare Deno.serve ${show("bare_server.ts /health")} | ratio ${
      ratio.toFixed(2)
    } (aim ≥ 0.60) [${engine.tool}, median of ${rounds}]`,
);
console.log(
  `kernel GET /health/ready (request id and security headers stamped): engine ${
    show("engine_server.ts /health/ready")
  } | same handler on bare Deno.serve ${show("engine_serve_server.ts /health/ready")}`,
);

/**
 * GET /health through the engine's full middleware stack (every built-in plugin
 * loaded) on its own listener, against the same engine handler on a bare `Deno.serve`
 * (no connection limits: what the listener costs) and a bare Deno.serve handler; same
 * load generator, same run. The servers are measured in turns, `BENCH_ROUNDS` times,
 * and the median of each is printed, so one noisy moment on a shared machine does not
 * decide the figure.
 */
import { fmt, type LoadResult, measure, startServer } from "./lib/load.ts";

const duration = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const rounds = Math.max(1, Number(Deno.env.get("BENCH_ROUNDS") ?? 3));
const here = new URL(".", import.meta.url).pathname;

const fixtures = ["bare_server.ts", "engine_serve_server.ts", "engine_server.ts"] as const;
const servers = [];
for (const f of fixtures) servers.push(await startServer(`${here}fixtures/${f}`));
const runs = new Map<string, LoadResult[]>(fixtures.map((f) => [f, []]));
try {
  for (const s of servers) {
    await measure(`http://127.0.0.1:${s.port}/health`, { durationSeconds: 1 }); // warm-up
  }
  for (let i = 0; i < rounds; i++) {
    for (const [j, s] of servers.entries()) {
      const r = await measure(`http://127.0.0.1:${s.port}/health`, { durationSeconds: duration });
      runs.get(fixtures[j]!)!.push(r);
    }
  }
} finally {
  for (const s of servers) await s.stop();
}

function median(f: string): LoadResult {
  const sorted = [...runs.get(f)!].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
  return sorted[Math.floor(sorted.length / 2)]!;
}
const bare = median("bare_server.ts");
const unguarded = median("engine_serve_server.ts");
const engine = median("engine_server.ts");
const ratio = engine.requestsPerSecond / bare.requestsPerSecond;
console.log(
  `kernel GET /health: engine ${fmt(engine.requestsPerSecond)} req/s (p50 ${
    engine.p50Ms.toFixed(2)
  } ms, p99 ${engine.p99Ms.toFixed(2)} ms, errors ${engine.errors}) | same handler on bare ` +
    `Deno.serve, no connection limits ${fmt(unguarded.requestsPerSecond)} req/s (listener cost ${
      ((1 - engine.requestsPerSecond / unguarded.requestsPerSecond) * 100).toFixed(0)
    } %) | baseline bare Deno.serve ${fmt(bare.requestsPerSecond)} req/s (p99 ${
      bare.p99Ms.toFixed(2)
    } ms) | ratio ${ratio.toFixed(2)} (aim ≥ 0.60) [${engine.tool}, median of ${rounds}]`,
);

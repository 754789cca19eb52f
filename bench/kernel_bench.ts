/**
 * GET /health through the engine's full middleware stack (every built-in plugin
 * loaded) against a bare Deno.serve handler, same load generator, same run.
 */
import { fmt, measure, startServer } from "./lib/load.ts";

const duration = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const here = new URL(".", import.meta.url).pathname;

async function run(script: string) {
  const server = await startServer(`${here}fixtures/${script}`);
  try {
    await measure(`http://127.0.0.1:${server.port}/health`, { durationSeconds: 1 }); // warm-up
    return await measure(`http://127.0.0.1:${server.port}/health`, { durationSeconds: duration });
  } finally {
    await server.stop();
  }
}

const bare = await run("bare_server.ts");
const engine = await run("engine_server.ts");
const ratio = engine.requestsPerSecond / bare.requestsPerSecond;
console.log(
  `kernel GET /health: engine ${fmt(engine.requestsPerSecond)} req/s (p50 ${
    engine.p50Ms.toFixed(2)
  } ms, ` +
    `p99 ${engine.p99Ms.toFixed(2)} ms, errors ${engine.errors}) | baseline bare Deno.serve ` +
    `${fmt(bare.requestsPerSecond)} req/s (p99 ${bare.p99Ms.toFixed(2)} ms) | ratio ${
      ratio.toFixed(2)
    } ` +
    `(aim ≥ 0.60) [${engine.tool}]`,
);

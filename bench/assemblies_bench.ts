/**
 * Assemblies benchmark: listing a 10,000-assembly catalog (p50 latency and cache
 * memory), flushing 10,000 dirty entries in one go, and a cached detail read against
 * the same read straight from SQL — each next to a baseline measured in the same run.
 *
 *   deno run -A bench/assemblies_bench.ts [--count 10000]
 *
 * Set BOREALIS_TEST_DATABASE_URL to run against a PostgreSQL server instead of PGlite.
 *
 * @module
 */
import { parseArgs } from "node:util";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import assemblies, { assembliesService } from "../plugins/assemblies/mod.ts";
import { loadRecord } from "../plugins/assemblies/store.ts";
import { createOperator } from "../tests/helpers/operators.ts";
import { startTestEngine, type TestEngine } from "../tests/helpers/test_engine.ts";

const { values } = parseArgs({ options: { count: { type: "string", default: "10000" } } });
const COUNT = Number(values.count);
const plugins = [aegis, operators, assemblies];

function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function time(n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < Math.min(5, n); i++) await fn(); // warm up
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const ms = (x: number) => `${x.toFixed(2)} ms`;
const mb = (x: number) => `${(x / 1024 / 1024).toFixed(1)} MB`;
const gc = (globalThis as { gc?: () => void }).gc;

async function main() {
  const catalogDir = await Deno.makeTempDir();
  const t: TestEngine = await startTestEngine({
    plugins,
    env: {
      BOREALIS_ASSEMBLIES_CATALOG_DIR: catalogDir,
      BOREALIS_ASSEMBLIES_FLUSH_SECONDS: "86400",
    },
  });
  try {
    const s = t.engine.service(assembliesService);
    const admin = await createOperator(t, { role: "Admin" });
    const get = async (path: string) => {
      const res = await t.request(path, { headers: admin.headers });
      if (res.status !== 200) throw new Error(`${path} → ${res.status}`);
      return await res.arrayBuffer();
    };

    // ---- seed: stage COUNT assemblies (payload files written now, rows at flush) ----
    gc?.();
    const heapBefore = Deno.memoryUsage().heapUsed;
    const seed0 = performance.now();
    const guids: string[] = [];
    for (let i = 0; i < COUNT; i++) {
      const kind = i % 10 === 0 ? "workflow" : "script";
      const r = await s.create({
        domain: i % 3 === 0 ? "community" : "user_created",
        display_name: `Assembly ${String(i).padStart(5, "0")} ${i % 7 === 0 ? "disk" : "service"}`,
        summary: `Benchmark assembly number ${i}, checks something useful on a managed machine.`,
        assembly_kind: kind,
        assembly_type: kind === "workflow" ? "workflow" : "powershell",
        metadata: {
          timeout_seconds: 600,
          variables: [{ name: "target", type: "string", description: "what to act on" }],
        },
        tags: ["bench", i % 2 ? "odd" : "even"],
        payload: kind === "workflow"
          ? { nodes: [{ id: "a" }, { id: "b" }], edges: [{ source: "a", target: "b" }] }
          : `Write-Output 'assembly ${i}'\n`.repeat(20),
      });
      guids.push(r.assembly_guid);
    }
    const seedMs = performance.now() - seed0;
    gc?.();
    const heapAfter = Deno.memoryUsage().heapUsed;
    console.log(`assemblies seed: ${COUNT} staged in ${ms(seedMs)} (payload files written)`);
    console.log(
      `assemblies cache memory: ${mb(heapAfter - heapBefore)} heap for ${COUNT} entries ` +
        `(${((heapAfter - heapBefore) / COUNT).toFixed(0)} bytes each${
          gc ? "" : "; run with --v8-flags=--expose-gc for a steadier figure"
        })`,
    );

    // ---- flush of COUNT dirty entries in one transaction ----
    const flush = await s.flush();
    console.log(
      `assemblies flush: ${flush.persisted} dirty entries in ${ms(flush.duration_ms)} ` +
        `(aim < 2000 ms; ${(flush.persisted / (flush.duration_ms / 1000)).toFixed(0)} rows/s)`,
    );
    if (flush.persisted !== COUNT) throw new Error(`flushed ${flush.persisted} of ${COUNT}`);
    // Flush again after touching every entry (updates rather than inserts).
    for (const g of guids) await s.update(g, 1, { summary: "touched" });
    const flush2 = await s.flush();
    console.log(
      `assemblies flush (updates): ${flush2.persisted} entries in ${ms(flush2.duration_ms)}`,
    );

    // ---- list latency ----
    const health = await time(300, () => get("/health"));
    const me = await time(300, () => get("/api/auth/me"));
    const page = await time(200, () => get("/api/assemblies?limit=100"));
    const search = await time(200, () => get("/api/assemblies?q=disk&kind=script&limit=100"));
    const full = await time(30, () => get(`/api/assemblies?limit=${COUNT}`));
    const fullBytes = (await get(`/api/assemblies?limit=${COUNT}`)).byteLength;
    gc?.();
    const heapListed = Deno.memoryUsage().heapUsed;
    console.log(`baseline GET /health: p50 ${ms(pct(health, 50))}, p95 ${ms(pct(health, 95))}`);
    console.log(
      `baseline GET /api/auth/me (session lookup): p50 ${ms(pct(me, 50))}, p95 ${ms(pct(me, 95))}`,
    );
    console.log(
      `assemblies list page (100 of ${COUNT}): p50 ${ms(pct(page, 50))}, p95 ${
        ms(pct(page, 95))
      } ` +
        `(authenticated baseline ${ms(pct(me, 50))}, ratio ${
          (pct(page, 50) / pct(me, 50)).toFixed(1)
        }; aim < 20 ms)`,
    );
    console.log(
      `assemblies list search (q=disk, kind=script): p50 ${ms(pct(search, 50))}, p95 ${
        ms(pct(search, 95))
      }`,
    );
    console.log(
      `assemblies list all ${COUNT}: p50 ${ms(pct(full, 50))}, p95 ${ms(pct(full, 95))} ` +
        `(${mb(fullBytes)} of JSON; heap with the serialized items kept: +${
          mb(heapListed - heapAfter)
        })`,
    );

    // ---- cached detail read vs the same read from SQL ----
    const pick = () => guids[Math.floor(Math.random() * guids.length)]!;
    const cached = await time(5000, () => s.get(pick()));
    const sql = await time(1000, () => loadRecord(t.engine.sql, pick()));
    console.log(
      `assemblies detail from cache: p50 ${ms(pct(cached, 50))} ` +
        `(straight SQL p50 ${ms(pct(sql, 50))}, ratio ${
          (pct(sql, 50) / pct(cached, 50)).toFixed(0)
        }x faster)`,
    );
    const http = await time(500, () => get(`/api/assemblies/${pick()}`));
    console.log(
      `assemblies GET /api/assemblies/{guid} (cache + verified payload file): p50 ${
        ms(pct(http, 50))
      } ` +
        `(authenticated baseline ${ms(pct(me, 50))}, ratio ${
          (pct(http, 50) / pct(me, 50)).toFixed(1)
        })`,
    );
  } finally {
    await t.close();
    await Deno.remove(catalogDir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();

/**
 * The production agent's footprint on the managed machine: CPU and resident memory of
 * its two processes (supervisor and worker) while idle and connected, and of one full
 * details collection (`agent.js collect`, the same code the worker runs). The baseline,
 * measured in the same run, is a bare Deno process doing nothing (`setInterval`), which
 * is the floor any agent built on Deno pays.
 *
 * The agent is the bundled agent.js (as packaged) run by this machine's Deno, enrolled
 * with an install token into an engine in this process, with heartbeats every 5 s.
 * Linux only (reads /proc).
 *
 *   deno run -A bench/agent_footprint_bench.ts     (BENCH_SECONDS=20)
 *
 * @module
 */
import { join } from "node:path";
import { builtinPlugins } from "../plugins/mod.ts";
import { createOperator } from "../tests/helpers/operators.ts";
import { startTestEngine } from "../tests/helpers/test_engine.ts";
import { ManualClock } from "../core/clock.ts";

const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 20);
const TICK = 100; // USER_HZ

function sample(pid: number): { cpu: number; rss: number; hwm: number; pss: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  // PSS shares the runtime's pages fairly between processes mapping the same binary.
  let pss = 0;
  try {
    const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    pss = Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
  } catch { /* older kernel */ }
  return {
    cpu: (Number(f[11]) + Number(f[12])) / TICK,
    rss: kb("VmRSS") * 1024,
    hwm: kb("VmHWM") * 1024,
    pss: pss * 1024,
  };
}

async function idle(pids: number[], ms: number) {
  const a = pids.map(sample);
  await new Promise((r) => setTimeout(r, ms));
  const b = pids.map(sample);
  return pids.map((_, i) => ({
    cpuPercent: ((b[i]!.cpu - a[i]!.cpu) / (ms / 1000)) * 100,
    rssMb: b[i]!.rss / 1e6,
    pssMb: b[i]!.pss / 1e6,
  }));
}

if (Deno.build.os !== "linux") {
  console.log("agent footprint: Linux only (reads /proc); skipped");
  Deno.exit(0);
}

const root = await Deno.makeTempDir({ prefix: "borealis-agent-bench-" });
const clock = new ManualClock(Date.now());
const ticker = setInterval(() => void clock.set(Date.now()), 200);
const t = await startTestEngine({
  plugins: builtinPlugins,
  clock,
  env: { BOREALIS_AGENT_HEARTBEAT_SECONDS: "5", BOREALIS_LIVENESS_FLUSH_SECONDS: "1" },
});
const procs: Deno.ChildProcess[] = [];
try {
  const { port } = await t.engine.listen();
  const server = `http://127.0.0.1:${port}`;
  const admin = await createOperator(t, { role: "Admin" });
  const site = await (await t.request("/api/sites", {
    method: "POST",
    json: { name: "bench", description: "" },
    headers: admin.headers,
  })).json();
  const token = await (await t.request(`/api/sites/${site.id}/install-tokens`, {
    method: "POST",
    json: {},
    headers: admin.headers,
  })).json();

  // Baseline: a bare Deno process that only keeps a timer.
  const bare = new Deno.Command(Deno.execPath(), {
    args: ["eval", "setInterval(() => {}, 1000)"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  procs.push(bare);

  // The agent: bundled as the packager does, configured as `install` would.
  const bundle = join(root, "agent.js");
  const b = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "--no-config", "-o", bundle, "agent/main.ts"],
    cwd: new URL("../", import.meta.url).pathname,
  }).output();
  if (!b.success) throw new Error("deno bundle failed");
  const env = { BOREALIS_AGENT_ROOT: join(root, "agent"), NO_COLOR: "1" };
  await Deno.mkdir(join(root, "agent/config"), { recursive: true });
  await Deno.mkdir(join(root, "agent/state"), { recursive: true });
  await Deno.writeTextFile(join(root, "agent/config/agent.json"), JSON.stringify({ server }));
  await Deno.writeTextFile(
    join(root, "agent/state/install.json"),
    JSON.stringify({ install_token: token.token }),
  );
  const sup = new Deno.Command(Deno.execPath(), {
    // The same runtime flags as the service files (agent/service/files).
    args: [
      "run",
      "-A",
      "--no-config",
      "--v8-flags=--lite-mode,--max-semi-space-size=1",
      bundle,
      "service",
    ],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  procs.push(sup);
  const status = join(root, "agent/state/status.json");
  let st: Record<string, unknown> = {};
  for (let i = 0; i < 600 && !(st.state === "connected" && st.last_details); i++) {
    await new Promise((r) => setTimeout(r, 100));
    st = JSON.parse(await Deno.readTextFile(status).catch(() => "{}"));
  }
  if (!st.last_details) throw new Error(`agent did not connect: ${JSON.stringify(st)}`);
  const worker = Number(st.worker_pid);
  await new Promise((r) => setTimeout(r, 3000)); // let start-up work settle

  const [base, supervisor, live] = await idle([bare.pid, sup.pid, worker], seconds * 1000);
  const fmt = (x: { cpuPercent: number; rssMb: number; pssMb: number }) =>
    `${x.cpuPercent.toFixed(2)} % CPU, ${x.rssMb.toFixed(1)} MB RSS, ${x.pssMb.toFixed(1)} MB PSS`;
  console.log(`idle ${seconds} s, heartbeats every 5 s:`);
  console.log(`  baseline bare Deno process   ${fmt(base!)}`);
  console.log(`  agent supervisor             ${fmt(supervisor!)}`);
  console.log(`  agent worker (connected)     ${fmt(live!)}`);
  console.log(
    `  agent total                  ${(supervisor!.rssMb + live!.rssMb).toFixed(1)} MB RSS, ` +
      `${(supervisor!.pssMb + live!.pssMb).toFixed(1)} MB PSS`,
  );

  // One full details collection as its own process: CPU seconds and peak memory.
  const collect = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", bundle, "collect"],
    env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let peak = 0;
  let cpu = 0;
  const started = performance.now();
  const poll = setInterval(() => {
    try {
      const s = sample(collect.pid);
      peak = Math.max(peak, s.hwm);
      cpu = s.cpu;
    } catch { /* exited */ }
  }, 20);
  const out = await collect.output();
  clearInterval(poll);
  const wall = performance.now() - started;
  const details = JSON.parse(new TextDecoder().decode(out.stdout));
  console.log(
    `details run (agent.js collect): ${wall.toFixed(0)} ms wall, ≥${cpu.toFixed(2)} s CPU, ` +
      `peak ${(peak / 1e6).toFixed(1)} MB RSS; ${details.software?.length ?? 0} programs, ` +
      `${details.processes?.length ?? 0} processes, collectors ${
        JSON.stringify(details.summary.collection_ms)
      }`,
  );
  console.log(`worker's own details run at connect: ${JSON.stringify(st.last_details)}`);
} finally {
  clearInterval(ticker);
  for (const p of procs) {
    try {
      p.kill("SIGTERM");
    } catch { /* gone */ }
    await p.status.catch(() => {});
  }
  await t.close();
  await Deno.remove(root, { recursive: true }).catch(() => {});
}

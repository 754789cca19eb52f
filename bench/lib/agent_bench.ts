/**
 * Shared set-up of the agent-facing phase benchmarks (identity, heartbeat): an engine in
 * this process with an Admin, a site and an open auto-approval window, and a load
 * generator — the same script re-run with `--generate` — in a second process, each pinned
 * to its own core when `taskset` exists, with this process's CPU sampled meanwhile.
 *
 * @module
 */
import { systemClock } from "../../core/clock.ts";
import { Engine } from "../../core/engine.ts";
import { createLogSink } from "../../core/log.ts";
import type { AnyPlugin } from "../../core/plugin.ts";
import { operatorsKey } from "../../plugins/operators/mod.ts";
import { createTestDatabase, type TestDatabase } from "../../tests/helpers/test_db.ts";
import { cpuSampler, hasTaskset, type Phase } from "./drive.ts";

/** A running bench engine. */
export interface AgentBenchEngine {
  engine: Engine;
  db: TestDatabase;
  server: string;
  enrollmentCode: string;
  /** "PostgreSQL server" or "embedded PGlite". */
  dbLabel: string;
  close(): Promise<void>;
}

/** Starts the engine with `plugins`, rate limits off, one Admin and one auto-approving site. */
export async function startAgentBenchEngine(
  plugins: readonly AnyPlugin[],
  env: Record<string, string> = {},
): Promise<AgentBenchEngine> {
  const db = await createTestDatabase();
  const engine = await Engine.create({
    env: {
      ...db.env,
      BOREALIS_PORT: "0",
      BOREALIS_ENROLL_RATE_LIMIT_IP_PER_MINUTE: "0",
      BOREALIS_ENROLL_RATE_LIMIT_FINGERPRINT_PER_MINUTE: "0",
      BOREALIS_DEVICE_RATE_LIMIT_PER_MINUTE: "0",
      // Every simulated agent shares the loopback address.
      BOREALIS_HTTP_MAX_PENDING_PER_ADDRESS: "1000000",
      BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND: "0",
      ...env,
    },
    plugins: [...plugins],
    clock: systemClock,
    logSink: createLogSink({ dir: `${db.dataDir}/Logs`, stderr: false, level: "WARNING" }),
  });
  const close = async () => {
    await engine.stop("bench finished");
    await db.drop();
  };
  try {
    const { port } = await engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const ops = engine.service(operatorsKey);
    const user = await ops.createUser({
      username: "bench-admin",
      password: `pw-${crypto.randomUUID()}`,
      role: "Admin",
      mfaExempt: true,
    });
    const session = await ops.createSession(user.id, "bench");
    const auth = { Authorization: `Bearer ${session.token}`, "content-type": "application/json" };
    const site = await (await fetch(`${server}/api/sites`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ name: "Bench" }),
    })).json();
    const win = await fetch(`${server}/api/sites/${site.id}/auto-approval`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ minutes: 60 }),
    });
    await win.body?.cancel();
    return {
      engine,
      db,
      server,
      enrollmentCode: site.enrollment_code,
      dbLabel: db.url ? "PostgreSQL server" : "embedded PGlite",
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** What a generator run returns. */
export interface GeneratorRun {
  phases: Phase[];
  /** Engine CPU ms spent inside a wall-clock window. */
  cpuIn(from: number, to: number): number;
  pinned: boolean;
}

/**
 * Runs `script --generate <server> <code>` in a second process (core 1, this process on
 * core 0 when pinning is possible); its last stdout line is the JSON array of phases.
 */
export async function runGenerator(
  script: string,
  b: AgentBenchEngine,
  env: Record<string, string>,
): Promise<GeneratorRun> {
  const pinned = await hasTaskset();
  if (pinned) {
    await new Deno.Command("taskset", { args: ["-acp", "0", String(Deno.pid)], stdout: "null" })
      .output();
  }
  const args = [
    ...(pinned ? ["-c", "1", Deno.execPath()] : []),
    "run",
    "-A",
    script,
    "--generate",
    b.server,
    b.enrollmentCode,
  ];
  const cpu = cpuSampler();
  const child = await new Deno.Command(pinned ? "taskset" : Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "inherit",
    env,
  }).output();
  cpu.stop();
  const text = new TextDecoder().decode(child.stdout).trim().split("\n").at(-1) ?? "[]";
  return { phases: JSON.parse(text) as Phase[], cpuIn: cpu.cpuIn, pinned };
}

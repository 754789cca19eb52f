/**
 * Operators benchmark: password hashing throughput with the shipped parameters, login
 * throughput, and `GET /api/auth/me` requests per second against `GET /health` on the
 * same engine process, same load generator, same run (aim: at least half).
 *
 *   deno run -A bench/operators_bench.ts
 *
 * @module
 */
import { Engine } from "../core/engine.ts";
import { createLogSink } from "../core/log.ts";
import aegis from "../plugins/aegis/mod.ts";
import sites from "../plugins/sites/mod.ts";
import operators, { operatorsKey } from "../plugins/operators/mod.ts";
import { DEFAULT_HASH_PARAMS, hashPassword } from "../plugins/operators/passwords.ts";
import { fmt, measure, startServer } from "./lib/load.ts";

const PASSWORD = "benchmark-password-1";
const LOGIN_USERS = 4;

if (Deno.env.get("BENCH_OPERATORS_SERVE") === "1") {
  // Server mode: an engine with aegis + operators, one MFA-exempt user and a session.
  const dataDir = await Deno.makeTempDir({ prefix: "borealis-bench-operators-" });
  const engine = await Engine.create({
    env: { ...Deno.env.toObject(), BOREALIS_DATA_DIR: dataDir, BOREALIS_PORT: "0" },
    plugins: [sites, aegis, operators],
    logSink: createLogSink({ dir: `${dataDir}/Logs`, stderr: false }),
  });
  const svc = engine.service(operatorsKey);
  // Several accounts: sign-ins of one username are handled one at a time (throttling).
  const ids: string[] = [];
  for (let i = 0; i < LOGIN_USERS; i++) {
    ids.push(
      (await svc.createUser({
        username: `bench${i}`,
        password: PASSWORD,
        role: "User",
        mfaExempt: true,
      })).id,
    );
  }
  const { token } = await svc.createSession(ids[0]!, "bench");
  await Deno.writeTextFile(Deno.env.get("BENCH_TOKEN_FILE")!, token);
  const { port } = await engine.listen();
  Deno.addSignalListener("SIGTERM", () => {
    engine.stop("bench done").finally(() =>
      Deno.remove(dataDir, { recursive: true }).catch(() => {}).then(() => Deno.exit(0))
    );
  });
  console.log(`READY ${port}`);
} else {
  const duration = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
  const p = DEFAULT_HASH_PARAMS;
  const hashes = 10;
  const t0 = performance.now();
  for (let i = 0; i < hashes; i++) await hashPassword(PASSWORD, p);
  const hashRate = hashes / ((performance.now() - t0) / 1000);
  console.log(
    `operators password hash (scrypt N=2^${p.ln} r=${p.r} p=${p.p}, 32-byte key, one at a time): ` +
      `${hashRate.toFixed(1)} hashes/s (${(1000 / hashRate).toFixed(0)} ms each)`,
  );

  const tokenFile = await Deno.makeTempFile();
  const server = await startServer(new URL(import.meta.url).pathname, {
    ...Deno.env.toObject(),
    BENCH_TOKEN_FILE: tokenFile,
    BENCH_OPERATORS_SERVE: "1",
  });
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const token = await Deno.readTextFile(tokenFile);
    // One load generator per account, in parallel: the sum is the engine's login rate.
    const logins = await Promise.all(
      Array.from({ length: LOGIN_USERS }, (_, i) =>
        measure(`${base}/api/auth/login`, {
          durationSeconds: Math.min(duration, 4),
          connections: 1,
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: `bench${i}`, password: PASSWORD }),
        })),
    );
    const loginRate = logins.reduce((sum, l) => sum + l.requestsPerSecond, 0);
    console.log(
      `operators POST /api/auth/login (${LOGIN_USERS} accounts in parallel, scrypt N=2^${p.ln} ` +
        `r=${p.r} p=${p.p}): ${fmt(loginRate)} logins/s (p99 ${
          Math.max(...logins.map((l) => l.p99Ms)).toFixed(0)
        } ms, errors ${logins.reduce((n, l) => n + l.errors, 0)}) | baseline ${
          hashRate.toFixed(1)
        } hashes/s one at a time | ratio ${(loginRate / hashRate).toFixed(2)} [${logins[0]!.tool}]`,
    );
    const auth = { Authorization: `Bearer ${token}` };
    await measure(`${base}/health`, { durationSeconds: 1 });
    await measure(`${base}/api/auth/me`, { durationSeconds: 1, headers: auth });
    const health = await measure(`${base}/health`, { durationSeconds: duration });
    const me = await measure(`${base}/api/auth/me`, { durationSeconds: duration, headers: auth });
    console.log(
      `operators GET /api/auth/me: ${fmt(me.requestsPerSecond)} req/s (p99 ${
        me.p99Ms.toFixed(2)
      } ms, errors ${me.errors}) | baseline GET /health ${fmt(health.requestsPerSecond)} req/s ` +
        `| ratio ${
          (me.requestsPerSecond / health.requestsPerSecond).toFixed(2)
        } (aim ≥ 0.50) [${me.tool}]`,
    );
  } finally {
    await server.stop();
    await Deno.remove(tokenFile).catch(() => {});
  }
}

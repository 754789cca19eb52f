import assert from "node:assert/strict";
import postgres from "postgres";
import {
  applyProfile,
  chooseProfile,
  detectMachine,
  type MachineInfo,
  POSTGRES_SETTING_NAMES,
  type ProfileName,
  renderProfile,
} from "./db_profile.ts";

const GIB = 1024 ** 3;
const DATABASE_URL = Deno.env.get("BOREALIS_TEST_DATABASE_URL");

Deno.test("chooseProfile takes the lower of the CPU rank and the RAM rank", () => {
  const cases: [cpus: number, ramGib: number, expected: ProfileName][] = [
    [1, 1, "Homelab"],
    [7, 15.99, "Homelab"],
    [8, 16, "Small Business"],
    [7, 64, "Homelab"], // few cores cap a large-RAM host
    [64, 15.99, "Homelab"], // little RAM caps a many-core host
    [8, 15.99, "Homelab"],
    [15, 31.99, "Small Business"],
    [16, 31.99, "Small Business"],
    [15, 32, "Small Business"],
    [16, 32, "MSP / Production"],
    [23, 63.99, "MSP / Production"],
    [24, 63.99, "MSP / Production"],
    [23, 64, "MSP / Production"],
    [24, 64, "Enterprise"],
    [128, 1024, "Enterprise"],
    [8, 1024, "Small Business"],
    [128, 16, "Small Business"],
  ];
  for (const [cpus, ramGib, expected] of cases) {
    const profile = chooseProfile({ cpus, memoryBytes: ramGib * GIB });
    assert.equal(profile.name, expected, `${cpus} vCPU / ${ramGib} GiB`);
  }
});

Deno.test("chooseProfile reports each rank on its own", () => {
  const p = chooseProfile({ cpus: 32, memoryBytes: 20 * GIB });
  assert.equal(p.cpuRank, 3);
  assert.equal(p.memoryRank, 1);
  assert.equal(p.rank, 1);
});

Deno.test("profiles carry the seed's engine pool settings", () => {
  const expected = {
    "Homelab": [10, 10, 20],
    "Small Business": [12, 16, 28],
    "MSP / Production": [20, 20, 40],
    "Enterprise": [24, 24, 48],
  } as const;
  const machines: MachineInfo[] = [
    { cpus: 2, memoryBytes: 4 * GIB },
    { cpus: 8, memoryBytes: 16 * GIB },
    { cpus: 16, memoryBytes: 32 * GIB },
    { cpus: 24, memoryBytes: 64 * GIB },
  ];
  for (const machine of machines) {
    const p = chooseProfile(machine);
    const [pool, overflow, burst] = expected[p.name];
    assert.equal(p.engine.BOREALIS_DB_POOL_SIZE, pool, p.name);
    assert.equal(p.engine.BOREALIS_DB_MAX_OVERFLOW, overflow, p.name);
    assert.equal(p.burstConnections, burst, p.name);
    assert.equal(p.engine.BOREALIS_DB_CONNECT_TIMEOUT, 15);
    assert.equal(p.engine.BOREALIS_DB_IDLE_IN_TXN_TIMEOUT_MS, 60000);
  }
});

Deno.test("memory-relative settings follow max(floor, min(fraction of RAM, cap))", () => {
  const at = (cpus: number, ramGib: number) =>
    chooseProfile({ cpus, memoryBytes: ramGib * GIB }).postgres;
  // Homelab: floors win on a small host, the fraction in the middle, caps at the top.
  assert.equal(at(2, 2).shared_buffers, "1GB");
  assert.equal(at(2, 2).effective_cache_size, "4GB");
  assert.equal(at(2, 8).shared_buffers, "2GB");
  assert.equal(at(2, 8).effective_cache_size, "5GB");
  assert.equal(at(2, 6).shared_buffers, "1536MB");
  assert.equal(at(2, 64).shared_buffers, "4GB");
  assert.equal(at(2, 64).effective_cache_size, "12GB");
  // Small Business at 16 GiB: 25 % = 4 GiB, 62.5 % = 10 GiB.
  assert.equal(at(8, 16).shared_buffers, "4GB");
  assert.equal(at(8, 16).effective_cache_size, "10GB");
  // MSP at 32 GiB: 25 % = 8 GiB, 62.5 % = 20 GiB.
  assert.equal(at(16, 32).shared_buffers, "8GB");
  assert.equal(at(16, 32).effective_cache_size, "20GB");
  // Enterprise caps.
  assert.equal(at(64, 512).shared_buffers, "24GB");
  assert.equal(at(64, 512).effective_cache_size, "64GB");
  assert.equal(at(24, 64).shared_buffers, "16GB");
  assert.equal(at(24, 64).effective_cache_size, "40GB");
});

Deno.test("profiles carry the seed's PostgreSQL settings", () => {
  const homelab = chooseProfile({ cpus: 4, memoryBytes: 8 * GIB }).postgres;
  assert.deepEqual(
    {
      max_connections: homelab.max_connections,
      work_mem: homelab.work_mem,
      maintenance_work_mem: homelab.maintenance_work_mem,
      max_worker_processes: homelab.max_worker_processes,
      max_parallel_workers_per_gather: homelab.max_parallel_workers_per_gather,
      autovacuum_max_workers: homelab.autovacuum_max_workers,
      autovacuum_vacuum_cost_limit: homelab.autovacuum_vacuum_cost_limit,
      autovacuum_naptime: homelab.autovacuum_naptime,
      max_wal_size: homelab.max_wal_size,
      min_wal_size: homelab.min_wal_size,
      effective_io_concurrency: homelab.effective_io_concurrency,
      wal_compression: homelab.wal_compression,
      checkpoint_timeout: homelab.checkpoint_timeout,
      checkpoint_completion_target: homelab.checkpoint_completion_target,
      random_page_cost: homelab.random_page_cost,
      autovacuum_vacuum_scale_factor: homelab.autovacuum_vacuum_scale_factor,
      autovacuum_analyze_scale_factor: homelab.autovacuum_analyze_scale_factor,
    },
    {
      max_connections: "80",
      work_mem: "4MB",
      maintenance_work_mem: "256MB",
      max_worker_processes: "8",
      max_parallel_workers_per_gather: "2",
      autovacuum_max_workers: "3",
      autovacuum_vacuum_cost_limit: "1000",
      autovacuum_naptime: "30s",
      max_wal_size: "4GB",
      min_wal_size: "512MB",
      effective_io_concurrency: "16",
      wal_compression: "on",
      checkpoint_timeout: "15min",
      checkpoint_completion_target: "0.9",
      random_page_cost: "1.1",
      autovacuum_vacuum_scale_factor: "0.02",
      autovacuum_analyze_scale_factor: "0.01",
    },
  );
  const enterprise = chooseProfile({ cpus: 32, memoryBytes: 128 * GIB }).postgres;
  assert.equal(enterprise.max_connections, "180");
  assert.equal(enterprise.work_mem, "16MB");
  assert.equal(enterprise.maintenance_work_mem, "1GB");
  assert.equal(enterprise.max_parallel_workers, "16");
  assert.equal(enterprise.autovacuum_max_workers, "6");
  assert.equal(enterprise.max_wal_size, "12GB");
  assert.equal(enterprise.min_wal_size, "2GB");
  assert.equal(enterprise.random_page_cost, "1.1");
  for (const name of POSTGRES_SETTING_NAMES) {
    assert.ok(enterprise[name], `${name} is set`);
  }
});

Deno.test("detectMachine reports positive CPU and RAM figures", () => {
  const machine = detectMachine();
  assert.ok(Number.isInteger(machine.cpus) && machine.cpus > 0);
  assert.ok(machine.memoryBytes > 0);
});

Deno.test("renderProfile lists the machine, the profile and every value", () => {
  const machine = { cpus: 16, memoryBytes: 48 * GIB };
  const profile = chooseProfile(machine);
  const text = renderProfile(profile, machine);
  assert.match(text, /16 vCPU, 48\.0 GiB RAM/);
  assert.match(text, /Profile: MSP \/ Production/);
  assert.match(text, /BOREALIS_DB_POOL_SIZE=20/);
  assert.match(text, /upstream adds 20 overflow connections/);
  assert.doesNotMatch(text, /BOREALIS_DB_MAX_OVERFLOW=/);
  assert.match(text, /BOREALIS_DB_CONNECT_TIMEOUT=15/);
  assert.match(text, /BOREALIS_DB_IDLE_IN_TXN_TIMEOUT_MS=60000/);
  assert.match(text, /budget max_connections for 40 per engine/);
  assert.match(text, /max_connections\s+= 150/);
  assert.match(text, /shared_buffers\s+= 12GB/);
  assert.match(text, /effective_cache_size\s+= 30GB/);
  for (const name of POSTGRES_SETTING_NAMES) {
    assert.ok(text.includes(`${name} `), `${name} is listed`);
  }
});

Deno.test("applyProfile refuses names off the allow-list and unsafe values before any SQL", async () => {
  // Validation runs before the first statement, so this client is never used.
  const unusedSql = {} as postgres.Sql;
  const profile = chooseProfile({ cpus: 2, memoryBytes: 4 * GIB });
  const badName = {
    ...profile,
    postgres: { ...profile.postgres, "shared_preload_libraries": "x" },
  } as typeof profile;
  await assert.rejects(applyProfile(unusedSql, badName), /unknown PostgreSQL setting/);
  const badValue = {
    ...profile,
    postgres: { ...profile.postgres, work_mem: "4MB'; DROP TABLE x; --" },
  };
  await assert.rejects(applyProfile(unusedSql, badValue), /unsafe value/);
});

Deno.test({
  name: "applyProfile writes ALTER SYSTEM settings and reports restart-only ones",
  ignore: !DATABASE_URL,
  async fn() {
    const sql = postgres(DATABASE_URL!, { max: 1, onnotice: () => {} });
    const profile = chooseProfile({ cpus: 4, memoryBytes: 8 * GIB });
    try {
      const result = await applyProfile(sql, profile);
      assert.deepEqual(result.applied.toSorted(), [...POSTGRES_SETTING_NAMES].toSorted());
      for (
        const name of [
          "max_connections",
          "shared_buffers",
          "max_worker_processes",
          "autovacuum_max_workers",
        ]
      ) {
        assert.ok(result.needsRestart.includes(name), `${name} needs a restart`);
      }
      assert.ok(!result.needsRestart.includes("work_mem"));
      assert.ok(!result.needsRestart.includes("random_page_cost"));
      // pg_file_settings reads the configuration files as they are now.
      const rows = await sql<{ name: string; setting: string }[]>`
        SELECT name, setting FROM pg_file_settings
        WHERE sourcefile LIKE '%postgresql.auto.conf'
      `;
      const written = new Map(rows.map((r) => [r.name, r.setting]));
      assert.equal(written.get("work_mem"), "4MB");
      assert.equal(written.get("shared_buffers"), "2GB");
      assert.equal(written.get("max_connections"), "80");
      assert.equal(written.get("checkpoint_timeout"), "15min");
    } finally {
      // Leave the shared test server as it was.
      for (const name of POSTGRES_SETTING_NAMES) {
        await sql.unsafe(`ALTER SYSTEM RESET ${name}`);
      }
      await sql`SELECT pg_reload_conf()`;
      await sql.end();
    }
  },
});

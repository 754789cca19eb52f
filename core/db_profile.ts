/**
 * `db profile`: picks an engine tuning profile from the host's CPU count and RAM and
 * applies the matching PostgreSQL settings with `ALTER SYSTEM`, following the upstream
 * "Engine Tuning Profiles" table (seeds/002). Only CPU and RAM choose the profile;
 * upstream shows storage as guidance only, so it plays no part here.
 *
 * @module
 */
import type postgres from "postgres";

/** What the profile choice looks at. */
export interface MachineInfo {
  /** Logical CPUs (vCPU). */
  cpus: number;
  /** Total RAM in bytes. */
  memoryBytes: number;
}

/** The four auto-selected single-node profiles, lowest first (the index is the rank). */
export const PROFILE_NAMES = [
  "Homelab",
  "Small Business",
  "MSP / Production",
  "Enterprise",
] as const;

/** One of {@link PROFILE_NAMES}. */
export type ProfileName = typeof PROFILE_NAMES[number];

/** 0 = Homelab … 3 = Enterprise. */
export type ProfileRank = 0 | 1 | 2 | 3;

/** Engine-side database settings, named as the `BOREALIS_*` variables that carry them. */
export interface EngineDbSettings {
  BOREALIS_DB_POOL_SIZE: number;
  /**
   * Upstream's SQLAlchemy pool could open this many connections beyond the pool size.
   * postgres.js has a fixed `max` and no overflow, so the engine reports the value for
   * parity with upstream's database.env; the burst capacity is what PostgreSQL must
   * be able to accept.
   */
  BOREALIS_DB_MAX_OVERFLOW: number;
  BOREALIS_DB_CONNECT_TIMEOUT: number;
  BOREALIS_DB_IDLE_IN_TXN_TIMEOUT_MS: number;
}

/**
 * PostgreSQL settings a profile may set. The list doubles as the allow-list for
 * {@link applyProfile}: these names are the only ones ever spliced into SQL.
 */
export const POSTGRES_SETTING_NAMES = [
  "max_connections",
  "shared_buffers",
  "effective_cache_size",
  "work_mem",
  "maintenance_work_mem",
  "max_worker_processes",
  "max_parallel_workers",
  "max_parallel_workers_per_gather",
  "autovacuum_max_workers",
  "autovacuum_vacuum_cost_limit",
  "autovacuum_naptime",
  "autovacuum_vacuum_scale_factor",
  "autovacuum_analyze_scale_factor",
  "max_wal_size",
  "min_wal_size",
  "effective_io_concurrency",
  "wal_compression",
  "checkpoint_timeout",
  "checkpoint_completion_target",
  "random_page_cost",
] as const;

/** One of {@link POSTGRES_SETTING_NAMES}. */
export type PostgresSettingName = typeof POSTGRES_SETTING_NAMES[number];

/** PostgreSQL settings as `postgresql.conf` values (`"4MB"`, `"15min"`, `"0.9"`). */
export type PostgresSettings = Record<PostgresSettingName, string>;

/** A chosen profile: why it was chosen and what it sets. */
export interface DbProfile {
  name: ProfileName;
  rank: ProfileRank;
  /** The rank the CPU count alone earns. */
  cpuRank: ProfileRank;
  /** The rank the RAM alone earns. */
  memoryRank: ProfileRank;
  engine: EngineDbSettings;
  /** Pool size plus overflow: the most connections one engine may open. */
  burstConnections: number;
  postgres: PostgresSettings;
}

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Lower bounds of ranks 1..3; below the first is Homelab. */
const CPU_THRESHOLDS = [8, 16, 24] as const;
const MEMORY_THRESHOLDS_GIB = [16, 32, 64] as const;

/** Per-profile values from seeds/002; RAM-relative sizes are computed by {@link sizeFromRam}. */
interface ProfileTable {
  poolSize: number;
  maxOverflow: number;
  maxConnections: number;
  sharedBuffers: { floorGib: number; ramFraction: number; capGib: number };
  effectiveCacheSize: { floorGib: number; ramFraction: number; capGib: number };
  workMem: string;
  maintenanceWorkMem: string;
  maxWorkerProcesses: number;
  maxParallelWorkers: number;
  maxParallelWorkersPerGather: number;
  autovacuumMaxWorkers: number;
  autovacuumVacuumCostLimit: number;
  autovacuumNaptime: string;
  maxWalSize: string;
  minWalSize: string;
  effectiveIoConcurrency: number;
}

const TABLE: Record<ProfileRank, ProfileTable> = {
  0: {
    poolSize: 10,
    maxOverflow: 10,
    maxConnections: 80,
    sharedBuffers: { floorGib: 1, ramFraction: 0.25, capGib: 4 },
    effectiveCacheSize: { floorGib: 4, ramFraction: 0.625, capGib: 12 },
    workMem: "4MB",
    maintenanceWorkMem: "256MB",
    maxWorkerProcesses: 8,
    maxParallelWorkers: 8,
    maxParallelWorkersPerGather: 2,
    autovacuumMaxWorkers: 3,
    autovacuumVacuumCostLimit: 1000,
    autovacuumNaptime: "30s",
    maxWalSize: "4GB",
    minWalSize: "512MB",
    effectiveIoConcurrency: 16,
  },
  1: {
    poolSize: 12,
    maxOverflow: 16,
    maxConnections: 120,
    sharedBuffers: { floorGib: 4, ramFraction: 0.25, capGib: 8 },
    effectiveCacheSize: { floorGib: 8, ramFraction: 0.625, capGib: 16 },
    workMem: "8MB",
    maintenanceWorkMem: "512MB",
    maxWorkerProcesses: 8,
    maxParallelWorkers: 8,
    maxParallelWorkersPerGather: 2,
    autovacuumMaxWorkers: 4,
    autovacuumVacuumCostLimit: 1500,
    autovacuumNaptime: "20s",
    maxWalSize: "6GB",
    minWalSize: "1GB",
    effectiveIoConcurrency: 32,
  },
  2: {
    poolSize: 20,
    maxOverflow: 20,
    maxConnections: 150,
    sharedBuffers: { floorGib: 8, ramFraction: 0.25, capGib: 16 },
    effectiveCacheSize: { floorGib: 20, ramFraction: 0.625, capGib: 32 },
    workMem: "8MB",
    maintenanceWorkMem: "512MB",
    maxWorkerProcesses: 12,
    maxParallelWorkers: 12,
    maxParallelWorkersPerGather: 4,
    autovacuumMaxWorkers: 5,
    autovacuumVacuumCostLimit: 2000,
    autovacuumNaptime: "15s",
    maxWalSize: "8GB",
    minWalSize: "1GB",
    effectiveIoConcurrency: 64,
  },
  3: {
    poolSize: 24,
    maxOverflow: 24,
    maxConnections: 180,
    sharedBuffers: { floorGib: 12, ramFraction: 0.25, capGib: 24 },
    effectiveCacheSize: { floorGib: 32, ramFraction: 0.625, capGib: 64 },
    workMem: "16MB",
    maintenanceWorkMem: "1GB",
    maxWorkerProcesses: 16,
    maxParallelWorkers: 16,
    maxParallelWorkersPerGather: 4,
    autovacuumMaxWorkers: 6,
    autovacuumVacuumCostLimit: 2500,
    autovacuumNaptime: "15s",
    maxWalSize: "12GB",
    minWalSize: "2GB",
    effectiveIoConcurrency: 64,
  },
};

/** Values upstream applies identically to every auto-configured profile. */
const SHARED_ENGINE = {
  BOREALIS_DB_CONNECT_TIMEOUT: 15,
  BOREALIS_DB_IDLE_IN_TXN_TIMEOUT_MS: 60000,
} as const;

const SHARED_POSTGRES = {
  autovacuum_vacuum_scale_factor: "0.02",
  autovacuum_analyze_scale_factor: "0.01",
  wal_compression: "on",
  checkpoint_timeout: "15min",
  checkpoint_completion_target: "0.9",
  random_page_cost: "1.1",
} as const;

/**
 * Reads the host's CPU count and total RAM. Inside a container both may describe the
 * host rather than the container's cgroup limits; pass a {@link MachineInfo} by hand
 * to {@link chooseProfile} when that matters.
 */
export function detectMachine(): MachineInfo {
  return {
    cpus: navigator.hardwareConcurrency,
    memoryBytes: Deno.systemMemoryInfo().total,
  };
}

/** The rank a CPU count earns on its own (fewer than 8 → 0, 8–15 → 1, 16–23 → 2, 24+ → 3). */
export function cpuRank(cpus: number): ProfileRank {
  return rankAgainst(cpus, CPU_THRESHOLDS);
}

/**
 * The rank an amount of RAM earns on its own (below 16 GiB → 0, 16–31 → 1, 32–63 → 2,
 * 64+ → 3). The seed compares GiB without saying how to round; the comparison here is
 * exact, so a "16 GB" machine whose kernel reports slightly less than 16 GiB usable
 * counts as Homelab, the conservative side.
 */
export function memoryRank(memoryBytes: number): ProfileRank {
  return rankAgainst(memoryBytes / GIB, MEMORY_THRESHOLDS_GIB);
}

function rankAgainst(value: number, thresholds: readonly [number, number, number]): ProfileRank {
  if (value >= thresholds[2]) return 3;
  if (value >= thresholds[1]) return 2;
  if (value >= thresholds[0]) return 1;
  return 0;
}

/**
 * Picks the profile for a machine: the lower of the CPU rank and the RAM rank, so an
 * unbalanced host (many cores, little RAM or the reverse) is not over-tuned.
 */
export function chooseProfile(machine: MachineInfo): DbProfile {
  const byCpu = cpuRank(machine.cpus);
  const byMemory = memoryRank(machine.memoryBytes);
  const rank = Math.min(byCpu, byMemory) as ProfileRank;
  const t = TABLE[rank];
  return {
    name: PROFILE_NAMES[rank],
    rank,
    cpuRank: byCpu,
    memoryRank: byMemory,
    engine: {
      BOREALIS_DB_POOL_SIZE: t.poolSize,
      BOREALIS_DB_MAX_OVERFLOW: t.maxOverflow,
      ...SHARED_ENGINE,
    },
    burstConnections: t.poolSize + t.maxOverflow,
    postgres: {
      max_connections: String(t.maxConnections),
      shared_buffers: sizeFromRam(machine.memoryBytes, t.sharedBuffers),
      effective_cache_size: sizeFromRam(machine.memoryBytes, t.effectiveCacheSize),
      work_mem: t.workMem,
      maintenance_work_mem: t.maintenanceWorkMem,
      max_worker_processes: String(t.maxWorkerProcesses),
      max_parallel_workers: String(t.maxParallelWorkers),
      max_parallel_workers_per_gather: String(t.maxParallelWorkersPerGather),
      autovacuum_max_workers: String(t.autovacuumMaxWorkers),
      autovacuum_vacuum_cost_limit: String(t.autovacuumVacuumCostLimit),
      autovacuum_naptime: t.autovacuumNaptime,
      max_wal_size: t.maxWalSize,
      min_wal_size: t.minWalSize,
      effective_io_concurrency: String(t.effectiveIoConcurrency),
      ...SHARED_POSTGRES,
    },
  };
}

/**
 * `max(floor, min(fraction × RAM, cap))`, as the seed writes it. The seed keeps the
 * floor even when it exceeds the fraction (a 2 GiB Homelab host still gets 1 GiB of
 * shared_buffers). It does not say how to round; whole MiB, rounded down, is used, and
 * whole GiB are written as `GB` for readability.
 */
function sizeFromRam(
  memoryBytes: number,
  rule: { floorGib: number; ramFraction: number; capGib: number },
): string {
  const fractionMib = Math.floor((memoryBytes * rule.ramFraction) / MIB);
  const mib = Math.max(rule.floorGib * 1024, Math.min(fractionMib, rule.capGib * 1024));
  return mib % 1024 === 0 ? `${mib / 1024}GB` : `${mib}MB`;
}

/** Human-readable report of the machine, the chosen profile and every value it sets. */
export function renderProfile(profile: DbProfile, machine: MachineInfo): string {
  const gib = (machine.memoryBytes / GIB).toFixed(1);
  const lines = [
    `Machine: ${machine.cpus} vCPU, ${gib} GiB RAM`,
    `  CPU rank: ${PROFILE_NAMES[profile.cpuRank]}`,
    `  RAM rank: ${PROFILE_NAMES[profile.memoryRank]}`,
    `Profile: ${profile.name} (the lower of the two ranks)`,
    "",
    "Engine settings (environment):",
    ...Object.entries(profile.engine)
      .filter(([k]) => k !== "BOREALIS_DB_MAX_OVERFLOW")
      .map(([k, v]) => `  ${k}=${v}`),
    // postgres.js has a fixed pool; upstream's overflow is budgeted as headroom instead.
    `  # upstream adds ${profile.engine.BOREALIS_DB_MAX_OVERFLOW} overflow connections; this engine's pool is fixed,`,
    `  # so budget max_connections for ${profile.burstConnections} per engine (pool + headroom for tools)`,
    "",
    "PostgreSQL settings (ALTER SYSTEM):",
  ];
  const width = Math.max(...POSTGRES_SETTING_NAMES.map((n) => n.length));
  for (const name of POSTGRES_SETTING_NAMES) {
    lines.push(`  ${name.padEnd(width)} = ${profile.postgres[name]}`);
  }
  return lines.join("\n") + "\n";
}

/** What {@link applyProfile} changed. */
export interface ApplyResult {
  /** Settings written with ALTER SYSTEM, in order. */
  applied: string[];
  /** Of those, the ones PostgreSQL only picks up after a server restart. */
  needsRestart: string[];
}

const ALLOWED = new Set<string>(POSTGRES_SETTING_NAMES);

/**
 * Values are numbers, units and words only (`4MB`, `0.9`, `15min`, `on`); anything
 * else means the profile object was tampered with, and is refused rather than escaped.
 */
const SAFE_VALUE = /^[A-Za-z0-9.]+$/;

/**
 * Writes the profile's PostgreSQL settings with `ALTER SYSTEM` (needs a superuser or a
 * role granted ALTER SYSTEM on those parameters), reloads the configuration, and lists
 * the settings that wait for a restart (`pg_settings.context = 'postmaster'`, for
 * example `shared_buffers` and `max_connections`).
 *
 * ALTER SYSTEM takes no bind parameters, so the statement is built by hand: the name
 * must be on the allow-list and the value is checked and written as a quoted literal.
 */
export async function applyProfile(sql: postgres.Sql, profile: DbProfile): Promise<ApplyResult> {
  const entries = Object.entries(profile.postgres);
  // Validate everything first so a bad entry changes nothing.
  for (const [name, value] of entries) {
    if (!ALLOWED.has(name)) throw new Error(`refusing to set unknown PostgreSQL setting ${name}`);
    if (typeof value !== "string" || !SAFE_VALUE.test(value)) {
      throw new Error(`refusing unsafe value for ${name}: ${JSON.stringify(value)}`);
    }
  }
  const applied: string[] = [];
  for (const [name, value] of entries) {
    await sql.unsafe(`ALTER SYSTEM SET ${name} = ${quoteLiteral(value)}`);
    applied.push(name);
  }
  await sql`SELECT pg_reload_conf()`;
  const rows = await sql<{ name: string }[]>`
    SELECT name FROM pg_settings
    WHERE context = 'postmaster' AND name = ANY(${applied}::text[])
  `;
  const restart = new Set(rows.map((r) => r.name));
  return { applied, needsRestart: applied.filter((n) => restart.has(n)) };
}

/** A SQL string literal; doubling quotes is enough with standard_conforming_strings on. */
function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * Migrations: ordered `NNN_description.sql` files per owner (the kernel, then each
 * plugin in dependency order), recorded in `schema_migrations` with a SHA-256 checksum.
 * Each file runs in its own transaction holding a transaction-level advisory lock, so
 * engines starting together against one server apply every file exactly once.
 *
 * An owner may also ship `baseline_NNN.sql`: its schema as files 001 … NNN leave it,
 * written anew. A database where the owner has applied nothing yet runs the baseline
 * instead of those files (and records them as applied, with their checksums); a database
 * that applied some of them goes on through the files, which stay for exactly that
 * purpose. So a plugin can change how its history starts (a table handed to another
 * owner, say) without editing an applied file.
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import type { Sql } from "./db.ts";
import type { Logger } from "./log.ts";

/** Where an owner's migration files live. */
export interface MigrationSource {
  owner: string;
  dir: URL | string;
}

/** One migration file. */
export interface MigrationFile {
  owner: string;
  version: number;
  name: string;
  checksum: string;
  sql: string;
}

/** Applied and pending migrations of one owner. */
export interface OwnerStatus {
  owner: string;
  applied: Array<{ version: number; name: string; appliedAt: string }>;
  pending: Array<{ version: number; name: string }>;
}

/** An owner's files and its baseline, if it has one. */
export interface OwnerMigrations {
  owner: string;
  files: MigrationFile[];
  /** Replaces files with versions up to its own on a database new to the owner. */
  baseline?: MigrationFile;
}

/** Raised for a changed applied file, a bad file name, or pending files when auto-migrate is off. */
export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationError";
  }
}

const FILE = /^(\d{3,})_([a-z0-9_]+)\.sql$/;
const BASELINE = /^baseline_(\d{3,})\.sql$/;
/** Advisory lock key shared by every engine for migrations ("borealis" in ASCII). */
const LOCK_KEY = 0x626f7265616c6973n;

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads and checks an owner's migration files, sorted by version. */
export async function loadMigrations(source: MigrationSource): Promise<MigrationFile[]> {
  return (await loadOwner(source)).files;
}

/** Reads and checks an owner's migration files (sorted by version) and its baseline. */
export async function loadOwner(source: MigrationSource): Promise<OwnerMigrations> {
  const dir = typeof source.dir === "string" ? source.dir : fromFileUrl(source.dir);
  const files: MigrationFile[] = [];
  let baseline: MigrationFile | undefined;
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { owner: source.owner, files };
    throw err;
  }
  const seen = new Map<number, string>();
  for (const entry of entries) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    const b = BASELINE.exec(entry.name);
    if (b) {
      if (baseline) {
        throw new MigrationError(`${source.owner}: only one baseline_NNN.sql file is allowed`);
      }
      const sql = await Deno.readTextFile(`${dir}/${entry.name}`);
      baseline = {
        owner: source.owner,
        version: Number(b[1]),
        name: "baseline",
        sql,
        checksum: await sha256(sql),
      };
      continue;
    }
    const m = FILE.exec(entry.name);
    if (!m) {
      throw new MigrationError(
        `${source.owner}: migration file ${entry.name} must be named NNN_description.sql ` +
          `(lower case) or baseline_NNN.sql`,
      );
    }
    const version = Number(m[1]);
    const other = seen.get(version);
    if (other) {
      throw new MigrationError(
        `${source.owner}: ${entry.name} and ${other} share version ${version}`,
      );
    }
    seen.set(version, entry.name);
    const sql = await Deno.readTextFile(`${dir}/${entry.name}`);
    files.push({ owner: source.owner, version, name: m[2]!, sql, checksum: await sha256(sql) });
  }
  files.sort((a, b) => a.version - b.version);
  if (baseline && !files.some((f) => f.version === baseline!.version)) {
    throw new MigrationError(
      `${source.owner}: baseline_${String(baseline.version).padStart(3, "0")}.sql replaces ` +
        `files up to version ${baseline.version}, but there is no such file`,
    );
  }
  return { owner: source.owner, files, baseline };
}

async function ensureTable(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${LOCK_KEY.toString()}::bigint)`;
    await tx`
      create table if not exists schema_migrations (
        owner text not null,
        version integer not null,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now(),
        primary key (owner, version)
      )`;
  });
}

interface AppliedRow {
  owner: string;
  version: number;
  name: string;
  checksum: string;
  applied_at: Date;
}

async function appliedRows(sql: Sql): Promise<AppliedRow[]> {
  return await sql<AppliedRow[]>`
    select owner, version, name, checksum, applied_at from schema_migrations order by owner, version`;
}

function checkDrift(files: MigrationFile[], applied: AppliedRow[]): void {
  const byKey = new Map(applied.map((r) => [`${r.owner}:${r.version}`, r]));
  const drifted = files.filter((f) => {
    const row = byKey.get(`${f.owner}:${f.version}`);
    return row && row.checksum !== f.checksum;
  });
  if (drifted.length) {
    const names = drifted.map((f) =>
      `${f.owner}/${String(f.version).padStart(3, "0")}_${f.name}.sql`
    );
    throw new MigrationError(
      `applied migration file(s) changed since they ran: ${names.join(", ")}. ` +
        `Never edit an applied migration; restore the file and add a new one.`,
    );
  }
}

/** Loads every source's files (sources in dependency order). */
export async function loadAll(sources: MigrationSource[]): Promise<MigrationFile[]> {
  const all: MigrationFile[] = [];
  for (const s of sources) all.push(...await loadMigrations(s));
  return all;
}

/** Reports applied and pending migrations per owner; refuses drifted files. */
export async function migrationStatus(
  sql: Sql,
  sources: MigrationSource[],
): Promise<OwnerStatus[]> {
  await ensureTable(sql);
  const files = await loadAll(sources);
  const applied = await appliedRows(sql);
  checkDrift(files, applied);
  return sources.map(({ owner }) => {
    const mine = applied.filter((r) => r.owner === owner);
    const done = new Set(mine.map((r) => r.version));
    return {
      owner,
      applied: mine.map((r) => ({
        version: r.version,
        name: r.name,
        appliedAt: new Date(r.applied_at).toISOString(),
      })),
      pending: files.filter((f) => f.owner === owner && !done.has(f.version))
        .map((f) => ({ version: f.version, name: f.name })),
    };
  });
}

/**
 * Applies every pending file in order (or an owner's baseline, on a database new to that
 * owner). Each file runs in its own transaction; the advisory lock taken first makes a
 * concurrent engine wait, then see the row and skip.
 */
export async function applyMigrations(
  sql: Sql,
  sources: MigrationSource[],
  log: Logger,
): Promise<number> {
  await ensureTable(sql);
  const owners: OwnerMigrations[] = [];
  for (const s of sources) owners.push(await loadOwner(s));
  checkDrift(owners.flatMap((o) => o.files), await appliedRows(sql));
  let count = 0;
  const label = (f: MigrationFile) =>
    `${f.owner}/${String(f.version).padStart(3, "0")}_${f.name}.sql`;
  const failed = (what: string) => (err: unknown): never => {
    if (err instanceof MigrationError) throw err;
    throw new MigrationError(
      `${what} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  };
  for (const { owner, files, baseline } of owners) {
    if (baseline) {
      const covered = files.filter((f) => f.version <= baseline.version);
      const ran = await sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${LOCK_KEY.toString()}::bigint)`;
        const [any] = await tx`select 1 from schema_migrations where owner = ${owner} limit 1`;
        if (any) return false;
        await tx.unsafe(baseline.sql);
        for (const f of covered) {
          await tx`
            insert into schema_migrations (owner, version, name, checksum)
            values (${f.owner}, ${f.version}, ${f.name}, ${f.checksum})`;
        }
        return true;
      }).catch(failed(`${owner}/baseline_${String(baseline.version).padStart(3, "0")}.sql`));
      if (ran) {
        count += covered.length;
        log.info(
          `applied migration ${owner}/baseline_${baseline.version} (versions 1-${baseline.version})`,
        );
      }
    }
    for (const file of files) {
      const applied = await sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${LOCK_KEY.toString()}::bigint)`;
        const [row] = await tx<{ checksum: string }[]>`
          select checksum from schema_migrations where owner = ${file.owner} and version = ${file.version}`;
        if (row) {
          checkDrift([file], [{ ...file, checksum: row.checksum, applied_at: new Date() }]);
          return false;
        }
        await tx.unsafe(file.sql);
        await tx`
          insert into schema_migrations (owner, version, name, checksum)
          values (${file.owner}, ${file.version}, ${file.name}, ${file.checksum})`;
        return true;
      }).catch(failed(label(file)));
      if (applied) {
        count++;
        log.info(`applied migration ${file.owner}/${file.version}_${file.name}`);
      }
    }
  }
  return count;
}

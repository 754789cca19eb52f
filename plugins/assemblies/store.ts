/**
 * SQL for the `assemblies` schema: loading rows into records, and writing a flush —
 * every staged upsert and delete in one transaction. The batch is tried as one
 * statement first; when the database rejects it, each entry is retried inside its own
 * savepoint of the same transaction so one bad entry cannot hold back the rest.
 *
 * @module
 */
import type postgres from "postgres";
import type { Sql } from "../../core/db.ts";
import type { AssemblyRecord, Domain } from "./model.ts";

interface Row {
  assembly_guid: string;
  domain: Domain;
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: AssemblyRecord["assembly_kind"];
  assembly_type: AssemblyRecord["assembly_type"];
  version: number;
  metadata: Record<string, unknown>;
  tags: string[];
  checksum: string;
  payload_guid: string;
  payload_type: AssemblyRecord["payload_type"];
  payload_file_name: string;
  payload_file_extension: string;
  payload_size_bytes: string | number;
  payload_checksum: string;
  payload_created_at: Date;
  payload_updated_at: Date;
  source_path: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  `assembly_guid, domain, display_name, summary, category, assembly_kind, assembly_type,
  version, metadata, tags, checksum, payload_guid, payload_type, payload_file_name,
  payload_file_extension, payload_size_bytes, payload_checksum, payload_created_at,
  payload_updated_at, source_path, created_at, updated_at`;

const RECORDSET =
  `x(assembly_guid uuid, domain text, display_name text, summary text, category text,
  assembly_kind text, assembly_type text, version integer, metadata jsonb, tags jsonb,
  checksum text, payload_guid uuid, payload_type text, payload_file_name text,
  payload_file_extension text, payload_size_bytes bigint, payload_checksum text,
  payload_created_at timestamptz, payload_updated_at timestamptz, source_path text,
  created_at timestamptz, updated_at timestamptz)`;

const UPDATE_SET = COLUMNS.split(",").map((c) => c.trim()).filter((c) =>
  c !== "assembly_guid" && c !== "created_at"
).map((c) => `${c} = excluded.${c}`).join(", ");

// A row only moves forward: an older version (a stale writer on another instance)
// never overwrites a newer one.
const UPSERT = `insert into assemblies.assemblies (${COLUMNS})
  select ${COLUMNS} from jsonb_to_recordset($1::text::jsonb) as ${RECORDSET}
  on conflict (assembly_guid) do update set ${UPDATE_SET}
  where assemblies.assemblies.version < excluded.version
  returning assembly_guid::text as assembly_guid`;

/** Converts a database row into a record. */
export function rowToRecord(r: Row): AssemblyRecord {
  return {
    assembly_guid: r.assembly_guid,
    domain: r.domain,
    display_name: r.display_name,
    summary: r.summary,
    category: r.category,
    assembly_kind: r.assembly_kind,
    assembly_type: r.assembly_type,
    version: r.version,
    metadata: r.metadata ?? {},
    tags: r.tags ?? [],
    checksum: r.checksum,
    payload_guid: r.payload_guid,
    payload_type: r.payload_type,
    payload_file_name: r.payload_file_name,
    payload_file_extension: r.payload_file_extension,
    payload_size_bytes: Number(r.payload_size_bytes),
    payload_checksum: r.payload_checksum,
    payload_created_at: iso(r.payload_created_at),
    payload_updated_at: iso(r.payload_updated_at),
    source_path: r.source_path,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

function iso(d: Date | string): string {
  return (d instanceof Date ? d : new Date(d)).toISOString();
}

/** Every row, or the rows of one domain, or the rows with the given GUIDs. */
export async function loadRecords(
  sql: Sql,
  filter: { domain?: Domain; guids?: string[] } = {},
): Promise<AssemblyRecord[]> {
  const rows = filter.guids
    ? await sql.unsafe<Row[]>(
      `select ${COLUMNS} from assemblies.assemblies where assembly_guid = any($1::uuid[])`,
      [filter.guids],
    )
    : filter.domain
    ? await sql.unsafe<Row[]>(
      `select ${COLUMNS} from assemblies.assemblies where domain = $1`,
      [filter.domain],
    )
    : await sql.unsafe<Row[]>(`select ${COLUMNS} from assemblies.assemblies`);
  return rows.map((r) => rowToRecord({ ...r, assembly_guid: String(r.assembly_guid) }));
}

/** One row straight from SQL (the benchmark's baseline for a cached read). */
export async function loadRecord(sql: Sql, guid: string): Promise<AssemblyRecord | null> {
  const rows = await sql.unsafe<Row[]>(
    `select ${COLUMNS} from assemblies.assemblies where assembly_guid = $1`,
    [guid],
  );
  return rows[0] ? rowToRecord(rows[0]) : null;
}

/** What one flush transaction did. */
export interface FlushOutcome {
  /** GUIDs whose row now holds the staged version. */
  written: string[];
  /** GUIDs whose row holds a newer version written by another instance. */
  superseded: string[];
  /** GUIDs deleted (or already absent). */
  deleted: string[];
  /** GUIDs the database refused, with its message. */
  failed: Map<string, string>;
}

/** Writes staged upserts and deletes in one transaction. */
export async function writeBatch(
  sql: Sql,
  upserts: readonly AssemblyRecord[],
  deletes: readonly string[],
): Promise<FlushOutcome> {
  const outcome: FlushOutcome = { written: [], superseded: [], deleted: [], failed: new Map() };
  await sql.begin(async (tx) => {
    if (deletes.length) {
      try {
        await tx.savepoint((sp) =>
          sp.unsafe(`delete from assemblies.assemblies where assembly_guid = any($1::uuid[])`, [
            deletes as string[],
          ])
        );
        outcome.deleted.push(...deletes);
      } catch {
        for (const guid of deletes) {
          try {
            await tx.savepoint((sp) =>
              sp.unsafe(`delete from assemblies.assemblies where assembly_guid = $1`, [guid])
            );
            outcome.deleted.push(guid);
          } catch (err) {
            outcome.failed.set(guid, message(err));
          }
        }
      }
    }
    if (upserts.length) {
      const wrote = new Set<string>();
      try {
        const rows = await tx.savepoint((sp) =>
          sp.unsafe<{ assembly_guid: string }[]>(UPSERT, [toJson(upserts)])
        );
        for (const r of rows) wrote.add(r.assembly_guid);
        for (const u of upserts) {
          (wrote.has(u.assembly_guid) ? outcome.written : outcome.superseded).push(
            u.assembly_guid,
          );
        }
      } catch {
        for (const u of upserts) {
          try {
            const rows = await tx.savepoint((sp) =>
              sp.unsafe<{ assembly_guid: string }[]>(UPSERT, [toJson([u])])
            );
            (rows.length ? outcome.written : outcome.superseded).push(u.assembly_guid);
          } catch (err) {
            outcome.failed.set(u.assembly_guid, message(err));
          }
        }
      }
    }
  });
  return outcome;
}

/** Upserts records inside a caller's transaction; returns the GUIDs actually written. */
export async function upsertRecords(
  tx: Sql | postgres.TransactionSql,
  records: readonly AssemblyRecord[],
): Promise<string[]> {
  if (!records.length) return [];
  const rows = await tx.unsafe<{ assembly_guid: string }[]>(UPSERT, [toJson(records)]);
  return rows.map((r) => r.assembly_guid);
}

// postgres.js sends a string parameter as text; the ::jsonb cast parses it server-side.
function toJson(records: readonly AssemblyRecord[]): string {
  return JSON.stringify(records);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

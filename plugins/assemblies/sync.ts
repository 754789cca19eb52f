/**
 * Official sync: rebuilds the `official` domain from the shipped catalog folder
 * (`Scripts/`, `Workflows/`, `Ansible_Playbooks/`, JSON documents in the legacy
 * authoring format). GUIDs come from the relative path (and payload GUIDs from path
 * and content), so every machine derives the same ones and a second run finds nothing
 * to do. Files are read, hashed and their payloads written before the transaction;
 * the transaction itself (under an advisory lock, so two engines booting together do
 * not race) only compares checksums and writes rows.
 *
 * @module
 */
import { relative } from "node:path";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { Logger } from "../../core/log.ts";
import { payloadBytes } from "./cache.ts";
import {
  type AssemblyRecord,
  definitionChecksum,
  type Kind,
  payloadExtension,
  payloadTypeFor,
  sha256Hex,
  uuidV5,
} from "./model.ts";
import type { PayloadStore } from "./payloads.ts";
import { parseImportDocument } from "./serialization.ts";
import { rowToRecord, upsertRecords } from "./store.ts";

/** Top folders of the catalog and the kind each holds. */
export const CATALOG_FOLDERS: Record<string, Kind> = {
  Scripts: "script",
  Workflows: "workflow",
  Ansible_Playbooks: "ansible",
};

/** One catalog file found on disk. */
export interface CatalogFile {
  /** Path relative to the catalog folder, with forward slashes. */
  path: string;
  kind: Kind;
  bytes: Uint8Array;
  sha256: string;
  mtime: Date | null;
}

/** What a sync did. */
export interface SyncSummary {
  files: number;
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: number;
  /** Payload files rewritten for rows that were otherwise unchanged. */
  repaired: number;
  skipped: Array<{ path: string; reason: string }>;
  fingerprint: string;
}

/** Lists the catalog's JSON documents, sorted by path. */
export async function scanCatalog(dir: string): Promise<CatalogFile[]> {
  const out: CatalogFile[] = [];
  for (const [folder, kind] of Object.entries(CATALOG_FOLDERS)) {
    await walk(`${dir}/${folder}`, async (file) => {
      if (!file.endsWith(".json")) return;
      const bytes = await Deno.readFile(file);
      const info = await Deno.stat(file);
      out.push({
        path: relative(dir, file).split("\\").join("/"),
        kind,
        bytes,
        sha256: await sha256Hex(bytes),
        mtime: info.mtime,
      });
    });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function walk(dir: string, fn: (file: string) => Promise<void>): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) await walk(p, fn);
    else if (e.isFile) await fn(p);
  }
}

/** A fingerprint of the catalog: paths and content hashes. */
export function catalogFingerprint(files: readonly CatalogFile[]): Promise<string> {
  return sha256Hex(files.map((f) => `${f.path}\t${f.sha256}`).join("\n"));
}

/** The fingerprint recorded by the last sync, if any. */
export async function recordedFingerprint(sql: Sql): Promise<string | null> {
  const [row] = await sql<{ fingerprint: string }[]>`
    select fingerprint from assemblies.catalog_state where id`;
  return row?.fingerprint ?? null;
}

/** Options for {@link syncOfficial}. */
export interface SyncOptions {
  sql: Sql;
  payloads: PayloadStore;
  clock: Clock;
  log: Logger;
  catalogDir: string;
  maxPayloadBytes: number;
  /** Progress: files prepared so far. */
  onProgress?: (done: number, total: number, path: string) => void;
}

const SYNC_LOCK = 0x6173_6d5f_7379_6e63n; // "asm_sync"

/** Rebuilds the official domain from the catalog folder. */
export async function syncOfficial(o: SyncOptions): Promise<SyncSummary> {
  const files = await scanCatalog(o.catalogDir);
  const fingerprint = await catalogFingerprint(files);
  const skipped: SyncSummary["skipped"] = [];
  const wanted = new Map<string, AssemblyRecord>();
  const rewritten = new Set<string>();
  let done = 0;
  for (const file of files) {
    try {
      const record = await prepare(file, o, rewritten);
      if (wanted.has(record.assembly_guid)) throw new Error("duplicate GUID");
      wanted.set(record.assembly_guid, record);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      skipped.push({ path: file.path, reason });
      o.log.warn(`official catalog: skipped ${file.path}: ${reason}`);
    }
    o.onProgress?.(++done, files.length, file.path);
  }

  const summary: SyncSummary = {
    files: files.length,
    added: [],
    changed: [],
    removed: [],
    unchanged: 0,
    repaired: 0,
    skipped,
    fingerprint,
  };
  const obsoletePayloads: string[] = [];
  const unchangedRecords: AssemblyRecord[] = [];
  await o.sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${SYNC_LOCK.toString()}::bigint)`;
    const rows = await tx.unsafe(
      `select * from assemblies.assemblies where domain = 'official' or assembly_guid = any($1::uuid[])`,
      [[...wanted.keys()]],
    );
    const existing = new Map(
      rows.map((r) => {
        const rec = rowToRecord(r as never);
        return [rec.assembly_guid, rec];
      }),
    );
    const upserts: AssemblyRecord[] = [];
    for (const [guid, want] of wanted) {
      const have = existing.get(guid);
      if (!have) {
        upserts.push(want);
        summary.added.push(guid);
      } else if (have.domain !== "official") {
        skipped.push({
          path: want.source_path!,
          reason: `GUID ${guid} is taken in ${have.domain}`,
        });
      } else if (have.checksum === want.checksum && have.source_path === want.source_path) {
        summary.unchanged++;
        unchangedRecords.push(have);
      } else {
        upserts.push({
          ...want,
          version: have.version + 1,
          created_at: have.created_at,
          payload_created_at: have.payload_guid === want.payload_guid
            ? have.payload_created_at
            : want.payload_created_at,
        });
        summary.changed.push(guid);
        if (have.payload_guid !== want.payload_guid) obsoletePayloads.push(have.payload_guid);
      }
    }
    const removed = [...existing.values()].filter((r) =>
      r.domain === "official" && !wanted.has(r.assembly_guid)
    );
    if (removed.length) {
      await tx.unsafe(`delete from assemblies.assemblies where assembly_guid = any($1::uuid[])`, [
        removed.map((r) => r.assembly_guid),
      ]);
      for (const r of removed) {
        summary.removed.push(r.assembly_guid);
        obsoletePayloads.push(r.payload_guid);
      }
    }
    await upsertRecords(tx, upserts);
    const now = new Date(o.clock.now());
    await tx`
      insert into assemblies.catalog_state (id, fingerprint, file_count, synced_at)
      values (true, ${fingerprint}, ${files.length}, ${now})
      on conflict (id) do update set fingerprint = excluded.fingerprint,
        file_count = excluded.file_count, synced_at = excluded.synced_at`;
  });
  // Payload files are content-addressed per path, so a missing one was simply
  // written again during preparation; count the rows that healed that way.
  summary.repaired = unchangedRecords.filter((r) => rewritten.has(r.payload_guid)).length;
  for (const p of obsoletePayloads) await o.payloads.remove(p).catch(() => {});
  o.log.info(
    `official sync: ${summary.added.length} added, ${summary.changed.length} changed, ` +
      `${summary.removed.length} removed, ${summary.unchanged} unchanged, ${skipped.length} skipped`,
  );
  return summary;
}

/** Parses one catalog file into the record it stands for and writes its payload. */
async function prepare(
  file: CatalogFile,
  o: SyncOptions,
  rewritten: Set<string>,
): Promise<AssemblyRecord> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(file.bytes));
  } catch (err) {
    throw new Error(`not valid JSON: ${err instanceof Error ? err.message : err}`);
  }
  let parsed;
  try {
    parsed = parseImportDocument(doc, { maxPayloadBytes: o.maxPayloadBytes });
  } catch (err) {
    const details = (err as { details?: Array<{ field: string; message: string }> }).details;
    throw new Error(
      details ? details.map((d) => `${d.field}: ${d.message}`).join("; ") : String(err),
    );
  }
  if (parsed.assembly_kind !== file.kind) {
    throw new Error(`a ${parsed.assembly_kind} document in the ${file.kind} folder`);
  }
  const guid = await uuidV5(`official:${file.path}`);
  const bytes = payloadBytes(parsed.payload);
  const payloadSha = await sha256Hex(bytes);
  const payloadGuid = await uuidV5(`official-payload:${file.path}:${payloadSha}`);
  const payloadType = parsed.payload_type ?? payloadTypeFor(parsed.assembly_kind);
  const type = parsed.assembly_type ?? null;
  const ext = payloadExtension(parsed.assembly_kind, type, payloadType);
  try {
    await o.payloads.read(payloadGuid, ext, { sha256: payloadSha, size: bytes.length });
  } catch {
    await o.payloads.write(payloadGuid, ext, bytes);
    rewritten.add(payloadGuid);
  }
  const base = {
    display_name: parsed.display_name,
    summary: parsed.summary ?? "",
    category: parsed.category ??
      (parsed.assembly_kind === "script" ? "script" : parsed.assembly_kind),
    assembly_kind: parsed.assembly_kind,
    assembly_type: type,
    metadata: parsed.metadata ?? {},
    tags: parsed.tags ?? [],
    payload_type: payloadType,
    payload_checksum: payloadSha,
  };
  const at = (file.mtime ?? new Date(o.clock.now())).toISOString();
  return {
    assembly_guid: guid,
    domain: "official",
    ...base,
    version: 1,
    checksum: await definitionChecksum(base),
    payload_guid: payloadGuid,
    payload_file_name: `payload.${ext}`,
    payload_file_extension: ext,
    payload_size_bytes: bytes.length,
    payload_created_at: at,
    payload_updated_at: at,
    source_path: file.path,
    created_at: at,
    updated_at: at,
  };
}

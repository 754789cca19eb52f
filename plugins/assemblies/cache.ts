/**
 * The assembly cache and its write queue. Every domain is loaded into memory at start,
 * keyed by GUID and tagged with its domain. Reads hand out copies. A mutation writes
 * its payload file at once (under a fresh payload GUID, so the row in the database
 * keeps pointing at the old, intact file until the new row commits), updates the entry
 * in memory and marks it dirty; {@link AssemblyCache.flush} writes every due dirty
 * entry in one transaction. An entry the database refuses stays dirty and is retried
 * with exponential backoff on the injected clock.
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";
import type { Clock } from "../../core/clock.ts";
import { conflict, HttpError, notFound } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import {
  type AssemblyRecord,
  type AssemblyType,
  copyRecord,
  definitionChecksum,
  type Domain,
  type EntryState,
  type Kind,
  payloadExtension,
  type PayloadType,
  payloadTypeFor,
} from "./model.ts";
import { PayloadError, type PayloadProblemKind, type PayloadStore } from "./payloads.ts";
import { loadRecords, writeBatch } from "./store.ts";

/** Content of a payload as callers give it. */
export type PayloadInput =
  | { kind: "text"; text: string }
  | { kind: "json"; value: unknown }
  | { kind: "bytes"; bytes: Uint8Array };

/** Fields of a new assembly. */
export interface NewAssembly {
  assembly_guid?: string;
  domain: Domain;
  display_name: string;
  summary?: string;
  category?: string;
  assembly_kind: Kind;
  assembly_type?: AssemblyType | null;
  metadata?: Record<string, unknown>;
  tags?: string[];
  payload_type?: PayloadType;
  payload: PayloadInput;
  /** Kept as given (import of an exported document restores them). */
  version?: number;
  created_at?: string;
  updated_at?: string;
  payload_guid?: string;
  source_path?: string | null;
}

/** Fields an update may change; absent fields stay. */
export interface AssemblyPatch {
  display_name?: string;
  summary?: string;
  category?: string;
  assembly_type?: AssemblyType | null;
  metadata?: Record<string, unknown>;
  tags?: string[];
  payload?: PayloadInput;
}

/** One integrity problem. */
export interface IntegrityProblem {
  assembly_guid: string;
  domain: Domain;
  display_name: string;
  payload_guid: string;
  payload_file: string;
  problem: PayloadProblemKind;
  detail: string;
  detected_at: string;
}

/** A queue snapshot for list responses and the pill in the console. */
export interface QueueSnapshot {
  dirty_count: number;
  pending_deletes: number;
  failing_count: number;
  oldest_dirty_since: string | null;
  last_flush_at: string | null;
  last_flush_error: string | null;
  flush_interval_seconds: number;
  flushing: boolean;
}

/** What one flush did. */
export interface FlushResult {
  persisted: number;
  deleted: number;
  failed: number;
  superseded: number;
  deferred: number;
  duration_ms: number;
}

/** List filters. */
export interface ListQuery {
  domain?: Domain;
  kind?: Kind;
  q?: string;
  limit: number;
  offset: number;
}

/** A list item as the API returns it. */
export interface ListItem {
  assembly_guid: string;
  source: Domain;
  domain: Domain;
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: Kind;
  assembly_type: AssemblyType | null;
  version: number;
  tags: string[];
  payload_type: PayloadType;
  payload_size_bytes: number;
  is_dirty: boolean;
  created_at: string;
  updated_at: string;
  payload_guid?: string;
}

interface Entry {
  record: AssemblyRecord;
  dirty: boolean;
  deleted: boolean;
  dirtySince: number | null;
  lastPersisted: number | null;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  /** The payload GUID the database row points at (null: no row yet). */
  persistedPayload: string | null;
  /** Bumped by every staged change; a flush only cleans the generation it wrote. */
  gen: number;
  search: string;
  /** Serialized list item (without payload_guid) and the `gen:dirty` it was made for. */
  json?: { key: string; user: string };
}

/** Options for {@link AssemblyCache}. */
export interface CacheOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  payloads: PayloadStore;
  flushIntervalMs: number;
  /** Longest retry delay for an entry the database refuses. */
  maxBackoffMs?: number;
  /** Called after a flush commits, with what changed (for the event bus). */
  onPersisted?: (changed: string[], deleted: string[]) => void | Promise<void>;
}

/** The in-memory catalog with its timed write queue. */
export class AssemblyCache {
  #entries = new Map<string, Entry>();
  #sorted: Entry[] | null = null;
  #problems = new Map<string, IntegrityProblem>();
  #chain: Promise<unknown> = Promise.resolve();
  #flushing = false;
  #lastFlushAt: number | null = null;
  #lastFlushError: string | null = null;

  constructor(private readonly o: CacheOptions) {}

  // ---- loading -------------------------------------------------------------------

  /** Loads every domain from the database and checks every payload file. */
  async load(): Promise<{ loaded: number; problems: number }> {
    const records = await loadRecords(this.o.sql);
    const now = this.o.clock.now();
    this.#entries.clear();
    for (const r of records) this.#entries.set(r.assembly_guid, this.#cleanEntry(r, now));
    this.#sorted = null;
    const problems = await this.checkIntegrity();
    return { loaded: records.length, problems: problems.length };
  }

  /** Replaces clean entries with what the database holds now (another instance changed them). */
  async reload(guids: readonly string[], deleted: readonly string[] = []): Promise<void> {
    const now = this.o.clock.now();
    const rows = guids.length ? await loadRecords(this.o.sql, { guids: [...guids] }) : [];
    const found = new Set<string>();
    for (const r of rows) {
      found.add(r.assembly_guid);
      const current = this.#entries.get(r.assembly_guid);
      if (current?.dirty) {
        this.o.log.warn(
          `assembly ${r.assembly_guid} changed on another instance while staged here; the newer version wins at flush`,
        );
        continue;
      }
      this.#entries.set(r.assembly_guid, this.#cleanEntry(r, now));
      this.#problems.delete(r.assembly_guid);
    }
    for (const guid of [...deleted, ...guids.filter((g) => !found.has(g))]) {
      const current = this.#entries.get(guid);
      if (current && !current.dirty) {
        this.#entries.delete(guid);
        this.#problems.delete(guid);
      }
    }
    this.#sorted = null;
  }

  /** Reloads one domain entirely (after the official sync rebuilt it). */
  async reloadDomain(domain: Domain): Promise<void> {
    const rows = await loadRecords(this.o.sql, { domain });
    const now = this.o.clock.now();
    for (const [guid, e] of this.#entries) {
      if (e.record.domain === domain && !e.dirty) this.#entries.delete(guid);
    }
    for (const r of rows) {
      if (this.#entries.get(r.assembly_guid)?.dirty) continue;
      this.#entries.set(r.assembly_guid, this.#cleanEntry(r, now));
    }
    this.#sorted = null;
  }

  #cleanEntry(r: AssemblyRecord, now: number): Entry {
    return {
      record: r,
      dirty: false,
      deleted: false,
      dirtySince: null,
      lastPersisted: now,
      attempts: 0,
      nextAttemptAt: 0,
      lastError: null,
      persistedPayload: r.payload_guid,
      gen: 0,
      search: searchText(r),
    };
  }

  // ---- reads -----------------------------------------------------------------------

  /** Number of live (not pending-delete) assemblies. */
  get size(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (!e.deleted) n++;
    return n;
  }

  /** A copy of one assembly, or null. */
  get(guid: string): AssemblyRecord | null {
    const e = this.#entries.get(guid);
    return e && !e.deleted ? copyRecord(e.record) : null;
  }

  /** A copy of one assembly; 404 when unknown. */
  require(guid: string): AssemblyRecord {
    const r = this.get(guid);
    if (!r) throw notFound(`no assembly ${guid}`);
    return r;
  }

  /** Queue state of one assembly. */
  state(guid: string): EntryState & { attempts: number; last_error: string | null } | null {
    const e = this.#entries.get(guid);
    return e ? this.#state(e) : null;
  }

  #state(e: Entry) {
    return {
      domain: e.record.domain,
      is_dirty: e.dirty,
      dirty_since: e.dirtySince === null ? null : new Date(e.dirtySince).toISOString(),
      last_persisted: e.lastPersisted === null ? null : new Date(e.lastPersisted).toISOString(),
      attempts: e.attempts,
      last_error: e.lastError,
    };
  }

  /** Upstream's `describe()`: `{domain, is_dirty, dirty_since, last_persisted}` per GUID. */
  describe(): Record<string, EntryState> {
    const out: Record<string, EntryState> = {};
    for (const [guid, e] of this.#entries) {
      const s = this.#state(e);
      out[guid] = {
        domain: s.domain,
        is_dirty: s.is_dirty,
        dirty_since: s.dirty_since,
        last_persisted: s.last_persisted,
      };
    }
    return out;
  }

  /** The payload content of an assembly, verified against its recorded SHA-256. */
  async readPayload(guid: string): Promise<{ record: AssemblyRecord; bytes: Uint8Array }> {
    const e = this.#entries.get(guid);
    if (!e || e.deleted) throw notFound(`no assembly ${guid}`);
    const r = e.record;
    try {
      const bytes = await this.o.payloads.read(r.payload_guid, r.payload_file_extension, {
        sha256: r.payload_checksum,
        size: r.payload_size_bytes,
      });
      return { record: copyRecord(r), bytes };
    } catch (err) {
      if (err instanceof PayloadError) {
        this.#noteProblem(r, err);
        throw payloadHttpError(r, err);
      }
      throw err;
    }
  }

  /** A page of list items plus the total matching. */
  list(query: ListQuery, includePayloadGuid: boolean): { items: ListItem[]; total: number } {
    const items: ListItem[] = [];
    let total = 0;
    const end = query.offset + query.limit;
    for (const e of this.#matching(query)) {
      if (total >= query.offset && total < end) items.push(toItem(e, includePayloadGuid));
      total++;
    }
    return { items, total };
  }

  /**
   * The same page as {@link list}, already serialized: each item's JSON is kept between
   * requests until the entry changes, so a full 10,000-item listing is a string join.
   */
  listJson(query: ListQuery, includePayloadGuid: boolean): { items: string; total: number } {
    const parts: string[] = [];
    let total = 0;
    const end = query.offset + query.limit;
    for (const e of this.#matching(query)) {
      if (total >= query.offset && total < end) {
        const key = `${e.gen}:${e.dirty}`;
        if (e.json?.key !== key) e.json = { key, user: JSON.stringify(toItem(e, false)) };
        // Admins see one more field; splicing it in keeps a single cached string per entry.
        parts.push(
          includePayloadGuid
            ? `${e.json.user.slice(0, -1)},"payload_guid":"${e.record.payload_guid}"}`
            : e.json.user,
        );
      }
      total++;
    }
    return { items: `[${parts.join(",")}]`, total };
  }

  *#matching(query: ListQuery): Generator<Entry> {
    const sorted = this.#sorted ??= [...this.#entries.values()]
      .filter((e) => !e.deleted)
      .sort((a, b) => (a.search < b.search ? -1 : a.search > b.search ? 1 : 0));
    const q = query.q?.trim().toLowerCase();
    for (const e of sorted) {
      const r = e.record;
      if (query.domain && r.domain !== query.domain) continue;
      if (query.kind && r.assembly_kind !== query.kind) continue;
      if (q && !e.search.includes(q)) continue;
      yield e;
    }
  }

  /** The queue snapshot. */
  queue(): QueueSnapshot {
    let dirty = 0, deletes = 0, failing = 0;
    let oldest: number | null = null;
    for (const e of this.#entries.values()) {
      if (!e.dirty) continue;
      dirty++;
      if (e.deleted) deletes++;
      if (e.attempts > 0) failing++;
      if (e.dirtySince !== null && (oldest === null || e.dirtySince < oldest)) {
        oldest = e.dirtySince;
      }
    }
    return {
      dirty_count: dirty,
      pending_deletes: deletes,
      failing_count: failing,
      oldest_dirty_since: oldest === null ? null : new Date(oldest).toISOString(),
      last_flush_at: this.#lastFlushAt === null ? null : new Date(this.#lastFlushAt).toISOString(),
      last_flush_error: this.#lastFlushError,
      flush_interval_seconds: Math.round(this.o.flushIntervalMs / 1000),
      flushing: this.#flushing,
    };
  }

  // ---- mutations -----------------------------------------------------------------

  /** Stages a new assembly; 409 when the GUID is taken. */
  async create(input: NewAssembly): Promise<AssemblyRecord> {
    const guid = input.assembly_guid ?? crypto.randomUUID();
    if (this.#entries.has(guid)) {
      throw conflict("assembly_exists", `assembly ${guid} already exists`);
    }
    const nowIso = new Date(this.o.clock.now()).toISOString();
    const payloadType = input.payload_type ?? payloadTypeFor(input.assembly_kind);
    const type = input.assembly_type ?? defaultType(input.assembly_kind);
    const ext = payloadExtension(input.assembly_kind, type, payloadType);
    const payloadGuid = input.payload_guid && !this.#payloadInUse(input.payload_guid)
      ? input.payload_guid
      : crypto.randomUUID();
    const written = await this.o.payloads.write(payloadGuid, ext, payloadBytes(input.payload));
    const base = {
      display_name: input.display_name,
      summary: input.summary ?? "",
      category: input.category ?? defaultCategory(input.assembly_kind),
      assembly_kind: input.assembly_kind,
      assembly_type: type,
      metadata: structuredClone(input.metadata ?? {}),
      tags: [...(input.tags ?? [])],
      payload_type: payloadType,
      payload_checksum: written.sha256,
    };
    const record: AssemblyRecord = {
      assembly_guid: guid,
      domain: input.domain,
      ...base,
      version: input.version ?? 1,
      checksum: await definitionChecksum(base),
      payload_guid: payloadGuid,
      payload_file_name: `payload.${ext}`,
      payload_file_extension: ext,
      payload_size_bytes: written.size,
      payload_created_at: input.created_at ?? nowIso,
      payload_updated_at: input.updated_at ?? nowIso,
      source_path: input.source_path ?? null,
      created_at: input.created_at ?? nowIso,
      updated_at: input.updated_at ?? input.created_at ?? nowIso,
    };
    if (this.#entries.has(guid)) {
      // Someone created the same GUID while the payload was being written.
      await this.o.payloads.remove(payloadGuid);
      throw conflict("assembly_exists", `assembly ${guid} already exists`);
    }
    const entry: Entry = {
      ...this.#cleanEntry(record, 0),
      lastPersisted: null,
      persistedPayload: null,
    };
    this.#markDirty(entry);
    this.#entries.set(guid, entry);
    this.#sorted = null;
    return copyRecord(record);
  }

  /** Stages a change; 409 `stale_version` unless `expectedVersion` is the current one. */
  async update(
    guid: string,
    patch: AssemblyPatch,
    expectedVersion: number,
  ): Promise<AssemblyRecord> {
    const before = this.#live(guid);
    this.#checkVersion(before, expectedVersion);
    const r = before.record;
    const nowIso = new Date(this.o.clock.now()).toISOString();
    let payload: Pick<
      AssemblyRecord,
      | "payload_guid"
      | "payload_checksum"
      | "payload_size_bytes"
      | "payload_updated_at"
      | "payload_file_name"
      | "payload_file_extension"
    > = {
      payload_guid: r.payload_guid,
      payload_checksum: r.payload_checksum,
      payload_size_bytes: r.payload_size_bytes,
      payload_updated_at: r.payload_updated_at,
      payload_file_name: r.payload_file_name,
      payload_file_extension: r.payload_file_extension,
    };
    const type = patch.assembly_type !== undefined ? patch.assembly_type : r.assembly_type;
    const ext = payloadExtension(r.assembly_kind, type, r.payload_type);
    let newPayload: string | null = null;
    if (patch.payload !== undefined || ext !== r.payload_file_extension) {
      let bytes: Uint8Array;
      if (patch.payload !== undefined) bytes = payloadBytes(patch.payload);
      else bytes = (await this.readPayload(guid)).bytes; // type changed: same content, new name
      newPayload = crypto.randomUUID();
      const written = await this.o.payloads.write(newPayload, ext, bytes);
      payload = {
        payload_guid: newPayload,
        payload_checksum: written.sha256,
        payload_size_bytes: written.size,
        payload_updated_at: nowIso,
        payload_file_name: `payload.${ext}`,
        payload_file_extension: ext,
      };
    }
    const base = {
      display_name: patch.display_name ?? r.display_name,
      summary: patch.summary ?? r.summary,
      category: patch.category ?? r.category,
      assembly_kind: r.assembly_kind,
      assembly_type: type,
      metadata: patch.metadata !== undefined ? structuredClone(patch.metadata) : r.metadata,
      tags: patch.tags !== undefined ? [...patch.tags] : r.tags,
      payload_type: r.payload_type,
      payload_checksum: payload.payload_checksum,
    };
    const next: AssemblyRecord = {
      ...r,
      ...base,
      ...payload,
      version: r.version + 1,
      checksum: await definitionChecksum(base),
      updated_at: nowIso,
    };
    // Another edit may have landed while this one awaited the disk: re-check.
    const e = this.#entries.get(guid);
    if (e !== before || e.deleted || e.record.version !== expectedVersion) {
      if (newPayload) await this.o.payloads.remove(newPayload);
      this.#checkVersion(this.#live(guid), expectedVersion);
      throw conflict("stale_version", `assembly ${guid} changed meanwhile; reload it and retry`);
    }
    // From the check above to here nothing awaits, so no other edit can interleave.
    e.record = next;
    e.search = searchText(next);
    this.#problems.delete(guid);
    this.#markDirty(e);
    this.#sorted = null;
    // A payload staged by an earlier unflushed edit is referenced by nothing now.
    if (newPayload && r.payload_guid !== e.persistedPayload) {
      await this.o.payloads.remove(r.payload_guid);
    }
    return copyRecord(next);
  }

  /** Stages a delete (the row goes at the next flush). */
  remove(guid: string, expectedVersion?: number): AssemblyRecord {
    const e = this.#live(guid);
    if (expectedVersion !== undefined) this.#checkVersion(e, expectedVersion);
    e.deleted = true;
    this.#markDirty(e);
    this.#sorted = null;
    this.#problems.delete(guid);
    return copyRecord(e.record);
  }

  #live(guid: string): Entry {
    const e = this.#entries.get(guid);
    if (!e || e.deleted) throw notFound(`no assembly ${guid}`);
    return e;
  }

  #checkVersion(e: Entry, expected: number): void {
    if (e.record.version !== expected) {
      throw conflict(
        "stale_version",
        `assembly ${e.record.assembly_guid} is at version ${e.record.version}, not ${expected}; reload it and retry`,
        { current_version: e.record.version, sent_version: expected },
      );
    }
  }

  #markDirty(e: Entry): void {
    if (!e.dirty) e.dirtySince = this.o.clock.now();
    e.dirty = true;
    e.gen++;
    // A fresh change is worth trying at the next flush even if older ones failed.
    e.nextAttemptAt = 0;
  }

  /**
   * Removes payload folders that no record references: not a row of the catalog table
   * (any instance's flushed change) and not an entry here (staged or persisted). They
   * are left by changes lost to a crash before their flush.
   */
  async sweepPayloads(graceMs: number): Promise<string[]> {
    const referenced = new Set<string>();
    for (const e of this.#entries.values()) {
      referenced.add(e.record.payload_guid);
      if (e.persistedPayload) referenced.add(e.persistedPayload);
    }
    const rows = await this.o.sql<{ payload_guid: string }[]>`
      select payload_guid::text from assemblies.assemblies`;
    for (const r of rows) referenced.add(r.payload_guid);
    // Only now list the folders: a payload written after the lists above is fresh, and
    // fresh folders are inside the grace period.
    return await this.o.payloads.sweep(referenced, graceMs, this.o.clock.now());
  }

  #payloadInUse(payloadGuid: string): boolean {
    for (const e of this.#entries.values()) {
      if (e.record.payload_guid === payloadGuid || e.persistedPayload === payloadGuid) return true;
    }
    return false;
  }

  // ---- flushing ------------------------------------------------------------------

  /**
   * Writes every due dirty entry in one transaction. `force` ignores retry backoff
   * (on demand and at shutdown). Calls queue behind each other, so a flush asked for
   * while one runs still writes everything staged before it was asked.
   */
  flush(options: { force?: boolean } = {}): Promise<FlushResult> {
    const run = this.#chain.then(() => this.#flushOnce(options.force ?? false));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #flushOnce(force: boolean): Promise<FlushResult> {
    const started = this.o.clock.now();
    const t0 = performance.now();
    const upserts: AssemblyRecord[] = [];
    const deletes: string[] = [];
    const taken = new Map<string, { gen: number; entry: Entry; payload: string }>();
    let deferred = 0;
    for (const [guid, e] of this.#entries) {
      if (!e.dirty) continue;
      if (!force && e.nextAttemptAt > started) {
        deferred++;
        continue;
      }
      taken.set(guid, { gen: e.gen, entry: e, payload: e.record.payload_guid });
      if (e.deleted) deletes.push(guid);
      else upserts.push(e.record);
    }
    const result: FlushResult = {
      persisted: 0,
      deleted: 0,
      failed: 0,
      superseded: 0,
      deferred,
      duration_ms: 0,
    };
    if (!taken.size) return result;
    this.#flushing = true;
    try {
      let outcome;
      try {
        outcome = await writeBatch(this.o.sql, upserts, deletes);
      } catch (err) {
        // The transaction as a whole failed (connection lost, database down).
        const msg = err instanceof Error ? err.message : String(err);
        outcome = {
          written: [],
          superseded: [],
          deleted: [],
          failed: new Map([...taken.keys()].map((g) => [g, msg])),
        };
      }
      const now = this.o.clock.now();
      const obsolete: string[] = [];
      for (const guid of outcome.written) {
        const t = taken.get(guid)!;
        const e = t.entry;
        if (e.persistedPayload && e.persistedPayload !== t.payload) {
          obsolete.push(e.persistedPayload);
        }
        e.persistedPayload = t.payload;
        e.lastPersisted = now;
        e.attempts = 0;
        e.lastError = null;
        if (e.gen === t.gen) {
          e.dirty = false;
          e.dirtySince = null;
        }
      }
      for (const guid of outcome.deleted) {
        const t = taken.get(guid)!;
        const e = t.entry;
        if (e.gen === t.gen && this.#entries.get(guid) === e) {
          this.#entries.delete(guid);
          if (e.persistedPayload) obsolete.push(e.persistedPayload);
          if (e.record.payload_guid !== e.persistedPayload) obsolete.push(e.record.payload_guid);
        }
      }
      if (outcome.superseded.length) {
        this.o.log.warn(
          `${outcome.superseded.length} assembly change(s) were superseded by a newer version from another instance; reloading them`,
        );
        for (const guid of outcome.superseded) {
          const e = taken.get(guid)!.entry;
          e.dirty = false;
          e.dirtySince = null;
        }
        await this.reload(outcome.superseded);
      }
      for (const [guid, msg] of outcome.failed) {
        const e = taken.get(guid)!.entry;
        e.attempts++;
        e.lastError = msg;
        e.nextAttemptAt = now + this.#backoff(e.attempts);
      }
      if (outcome.failed.size) {
        this.#lastFlushError = `${outcome.failed.size} entr${
          outcome.failed.size === 1 ? "y" : "ies"
        } refused: ${[...outcome.failed.values()][0]}`;
        this.o.log.warn(`assembly flush: ${this.#lastFlushError}; they stay queued and retry`);
      } else this.#lastFlushError = null;
      this.#lastFlushAt = now;
      this.#sorted = null;
      for (const p of obsolete) {
        await this.o.payloads.remove(p).catch((err) =>
          this.o.log.warn(`could not remove old payload ${p}: ${err}`)
        );
      }
      Object.assign(result, {
        persisted: outcome.written.length,
        deleted: outcome.deleted.length,
        failed: outcome.failed.size,
        superseded: outcome.superseded.length,
      });
      if (outcome.written.length || outcome.deleted.length) {
        await this.o.onPersisted?.(outcome.written, outcome.deleted);
      }
      return result;
    } finally {
      this.#flushing = false;
      result.duration_ms = Math.round((performance.now() - t0) * 10) / 10;
    }
  }

  #backoff(attempts: number): number {
    const max = this.o.maxBackoffMs ?? 30 * 60_000;
    return Math.min(max, this.o.flushIntervalMs * 2 ** (attempts - 1));
  }

  // ---- integrity -----------------------------------------------------------------

  /** Checks every payload file now; returns (and remembers) every problem. */
  async checkIntegrity(): Promise<IntegrityProblem[]> {
    const live = [...this.#entries.values()].filter((e) => !e.deleted);
    const found = new Map<string, IntegrityProblem>();
    let i = 0;
    const worker = async () => {
      while (i < live.length) {
        const r = live[i++]!.record;
        try {
          await this.o.payloads.read(r.payload_guid, r.payload_file_extension, {
            sha256: r.payload_checksum,
            size: r.payload_size_bytes,
          });
        } catch (err) {
          if (err instanceof PayloadError) found.set(r.assembly_guid, this.#problem(r, err));
          else throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    this.#problems = found;
    for (const p of found.values()) {
      this.o.log.warn(
        `assembly ${p.assembly_guid} (${p.display_name}, ${p.domain}): payload ${p.problem}: ${p.detail}`,
      );
    }
    return [...found.values()];
  }

  /** Problems found so far (at load, on reads, or by the last full check). */
  problems(): IntegrityProblem[] {
    return [...this.#problems.values()];
  }

  #problem(r: AssemblyRecord, err: PayloadError): IntegrityProblem {
    return {
      assembly_guid: r.assembly_guid,
      domain: r.domain,
      display_name: r.display_name,
      payload_guid: r.payload_guid,
      payload_file: `Payloads/${r.payload_guid}/${r.payload_file_name}`,
      problem: err.kind,
      detail: err.message,
      detected_at: new Date(this.o.clock.now()).toISOString(),
    };
  }

  #noteProblem(r: AssemblyRecord, err: PayloadError): void {
    const p = this.#problem(r, err);
    this.#problems.set(r.assembly_guid, p);
    this.o.log.warn(`assembly ${r.assembly_guid}: payload ${p.problem}: ${p.detail}`);
  }
}

/** The HTTP error for a payload that cannot be served (never a 500). */
export function payloadHttpError(r: AssemblyRecord, err: PayloadError): HttpError {
  return new HttpError(
    409,
    `payload_${err.kind}`,
    `the payload of assembly ${r.assembly_guid} is ${err.kind}: ${err.message}. ` +
      `Restore the file from backup, or re-save the assembly; GET /api/assemblies/integrity lists every problem.`,
    { assembly_guid: r.assembly_guid, payload_guid: r.payload_guid, problem: err.kind },
  );
}

function toItem(e: Entry, includePayloadGuid: boolean): ListItem {
  return recordItem(e.record, e.dirty, includePayloadGuid);
}

/** The list shape of a record (also the body of create and update answers). */
export function recordItem(
  r: AssemblyRecord,
  isDirty: boolean,
  includePayloadGuid: boolean,
): ListItem {
  const item: ListItem = {
    assembly_guid: r.assembly_guid,
    source: r.domain,
    domain: r.domain,
    display_name: r.display_name,
    summary: r.summary,
    category: r.category,
    assembly_kind: r.assembly_kind,
    assembly_type: r.assembly_type,
    version: r.version,
    tags: [...r.tags],
    payload_type: r.payload_type,
    payload_size_bytes: r.payload_size_bytes,
    is_dirty: isDirty,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
  if (includePayloadGuid) item.payload_guid = r.payload_guid;
  return item;
}

// The sort key doubles as the search haystack: name first, so sorting by it sorts by name.
function searchText(r: AssemblyRecord): string {
  return `${r.display_name}\u0000${r.summary}\u0000${r.category}\u0000${
    r.tags.join(" ")
  }\u0000${r.assembly_guid}`.toLowerCase();
}

/** The bytes of a payload input. */
export function payloadBytes(p: PayloadInput): Uint8Array {
  switch (p.kind) {
    case "text":
      return new TextEncoder().encode(p.text);
    case "json":
      return new TextEncoder().encode(JSON.stringify(p.value, null, 2));
    case "bytes":
      return p.bytes;
  }
}

function defaultType(kind: Kind): AssemblyType | null {
  if (kind === "workflow") return "workflow";
  if (kind === "ansible") return "ansible";
  return null;
}

function defaultCategory(kind: Kind): string {
  return kind === "workflow" ? "workflow" : kind === "ansible" ? "ansible" : "script";
}

/**
 * The assemblies service: the cache and its write queue, the payload store, import and
 * export, the official sync and cross-instance reloads put together. Routes check who
 * may do what and call this; other plugins (the scheduler) use it through
 * `assembliesService` from mod.ts.
 *
 * @module
 */
import { badRequest, conflict, HttpError } from "../../core/errors.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { Logger } from "../../core/log.ts";
import {
  type AssemblyCache,
  type AssemblyPatch,
  type NewAssembly,
  payloadBytes,
  type PayloadInput,
} from "./cache.ts";
import type { AssemblyRecord, AssemblyType, Domain, Kind, PayloadType } from "./model.ts";
import type { PayloadStore } from "./payloads.ts";
import {
  decodeBase64,
  decodePayload,
  encodeBase64,
  exportDocument,
  FileSchema,
  parseImportDocument,
  VariableSchema,
} from "./serialization.ts";
import { syncOfficial, type SyncSummary } from "./sync.ts";
import { z } from "zod";

/** Raw create/update fields as the API receives them (already shape-checked by zod). */
export interface AssemblyInput {
  assembly_guid?: string;
  domain: Domain;
  display_name: string;
  summary?: string;
  category?: string;
  assembly_kind: Kind;
  assembly_type?: AssemblyType | null;
  metadata?: Record<string, unknown>;
  tags?: string[];
  payload: string | Record<string, unknown>;
  payload_type?: PayloadType;
  payload_encoding?: "text" | "base64";
}

/** What an import document would become (nothing staged). */
export interface ImportPreview {
  /** The document's own GUID (importing it as is would update that assembly). */
  assembly_guid: string | null;
  /** The domain the document names, if any. */
  document_domain: string | null;
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: Kind;
  assembly_type: AssemblyType | null;
  metadata: Record<string, unknown>;
  tags: string[];
  /** Script text, a workflow object, or base64 (payload_encoding) for binaries. */
  payload: unknown;
  payload_encoding: "text" | "base64";
  payload_size_bytes: number;
  max_bytes: number;
}

/** Options for {@link AssembliesService}. */
export interface ServiceOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  cache: AssemblyCache;
  payloads: PayloadStore;
  catalogDir: string;
  maxPayloadBytes: number;
  /** Tells other instances what changed (after the official sync). */
  announce: (changed: string[], deleted: string[]) => Promise<void>;
}

const TYPES_BY_KIND: Record<Kind, readonly (AssemblyType | null)[]> = {
  script: ["powershell", "batch", "bash", "python", null],
  workflow: ["workflow", null],
  ansible: ["ansible", null],
};

const Metadata = z.looseObject({
  variables: z.array(VariableSchema).max(200).optional(),
  files: z.array(FileSchema).max(50).optional(),
  timeout_seconds: z.number().int().min(1).max(604_800).optional(),
});

/** The catalog as the rest of the engine sees it. */
export class AssembliesService {
  constructor(private readonly o: ServiceOptions) {}

  /** The cache (reads return copies). */
  get cache(): AssemblyCache {
    return this.o.cache;
  }

  /** A copy of one assembly or null. */
  get(guid: string): AssemblyRecord | null {
    return this.o.cache.get(guid);
  }

  /** One assembly with its verified payload (text, parsed workflow, or base64 bytes). */
  async detail(guid: string): Promise<{ record: AssemblyRecord; payload: unknown }> {
    const { record, bytes } = await this.o.cache.readPayload(guid);
    return { record, payload: decodePayload(record, bytes) };
  }

  /** Stages a new assembly. */
  create(input: AssemblyInput): Promise<AssemblyRecord> {
    const payload = this.#payloadInput(input.assembly_kind, input);
    return this.o.cache.create({
      assembly_guid: input.assembly_guid,
      domain: input.domain,
      display_name: input.display_name,
      summary: input.summary,
      category: input.category,
      assembly_kind: input.assembly_kind,
      assembly_type: this.#type(input.assembly_kind, input.assembly_type),
      metadata: this.#metadata(input.metadata),
      tags: input.tags,
      payload_type: input.payload_type,
      payload,
    });
  }

  /** Stages an update carrying the version the caller last saw. */
  update(
    guid: string,
    version: number,
    patch: Omit<AssemblyInput, "domain" | "assembly_kind" | "display_name" | "payload"> & {
      display_name?: string;
      payload?: string | Record<string, unknown>;
    },
  ): Promise<AssemblyRecord> {
    const current = this.o.cache.require(guid);
    const change: AssemblyPatch = {
      display_name: patch.display_name,
      summary: patch.summary,
      category: patch.category,
      metadata: patch.metadata !== undefined ? this.#metadata(patch.metadata) : undefined,
      tags: patch.tags,
    };
    if (patch.assembly_type !== undefined) {
      change.assembly_type = this.#type(current.assembly_kind, patch.assembly_type);
    }
    if (patch.payload !== undefined) {
      change.payload = this.#payloadInput(current.assembly_kind, {
        payload: patch.payload,
        payload_type: current.payload_type,
        payload_encoding: patch.payload_encoding,
      });
    }
    return this.o.cache.update(guid, change, version);
  }

  /** Stages a delete. */
  remove(guid: string, version?: number): AssemblyRecord {
    return this.o.cache.remove(guid, version);
  }

  /** Copies an assembly (and its payload) into another domain under a new GUID. */
  async clone(guid: string, target: Domain, newGuid?: string): Promise<AssemblyRecord> {
    const { record, bytes } = await this.o.cache.readPayload(guid);
    return await this.o.cache.create({
      assembly_guid: newGuid,
      domain: target,
      display_name: record.display_name,
      summary: record.summary,
      category: record.category,
      assembly_kind: record.assembly_kind,
      assembly_type: record.assembly_type,
      metadata: record.metadata,
      tags: record.tags,
      payload_type: record.payload_type,
      payload: { kind: "bytes", bytes },
    });
  }

  /**
   * Imports a legacy document into `domain`. A document whose GUID already exists in
   * that domain updates it (its `version` must be the current one when given); a GUID
   * taken in another domain is a 409.
   */
  async importDocument(
    doc: unknown,
    domain: Domain,
  ): Promise<{ record: AssemblyRecord; created: boolean }> {
    const parsed = parseImportDocument(doc, { maxPayloadBytes: this.o.maxPayloadBytes });
    this.#type(parsed.assembly_kind, parsed.assembly_type ?? null);
    const existing = parsed.assembly_guid ? this.o.cache.get(parsed.assembly_guid) : null;
    if (existing) {
      if (existing.domain !== domain) {
        throw conflict(
          "assembly_exists",
          `assembly ${existing.assembly_guid} already exists in ${existing.domain}; import into that domain, or drop assembly_guid from the document to import a copy`,
        );
      }
      if (existing.assembly_kind !== parsed.assembly_kind) {
        throw badRequest(
          "invalid_assembly_document",
          `assembly ${existing.assembly_guid} is a ${existing.assembly_kind}, the document a ${parsed.assembly_kind}`,
          [{ field: "assembly_kind", message: `must stay ${existing.assembly_kind}` }],
        );
      }
      const record = await this.o.cache.update(existing.assembly_guid, {
        display_name: parsed.display_name,
        summary: parsed.summary,
        category: parsed.category,
        assembly_type: parsed.assembly_type,
        metadata: parsed.metadata,
        tags: parsed.tags,
        payload: parsed.payload,
      }, parsed.version ?? existing.version);
      return { record, created: false };
    }
    const input: NewAssembly = { ...parsed, domain };
    delete (input as { documentDomain?: string }).documentDomain;
    return { record: await this.o.cache.create(input), created: true };
  }

  /**
   * Checks an import document against the same rules as {@link importDocument} (shape,
   * kind and type, variables, files, size) and answers what it would become, without
   * staging anything: the console fills its editor with it, and the operator saves.
   */
  previewImport(doc: unknown): ImportPreview {
    const parsed = parseImportDocument(doc, { maxPayloadBytes: this.o.maxPayloadBytes });
    const type = this.#type(parsed.assembly_kind, parsed.assembly_type ?? null);
    const p = parsed.payload;
    const size = payloadBytes(p).length;
    return {
      assembly_guid: parsed.assembly_guid ?? null,
      document_domain: parsed.documentDomain ?? null,
      display_name: parsed.display_name,
      summary: parsed.summary ?? "",
      category: parsed.category ?? (parsed.assembly_kind === "script" ? "script" : ""),
      assembly_kind: parsed.assembly_kind,
      assembly_type: type,
      metadata: parsed.metadata ?? {},
      tags: parsed.tags ?? [],
      payload: p.kind === "text" ? p.text : p.kind === "json" ? p.value : encodeBase64(p.bytes),
      payload_encoding: p.kind === "bytes" ? "base64" : "text",
      payload_size_bytes: size,
      max_bytes: this.o.maxPayloadBytes,
    };
  }

  /** The legacy export document of one assembly (byte-stable). */
  async exportDocument(guid: string): Promise<{ record: AssemblyRecord; body: string }> {
    const { record, bytes } = await this.o.cache.readPayload(guid);
    return { record, body: exportDocument(record, bytes) };
  }

  /** Persists everything staged now. */
  flush(): ReturnType<AssemblyCache["flush"]> {
    return this.o.cache.flush({ force: true });
  }

  /**
   * Rebuilds the official domain from the catalog folder: staged changes are written
   * first (so nothing staged is lost), then the domain is rebuilt and reloaded here and
   * on every other instance.
   */
  async syncOfficial(
    onProgress?: (done: number, total: number, path: string) => void,
  ): Promise<SyncSummary> {
    await this.o.cache.flush({ force: true });
    const summary = await syncOfficial({
      sql: this.o.sql,
      payloads: this.o.payloads,
      clock: this.o.clock,
      log: this.o.log,
      catalogDir: this.o.catalogDir,
      maxPayloadBytes: this.o.maxPayloadBytes,
      onProgress,
    });
    await this.o.cache.reloadDomain("official");
    const changed = [...summary.added, ...summary.changed];
    if (changed.length || summary.removed.length) {
      await this.o.announce(changed, summary.removed);
    }
    return summary;
  }

  #type(kind: Kind, type: AssemblyType | null | undefined): AssemblyType | null {
    const t = type ?? null;
    if (!TYPES_BY_KIND[kind].includes(t)) {
      throw badRequest(
        "validation_failed",
        `a ${kind} cannot have assembly_type ${t}`,
        [{
          field: "assembly_type",
          message: `one of ${TYPES_BY_KIND[kind].filter(Boolean).join(", ")} for a ${kind}`,
        }],
      );
    }
    return t;
  }

  #metadata(m: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
    if (m === undefined) return undefined;
    const r = Metadata.safeParse(m);
    if (!r.success) {
      const details = r.error.issues.map((i) => ({
        field: ["metadata", ...i.path.map(String)].join("."),
        message: i.message,
      }));
      throw badRequest(
        "validation_failed",
        `invalid metadata: ${details.map((d) => `${d.field}: ${d.message}`).join("; ")}`,
        details,
      );
    }
    return r.data as Record<string, unknown>;
  }

  #payloadInput(
    kind: Kind,
    i: Pick<AssemblyInput, "payload" | "payload_type" | "payload_encoding">,
  ): PayloadInput {
    const payloadType = i.payload_type ?? (kind === "workflow" ? "workflow" : "script");
    const bad = (message: string) =>
      badRequest("validation_failed", `payload: ${message}`, [{ field: "payload", message }]);
    let input: PayloadInput;
    if (payloadType === "binary" || i.payload_encoding === "base64") {
      if (typeof i.payload !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(i.payload)) {
        throw bad("base64 text");
      }
      try {
        input = { kind: "bytes", bytes: decodeBase64(i.payload) };
      } catch {
        throw bad("base64 text");
      }
    } else if (payloadType === "workflow") {
      if (typeof i.payload !== "object") throw bad("a workflow payload is a JSON object");
      input = { kind: "json", value: i.payload };
    } else {
      if (typeof i.payload !== "string") throw bad("script text");
      input = { kind: "text", text: i.payload };
    }
    const size = input.kind === "text"
      ? new TextEncoder().encode(input.text).length
      : input.kind === "bytes"
      ? input.bytes.length
      : JSON.stringify(input.value).length;
    if (size > this.o.maxPayloadBytes) {
      throw new HttpError(
        413,
        "payload_too_large",
        `the payload holds ${size} bytes; the limit is ${this.o.maxPayloadBytes} (BOREALIS_ASSEMBLIES_MAX_BYTES)`,
        { limit: this.o.maxPayloadBytes },
      );
    }
    return input;
  }
}

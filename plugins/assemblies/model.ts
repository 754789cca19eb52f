/**
 * The assembly record as the cache, the store and the routes share it, plus the
 * small pure helpers (hashing, deterministic GUIDs, payload file naming) every other
 * module of the plugin leans on.
 *
 * @module
 */

/** The three catalog domains. */
export const DOMAINS = ["official", "community", "user_created"] as const;
/** A catalog domain. */
export type Domain = typeof DOMAINS[number];

/** What an assembly is. */
export const KINDS = ["script", "workflow", "ansible"] as const;
/** An assembly kind. */
export type Kind = typeof KINDS[number];

/** The interpreter / engine an assembly runs under. */
export const TYPES = ["powershell", "batch", "bash", "python", "workflow", "ansible"] as const;
/** An assembly type. */
export type AssemblyType = typeof TYPES[number];

/** How the payload file is encoded. */
export const PAYLOAD_TYPES = ["script", "workflow", "binary", "unknown"] as const;
/** A payload type. */
export type PayloadType = typeof PAYLOAD_TYPES[number];

/** One assembly (metadata row; the payload content lives in the payload store). */
export interface AssemblyRecord {
  assembly_guid: string;
  domain: Domain;
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: Kind;
  assembly_type: AssemblyType | null;
  /** Edit counter: every accepted change increments it; edits must carry the current one. */
  version: number;
  metadata: Record<string, unknown>;
  tags: string[];
  /** SHA-256 of the canonical definition (fields + payload checksum); detects change. */
  checksum: string;
  payload_guid: string;
  payload_type: PayloadType;
  payload_file_name: string;
  payload_file_extension: string;
  payload_size_bytes: number;
  payload_checksum: string;
  payload_created_at: string;
  payload_updated_at: string;
  source_path: string | null;
  created_at: string;
  updated_at: string;
}

/** Per-GUID queue state, as upstream's `describe()` reports it. */
export interface EntryState {
  domain: Domain;
  is_dirty: boolean;
  dirty_since: string | null;
  last_persisted: string | null;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += HEX[b];
  return s;
}

/** SHA-256 of bytes or UTF-8 text, as lower-case hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource)));
}

/**
 * A name-based UUID (RFC 9562 version 5: SHA-1 over a namespace and a name). The
 * official sync derives assembly and payload GUIDs from catalog paths with it, so the
 * same file always yields the same GUID on every machine.
 */
export async function uuidV5(name: string, namespace = BOREALIS_NAMESPACE): Promise<string> {
  const ns = namespace.replaceAll("-", "");
  const nsBytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) nsBytes[i] = parseInt(ns.slice(i * 2, i * 2 + 2), 16);
  const nameBytes = new TextEncoder().encode(name);
  const input = new Uint8Array(16 + nameBytes.length);
  input.set(nsBytes);
  input.set(nameBytes, 16);
  const h = new Uint8Array(await crypto.subtle.digest("SHA-1", input)).slice(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = toHex(h);
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** Namespace for Borealis name-based GUIDs (a fixed random UUID). */
export const BOREALIS_NAMESPACE = "5b1f6a0e-2c1d-4c53-9a5e-7d0b8a3e41c2";

/** The payload file extension for an assembly. */
export function payloadExtension(kind: Kind, type: AssemblyType | null, payloadType: PayloadType) {
  if (payloadType === "binary") return "bin";
  if (payloadType === "workflow" || kind === "workflow") return "json";
  switch (type) {
    case "powershell":
      return "ps1";
    case "bash":
      return "sh";
    case "batch":
      return "bat";
    case "python":
      return "py";
    case "ansible":
      return "yml";
    default:
      return kind === "ansible" ? "yml" : "txt";
  }
}

/** The payload type that goes with a kind. */
export function payloadTypeFor(kind: Kind): PayloadType {
  return kind === "workflow" ? "workflow" : "script";
}

/** Canonical JSON: object keys sorted, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) {
      out[k] = sortKeys((value as Record<string, unknown>)[k]);
    }
    return out;
  }
  return value;
}

/** The definition checksum: what makes two assemblies "the same" for the sync. */
export function definitionChecksum(
  r: Pick<
    AssemblyRecord,
    | "display_name"
    | "summary"
    | "category"
    | "assembly_kind"
    | "assembly_type"
    | "metadata"
    | "tags"
    | "payload_type"
    | "payload_checksum"
  >,
): Promise<string> {
  return sha256Hex(canonicalJson({
    display_name: r.display_name,
    summary: r.summary,
    category: r.category,
    assembly_kind: r.assembly_kind,
    assembly_type: r.assembly_type,
    metadata: r.metadata,
    tags: r.tags,
    payload_type: r.payload_type,
    payload_checksum: r.payload_checksum,
  }));
}

/** A deep copy of a record (cache reads never hand out their own objects). */
export function copyRecord(r: AssemblyRecord): AssemblyRecord {
  return {
    ...r,
    metadata: structuredClone(r.metadata),
    tags: [...r.tags],
  };
}

/**
 * Import and export in upstream's legacy JSON format. Export writes one document per
 * assembly (`assembly_guid, domain, assembly_kind, …, payload, …`) with a fixed key
 * order and metadata keys sorted, so the same assembly always exports to the same
 * bytes. Import takes that document back, or an authoring document (a script with
 * `script` / `content` / `script_lines`, plain or base64, `variables`, `files`,
 * `timeout_seconds`; a workflow with `nodes` and `edges`; an Ansible playbook), infers
 * the kind as upstream does, and lists every invalid field.
 *
 * @module
 */
import { z } from "zod";
import { badRequest } from "../../core/errors.ts";
import type { NewAssembly, PayloadInput } from "./cache.ts";
import {
  type AssemblyRecord,
  type AssemblyType,
  canonicalJson,
  DOMAINS,
  KINDS,
  PAYLOAD_TYPES,
  TYPES,
} from "./model.ts";

/** A script variable as authoring documents describe it. */
export const VariableSchema = z.looseObject({
  name: z.string().regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,63}$/,
    "letters, digits and _, not first a digit",
  ),
  label: z.string().max(200).optional(),
  type: z.enum(["string", "number", "boolean", "credential"]).optional(),
  default: z.union([z.string().max(4000), z.number(), z.boolean(), z.null()]).optional(),
  required: z.boolean().optional(),
  description: z.string().max(2000).optional(),
});

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A file attached to a script (sent to the agent beside it). */
export const FileSchema = z.looseObject({
  file_name: z.string().min(1).max(255).refine(
    (n) => n !== "." && n !== ".." && ![...n].some((ch) => ch < " " || '/\\:*?"<>|'.includes(ch)),
    "a plain file name (no folders or reserved characters)",
  ),
  size: z.number().int().min(0).optional(),
  mime_type: z.string().max(200).optional(),
  data: z.string().regex(BASE64, "base64 data"),
}).superRefine((f, ctx) => {
  if (f.size !== undefined && base64Length(f.data) !== f.size) {
    ctx.addIssue({
      code: "custom",
      path: ["size"],
      message: `says ${f.size} bytes but data holds ${base64Length(f.data)}`,
    });
  }
});

const Iso = z.iso.datetime({ offset: true });

const DocumentSchema = z.looseObject({
  assembly_guid: z.uuid().optional(),
  domain: z.enum(DOMAINS).optional(),
  assembly_kind: z.enum(KINDS).optional(),
  kind: z.enum(KINDS).optional(),
  assembly_type: z.enum(TYPES).nullable().optional(),
  type: z.enum(TYPES).optional(),
  display_name: z.string().trim().min(1).max(200).optional(),
  name: z.string().trim().min(1).max(200).optional(),
  tab_name: z.string().trim().min(1).max(200).optional(),
  summary: z.string().max(4000).optional(),
  description: z.string().max(4000).optional(),
  category: z.string().max(100).optional(),
  version: z.number().int().min(1).max(2_000_000_000).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  tags: z.array(z.string().trim().min(1).max(64)).max(50).optional(),
  payload: z.unknown().optional(),
  payload_type: z.enum(PAYLOAD_TYPES).optional(),
  payload_encoding: z.enum(["text", "base64"]).optional(),
  payload_guid: z.uuid().optional(),
  payload_checksum: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  created_at: Iso.optional(),
  updated_at: Iso.optional(),
  script: z.string().optional(),
  content: z.string().optional(),
  script_lines: z.array(z.string()).optional(),
  script_encoding: z.enum(["plain", "text", "utf-8", "utf8", "base64"]).optional(),
  timeout_seconds: z.number().int().min(1).max(604_800).optional(),
  variables: z.array(VariableSchema).max(200).optional(),
  files: z.array(FileSchema).max(50).optional(),
  sites: z.unknown().optional(),
  nodes: z.array(z.unknown()).optional(),
  edges: z.array(z.unknown()).optional(),
  playbook: z.unknown().optional(),
  tasks: z.unknown().optional(),
  roles: z.unknown().optional(),
});

const MetadataSchema = z.looseObject({
  variables: z.array(VariableSchema).max(200).optional(),
  files: z.array(FileSchema).max(50).optional(),
  timeout_seconds: z.number().int().min(1).max(604_800).optional(),
});

/** One invalid field of an import document. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** Default timeout for scripts, as upstream. */
export const DEFAULT_TIMEOUT_SECONDS = 3600;

/**
 * Parses an import document into a new assembly (without domain). Throws 400
 * `invalid_assembly_document` listing every invalid field.
 */
export function parseImportDocument(
  input: unknown,
  options: { maxPayloadBytes: number },
): Omit<NewAssembly, "domain"> & { documentDomain?: string } {
  const problems: FieldProblem[] = [];
  const parsed = DocumentSchema.safeParse(input);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      problems.push({ field: i.path.map(String).join(".") || "(root)", message: i.message });
    }
    throw invalid(problems);
  }
  const d = parsed.data;
  const result = "payload" in d && d.payload !== undefined
    ? fromExportShape(d, problems)
    : fromAuthoringShape(d, problems);
  if (result) {
    const size = payloadSize(result.payload) + attachedBytes(result.metadata);
    if (size > options.maxPayloadBytes) {
      problems.push({
        field: "payload",
        message: `payload and files hold ${size} bytes; the limit is ${options.maxPayloadBytes}`,
      });
    }
  }
  if (problems.length || !result) throw invalid(problems);
  return result;
}

type Doc = z.infer<typeof DocumentSchema>;

function fromExportShape(d: Doc, problems: FieldProblem[]) {
  const kind = d.assembly_kind ?? d.kind ?? inferKind(d);
  const name = d.display_name ?? d.name ?? d.tab_name;
  if (!kind) {
    problems.push({ field: "assembly_kind", message: "required (script, workflow or ansible)" });
  }
  if (!name) problems.push({ field: "display_name", message: "required" });
  const metadata = checkMetadata(d.metadata ?? {}, "metadata", problems);
  const payloadType = d.payload_type ?? (kind === "workflow" ? "workflow" : "script");
  let payload: PayloadInput | null = null;
  if (payloadType === "binary" || d.payload_encoding === "base64") {
    if (typeof d.payload !== "string" || !BASE64.test(d.payload)) {
      problems.push({ field: "payload", message: "base64 text for a binary payload" });
    } else payload = { kind: "bytes", bytes: decodeBase64(d.payload) };
  } else if (payloadType === "workflow") {
    if (!d.payload || typeof d.payload !== "object" || Array.isArray(d.payload)) {
      problems.push({ field: "payload", message: "a workflow payload is a JSON object" });
    } else payload = { kind: "json", value: d.payload };
  } else if (typeof d.payload !== "string") {
    problems.push({ field: "payload", message: "script text" });
  } else payload = { kind: "text", text: d.payload };
  if (!kind || !name || !payload || !metadata) return null;
  return {
    assembly_guid: d.assembly_guid,
    documentDomain: d.domain,
    display_name: name,
    summary: d.summary ?? d.description ?? "",
    category: d.category,
    assembly_kind: kind,
    assembly_type: (d.assembly_type ?? d.type ?? null) as AssemblyType | null,
    metadata,
    tags: d.tags ?? [],
    payload_type: payloadType,
    payload,
    version: d.version,
    created_at: d.created_at,
    updated_at: d.updated_at,
    payload_guid: d.payload_guid,
  };
}

function fromAuthoringShape(d: Doc, problems: FieldProblem[]) {
  const kind = d.assembly_kind ?? d.kind ?? inferKind(d);
  if (!kind) {
    problems.push({
      field: "(root)",
      message:
        "cannot tell the kind: give assembly_kind, or script/content/script_lines (script), nodes and edges (workflow), or playbook/tasks/roles (ansible)",
    });
    return null;
  }
  const name = d.name ?? d.display_name ?? d.tab_name;
  if (!name) problems.push({ field: "name", message: "required" });
  const metadata: Record<string, unknown> = { ...(d.metadata ?? {}) };
  if (d.variables !== undefined) metadata.variables = d.variables;
  if (d.files !== undefined) metadata.files = d.files;
  if (d.sites !== undefined) metadata.sites = d.sites;
  let payload: PayloadInput | null = null;
  let type: AssemblyType | null = d.type ?? d.assembly_type ?? null;
  if (kind === "script") {
    metadata.timeout_seconds = d.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS;
    type ??= "powershell";
    const text = scriptText(d, problems);
    if (text !== null) payload = { kind: "text", text };
  } else if (kind === "workflow") {
    type = "workflow";
    if (!d.nodes) problems.push({ field: "nodes", message: "a workflow needs nodes" });
    if (!d.edges) problems.push({ field: "edges", message: "a workflow needs edges" });
    if (d.nodes && d.edges) {
      payload = {
        kind: "json",
        value: { tab_name: d.tab_name ?? name ?? "", nodes: d.nodes, edges: d.edges },
      };
    }
  } else {
    type = "ansible";
    if (d.timeout_seconds !== undefined) metadata.timeout_seconds = d.timeout_seconds;
    if (typeof d.playbook === "string") payload = { kind: "text", text: d.playbook };
    else if (d.playbook !== undefined || d.tasks !== undefined || d.roles !== undefined) {
      // JSON is valid YAML, so a structured playbook is stored as its JSON text.
      const value = d.playbook ?? { tasks: d.tasks, roles: d.roles };
      payload = { kind: "text", text: JSON.stringify(value, null, 2) };
    } else problems.push({ field: "playbook", message: "an Ansible document needs a playbook" });
  }
  const checked = checkMetadata(metadata, "", problems);
  if (!name || !payload || !checked) return null;
  return {
    assembly_guid: d.assembly_guid,
    documentDomain: d.domain,
    display_name: name,
    summary: d.description ?? d.summary ?? "",
    category: d.category,
    assembly_kind: kind,
    assembly_type: type,
    metadata: checked,
    tags: d.tags ?? [],
    payload,
  };
}

function inferKind(d: Doc): AssemblyRecord["assembly_kind"] | undefined {
  if (d.nodes !== undefined && d.edges !== undefined) return "workflow";
  if (d.script !== undefined || d.content !== undefined || d.script_lines !== undefined) {
    return "script";
  }
  if (d.playbook !== undefined || d.tasks !== undefined || d.roles !== undefined) return "ansible";
  if (d.payload !== undefined && d.payload_type === "workflow") return "workflow";
  return undefined;
}

function checkMetadata(
  metadata: Record<string, unknown>,
  prefix: string,
  problems: FieldProblem[],
): Record<string, unknown> | null {
  const r = MetadataSchema.safeParse(metadata);
  if (!r.success) {
    for (const i of r.error.issues) {
      problems.push({
        field: [prefix, ...i.path.map(String)].filter(Boolean).join("."),
        message: i.message,
      });
    }
    return null;
  }
  return r.data as Record<string, unknown>;
}

function scriptText(d: Doc, problems: FieldProblem[]): string | null {
  const field = d.script !== undefined
    ? "script"
    : d.content !== undefined
    ? "content"
    : "script_lines";
  const raw = d.script ?? d.content ?? (d.script_lines ? d.script_lines.join("\n") : undefined);
  if (raw === undefined) {
    problems.push({ field: "script", message: "a script needs script, content or script_lines" });
    return null;
  }
  const enc = d.script_encoding;
  if (enc === "base64" || (enc === undefined && looksLikeBase64Text(raw))) {
    const cleaned = raw.replace(/\s+/g, "");
    if (!BASE64.test(cleaned)) {
      problems.push({ field, message: "script_encoding is base64 but the text is not base64" });
      return null;
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(decodeBase64(cleaned));
    } catch {
      problems.push({ field, message: "base64 script does not decode to UTF-8 text" });
      return null;
    }
  }
  return raw;
}

/**
 * Upstream auto-detects base64 scripts. Only text with no whitespace, valid base64
 * framing and a UTF-8 decoding made of printable characters counts, so ordinary
 * one-word scripts stay plain.
 */
function looksLikeBase64Text(raw: string): boolean {
  if (raw.length < 16 || raw.length % 4 !== 0 || !BASE64.test(raw)) return false;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(decodeBase64(raw));
    return /^[\t\n\r\x20-\x7e\u00a0-\uffff]*$/.test(text) && /\s/.test(text);
  } catch {
    return false;
  }
}

function payloadSize(p: PayloadInput): number {
  if (p.kind === "text") return new TextEncoder().encode(p.text).length;
  if (p.kind === "bytes") return p.bytes.length;
  return new TextEncoder().encode(JSON.stringify(p.value)).length;
}

function attachedBytes(metadata: Record<string, unknown> | undefined): number {
  const files = (metadata?.files ?? []) as Array<{ data?: string }>;
  return files.reduce((n, f) => n + base64Length(f.data ?? ""), 0);
}

function base64Length(b64: string): number {
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - pad;
}

function invalid(problems: FieldProblem[]) {
  return badRequest(
    "invalid_assembly_document",
    `invalid assembly document: ${problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`,
    problems,
  );
}

/** Decodes base64 into bytes. */
export function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Encodes bytes as base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** The payload as a document carries it: text, parsed JSON, or base64 for binaries. */
export function decodePayload(r: AssemblyRecord, bytes: Uint8Array): unknown {
  if (r.payload_type === "binary") return encodeBase64(bytes);
  const text = new TextDecoder().decode(bytes);
  if (r.payload_type === "workflow") {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * The legacy export document. Key order is fixed and metadata keys are sorted (the
 * database's jsonb does not keep key order), so exports are byte-for-byte stable.
 */
export function exportDocument(r: AssemblyRecord, bytes: Uint8Array): string {
  const doc: Record<string, unknown> = {
    assembly_guid: r.assembly_guid,
    domain: r.domain,
    assembly_kind: r.assembly_kind,
    assembly_type: r.assembly_type,
    version: r.version,
    display_name: r.display_name,
    summary: r.summary,
    category: r.category,
    metadata: JSON.parse(canonicalJson(r.metadata)),
    tags: r.tags,
    payload: decodePayload(r, bytes),
    payload_type: r.payload_type,
  };
  if (r.payload_type === "binary") doc.payload_encoding = "base64";
  doc.payload_guid = r.payload_guid;
  doc.payload_checksum = r.payload_checksum;
  doc.created_at = r.created_at;
  doc.updated_at = r.updated_at;
  return JSON.stringify(doc, null, 2) + "\n";
}

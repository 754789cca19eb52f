/**
 * The assembly editor's form: built from a stored assembly or from an import preview,
 * checked like the engine checks it (names of variables, timeout, size), and turned
 * into the bodies of `POST /api/assemblies` and `PUT /api/assemblies/{guid}`. Metadata
 * the editor does not show (sites, anything upstream added) is carried through as is.
 *
 * @module
 */
import type {
  AssemblyDetail,
  AssemblyDomain,
  AssemblyFile,
  AssemblyType,
  VariableDef,
} from "../api/types.ts";

/** A variable row as the editor holds it (defaults as text). */
export interface VariableRow {
  name: string;
  label: string;
  type: "string" | "number" | "boolean" | "credential";
  default: string;
  required: boolean;
  description: string;
}

/** The editor's state. */
export interface AssemblyForm {
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: "script" | "workflow" | "ansible";
  assembly_type: AssemblyType | null;
  timeout_seconds: string;
  tags: string;
  /** Script text, or the workflow's JSON text. */
  payload: string;
  /** True for binary payloads, which the editor shows but does not change. */
  binary: boolean;
  variables: VariableRow[];
  files: AssemblyFile[];
  domain: AssemblyDomain;
  /** Metadata keys the form does not edit, kept as they were. */
  otherMetadata: Record<string, unknown>;
}

/** What `POST /api/assemblies/import/preview` answers. */
export interface ImportPreview {
  assembly_guid: string | null;
  document_domain: string | null;
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: "script" | "workflow" | "ansible";
  assembly_type: AssemblyType | null;
  metadata: Record<string, unknown>;
  tags: string[];
  payload: unknown;
  payload_encoding: "text" | "base64";
  payload_size_bytes: number;
  max_bytes: number;
}

/** Script types an operator picks from, with their names. */
export const SCRIPT_TYPES: Array<[AssemblyType, string]> = [
  ["powershell", "PowerShell"],
  ["bash", "Bash"],
  ["batch", "Batch"],
  ["python", "Python"],
];

/** Display name of a type. */
export function typeLabel(t: string | null | undefined): string {
  if (t === "workflow") return "Workflow";
  if (t === "ansible") return "Ansible playbook";
  return SCRIPT_TYPES.find(([k]) => k === t)?.[1] ?? (t ?? "—");
}

/** Where a script type runs. */
export function osOf(t: string | null | undefined): string {
  return t === "powershell" || t === "batch"
    ? "Windows"
    : t === "bash"
    ? "Linux and macOS"
    : t === "python"
    ? "Any"
    : "—";
}

const KNOWN_METADATA = new Set(["variables", "files", "timeout_seconds"]);

function rowsOf(vars: unknown): VariableRow[] {
  if (!Array.isArray(vars)) return [];
  return (vars as VariableDef[]).map((v) => ({
    name: String(v?.name ?? ""),
    label: typeof v?.label === "string" ? v.label : "",
    type: v?.type === "number" || v?.type === "boolean" || v?.type === "credential"
      ? v.type
      : "string",
    default: v?.default === undefined || v?.default === null ? "" : String(v.default),
    required: v?.required === true,
    description: typeof v?.description === "string" ? v.description : "",
  }));
}

function payloadText(payload: unknown, kind: string): string {
  if (typeof payload === "string") return payload;
  if (payload && typeof payload === "object") return JSON.stringify(payload, null, 2);
  return kind === "workflow" ? "{}" : "";
}

function fromParts(
  p: {
    display_name: string;
    summary: string;
    category: string;
    assembly_kind: AssemblyForm["assembly_kind"];
    assembly_type: AssemblyType | null;
    metadata: Record<string, unknown>;
    tags: string[];
    payload: unknown;
    binary: boolean;
  },
  domain: AssemblyDomain,
): AssemblyForm {
  const other: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (!KNOWN_METADATA.has(k)) other[k] = v;
  }
  const timeout = p.metadata?.timeout_seconds;
  return {
    display_name: p.display_name,
    summary: p.summary ?? "",
    category: p.category ?? "",
    assembly_kind: p.assembly_kind,
    assembly_type: p.assembly_type,
    timeout_seconds: typeof timeout === "number" ? String(timeout) : "",
    tags: (p.tags ?? []).join(", "),
    payload: payloadText(p.payload, p.assembly_kind),
    binary: p.binary,
    variables: rowsOf(p.metadata?.variables),
    files: Array.isArray(p.metadata?.files) ? (p.metadata.files as AssemblyFile[]) : [],
    domain,
    otherMetadata: other,
  };
}

/** The form of a stored assembly. */
export function formFromDetail(d: AssemblyDetail): AssemblyForm {
  return fromParts({
    ...d,
    binary: d.payload_type === "binary",
  }, d.domain);
}

/** The form of an imported document: a new assembly, saved to user_created by default. */
export function formFromPreview(p: ImportPreview): AssemblyForm {
  return fromParts({ ...p, binary: p.payload_encoding === "base64" }, "user_created");
}

/** A blank script. */
export function emptyForm(): AssemblyForm {
  return {
    display_name: "",
    summary: "",
    category: "script",
    assembly_kind: "script",
    assembly_type: "powershell",
    timeout_seconds: "3600",
    tags: "",
    payload: "",
    binary: false,
    variables: [],
    files: [],
    domain: "user_created",
    otherMetadata: {},
  };
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Bytes a base64 string decodes to. */
export function base64Size(b64: string): number {
  const clean = b64.replace(/\s+/g, "");
  const pad = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  return Math.floor(clean.length / 4) * 3 - pad;
}

/** Payload plus attached files, in bytes (what the engine's size limit counts). */
export function formSize(f: AssemblyForm): number {
  const payload = f.binary ? base64Size(f.payload) : new TextEncoder().encode(f.payload).length;
  return payload + f.files.reduce((n, file) => n + base64Size(file.data ?? ""), 0);
}

/** Problems by field (`display_name`, `timeout_seconds`, `variables.0.name`, `payload`, …). */
export function validateForm(f: AssemblyForm, maxBytes?: number): Record<string, string> {
  const e: Record<string, string> = {};
  if (!f.display_name.trim()) e.display_name = "Give it a name";
  else if (f.display_name.trim().length > 200) e.display_name = "At most 200 characters";
  if (f.summary.length > 4000) e.summary = "At most 4000 characters";
  if (f.timeout_seconds.trim()) {
    const n = Number(f.timeout_seconds);
    if (!Number.isInteger(n) || n < 1 || n > 604_800) {
      e.timeout_seconds = "Whole seconds from 1 to 604800 (7 days)";
    }
  }
  const seen = new Set<string>();
  f.variables.forEach((v, i) => {
    if (!VAR_NAME.test(v.name)) {
      e[`variables.${i}.name`] = "Letters, digits and _, not first a digit";
    } else if (seen.has(v.name.toLowerCase())) {
      e[`variables.${i}.name`] = "Used twice";
    }
    seen.add(v.name.toLowerCase());
    if (v.type === "number" && v.default.trim() && !Number.isFinite(Number(v.default))) {
      e[`variables.${i}.default`] = "A number";
    }
    if (v.type === "boolean" && v.default && !["true", "false"].includes(v.default)) {
      e[`variables.${i}.default`] = "true or false";
    }
  });
  if (f.assembly_kind === "workflow" && !f.binary) {
    try {
      const v = JSON.parse(f.payload);
      if (!v || typeof v !== "object" || Array.isArray(v)) e.payload = "A JSON object";
    } catch {
      e.payload = "Not valid JSON";
    }
  }
  if (f.tags.split(",").some((t) => t.trim().length > 64)) {
    e.tags = "Each tag at most 64 characters";
  }
  if (maxBytes && formSize(f) > maxBytes) {
    e.payload = `Script and files hold ${formSize(f)} bytes; the engine takes at most ${maxBytes}`;
  }
  return e;
}

function variableDefs(rows: VariableRow[]): VariableDef[] {
  return rows.map((v) => {
    const out: VariableDef = { name: v.name.trim(), type: v.type, required: v.required };
    if (v.label.trim()) out.label = v.label.trim();
    if (v.description.trim()) out.description = v.description.trim();
    if (v.default !== "") {
      out.default = v.type === "number"
        ? Number(v.default)
        : v.type === "boolean"
        ? v.default === "true"
        : v.default;
    }
    return out;
  });
}

function metadataOf(f: AssemblyForm): Record<string, unknown> {
  const m: Record<string, unknown> = { ...f.otherMetadata };
  if (f.variables.length) m.variables = variableDefs(f.variables);
  if (f.files.length) m.files = f.files;
  if (f.timeout_seconds.trim()) m.timeout_seconds = Number(f.timeout_seconds);
  return m;
}

function tagsOf(f: AssemblyForm): string[] {
  return [...new Set(f.tags.split(",").map((t) => t.trim()).filter(Boolean))];
}

function payloadOf(f: AssemblyForm): string | Record<string, unknown> {
  return f.assembly_kind === "workflow" && !f.binary ? JSON.parse(f.payload) : f.payload;
}

/** The body of `POST /api/assemblies`. */
export function toCreateBody(f: AssemblyForm): Record<string, unknown> {
  return {
    domain: f.domain,
    display_name: f.display_name.trim(),
    summary: f.summary,
    category: f.category.trim() || undefined,
    assembly_kind: f.assembly_kind,
    assembly_type: f.assembly_type,
    metadata: metadataOf(f),
    tags: tagsOf(f),
    payload: payloadOf(f),
    ...(f.binary ? { payload_encoding: "base64", payload_type: "binary" } : {}),
  };
}

/** The body of `PUT /api/assemblies/{guid}` (with the version last read). */
export function toUpdateBody(f: AssemblyForm, version: number): Record<string, unknown> {
  return {
    version,
    display_name: f.display_name.trim(),
    summary: f.summary,
    category: f.category.trim(),
    assembly_type: f.assembly_type,
    metadata: metadataOf(f),
    tags: tagsOf(f),
    payload: payloadOf(f),
    ...(f.binary ? { payload_encoding: "base64" } : {}),
  };
}

/** An attached file from a browser File (read as base64). */
export async function fileToAttachment(file: File): Promise<AssemblyFile> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return {
    file_name: file.name,
    size: bytes.length,
    mime_type: file.type || "application/octet-stream",
    data: btoa(bin),
  };
}

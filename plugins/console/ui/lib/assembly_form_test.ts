import assert from "node:assert/strict";
import type { AssemblyDetail } from "../api/types.ts";
import {
  base64Size,
  emptyForm,
  formFromDetail,
  formFromPreview,
  formSize,
  toCreateBody,
  toUpdateBody,
  validateForm,
} from "./assembly_form.ts";

const detail = {
  assembly_guid: "0f0e6a36-0a43-4a58-8a2b-6f1b3d7d9c10",
  source: "official",
  domain: "official",
  display_name: "Clean temp",
  summary: "Removes old files",
  category: "script",
  assembly_kind: "script",
  assembly_type: "powershell",
  version: 3,
  tags: ["cleanup", "disk"],
  payload_type: "script",
  payload_size_bytes: 20,
  is_dirty: false,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  metadata: {
    timeout_seconds: 600,
    variables: [{ name: "Days", type: "number", default: 7, required: true, label: "Days" }],
    files: [{ file_name: "a.txt", size: 3, data: "YWJj" }],
    sites: { mode: "all" },
  },
  payload: "Remove-Item $env:Days",
  payload_checksum: "",
  checksum: "",
  state: {
    domain: "official",
    is_dirty: false,
    dirty_since: null,
    last_persisted: null,
    attempts: 0,
    last_error: null,
  },
} as unknown as AssemblyDetail;

Deno.test("assembly form: a stored assembly round-trips into the update body", () => {
  const f = formFromDetail(detail);
  assert.equal(f.timeout_seconds, "600");
  assert.equal(f.tags, "cleanup, disk");
  assert.deepEqual(f.variables[0], {
    name: "Days",
    label: "Days",
    type: "number",
    default: "7",
    required: true,
    description: "",
  });
  assert.deepEqual(validateForm(f), {});
  const body = toUpdateBody(f, detail.version);
  assert.equal(body.version, 3);
  assert.deepEqual(body.metadata, {
    sites: { mode: "all" },
    variables: [{ name: "Days", type: "number", required: true, label: "Days", default: 7 }],
    files: [{ file_name: "a.txt", size: 3, data: "YWJj" }],
    timeout_seconds: 600,
  });
  assert.deepEqual(body.tags, ["cleanup", "disk"]);
  assert.equal(body.payload, "Remove-Item $env:Days");
});

Deno.test("assembly form: an import becomes a new user_created assembly", () => {
  const f = formFromPreview({
    assembly_guid: detail.assembly_guid,
    document_domain: "official",
    display_name: "Clean temp",
    summary: "",
    category: "script",
    assembly_kind: "script",
    assembly_type: "bash",
    metadata: { timeout_seconds: 60 },
    tags: [],
    payload: "echo hi",
    payload_encoding: "text",
    payload_size_bytes: 7,
    max_bytes: 1024,
  });
  assert.equal(f.domain, "user_created");
  const body = toCreateBody(f);
  assert.equal(body.domain, "user_created");
  assert.equal(body.assembly_type, "bash");
  assert.equal("assembly_guid" in body, false, "a new GUID is made on save");
});

Deno.test("assembly form: problems are named per field like the engine names them", () => {
  const f = emptyForm();
  f.variables = [
    { name: "1bad", label: "", type: "string", default: "", required: false, description: "" },
    { name: "ok", label: "", type: "number", default: "x", required: false, description: "" },
    { name: "OK", label: "", type: "boolean", default: "yes", required: false, description: "" },
  ];
  f.timeout_seconds = "0";
  const e = validateForm(f);
  assert.equal(e.display_name, "Give it a name");
  assert.equal(e.timeout_seconds, "Whole seconds from 1 to 604800 (7 days)");
  assert.ok(e["variables.0.name"]);
  assert.equal(e["variables.1.default"], "A number");
  assert.equal(e["variables.2.name"], "Used twice");
  assert.equal(e["variables.2.default"], "true or false");
  f.display_name = "x";
  f.payload = "a".repeat(10);
  f.files = [{ file_name: "b", data: "YWJjZA==" }];
  assert.equal(base64Size("YWJjZA=="), 4);
  assert.equal(formSize(f), 14);
  assert.match(validateForm(f, 12).payload ?? "", /14 bytes/);
  const wf = { ...emptyForm(), display_name: "w", assembly_kind: "workflow" as const };
  wf.payload = "[1]";
  assert.equal(validateForm(wf).payload, "A JSON object");
});

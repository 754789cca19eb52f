import assert from "node:assert/strict";
import fc from "fast-check";
import { payloadBytes } from "./cache.ts";
import type { AssemblyRecord } from "./model.ts";
import { exportDocument, parseImportDocument } from "./serialization.ts";

const base: AssemblyRecord = {
  assembly_guid: "0b6f2b1e-8a53-4d47-9c1e-1f0f5a7c2d10",
  domain: "user_created",
  display_name: "x",
  summary: "",
  category: "script",
  assembly_kind: "script",
  assembly_type: "bash",
  version: 3,
  metadata: {},
  tags: [],
  checksum: "0".repeat(64),
  payload_guid: "5d1c7a3e-2b4f-4e8a-9c6d-0a1b2c3d4e5f",
  payload_type: "script",
  payload_file_name: "payload.sh",
  payload_file_extension: "sh",
  payload_size_bytes: 0,
  payload_checksum: "1".repeat(64),
  payload_created_at: "2026-01-01T00:00:00.000Z",
  payload_updated_at: "2026-01-01T00:00:00.000Z",
  source_path: null,
  created_at: "2026-01-01T00:00:00.000Z",
  updated_at: "2026-01-02T00:00:00.000Z",
};

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const metadata = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }).filter((k) =>
    !["variables", "files", "timeout_seconds", "__proto__"].includes(k)
  ),
  jsonValue,
  { maxKeys: 5 },
);

Deno.test("serialization: export → import → export is byte-stable for any script and metadata", () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 300 }),
      metadata,
      fc.array(
        fc.string({ minLength: 1, maxLength: 10 }).filter((s) => s.trim() === s && s !== ""),
        {
          maxLength: 4,
        },
      ),
      fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() === s && s !== ""),
      (text, meta, tags, name) => {
        const r = { ...base, display_name: name, metadata: meta, tags };
        const bytes = new TextEncoder().encode(text);
        const first = exportDocument(r, bytes);
        const parsed = parseImportDocument(JSON.parse(first), { maxPayloadBytes: 1 << 20 });
        const again = exportDocument(
          {
            ...r,
            display_name: parsed.display_name,
            metadata: parsed.metadata!,
            tags: parsed.tags!,
            version: parsed.version!,
          },
          payloadBytes(parsed.payload),
        );
        assert.equal(again, first);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("serialization: workflows round trip and the kind is inferred as upstream", () => {
  const wf = parseImportDocument({ tab_name: "T", nodes: [{ id: 1 }], edges: [] }, {
    maxPayloadBytes: 4096,
  });
  assert.equal(wf.assembly_kind, "workflow");
  assert.deepEqual((wf.payload as { value: unknown }).value, {
    tab_name: "T",
    nodes: [{ id: 1 }],
    edges: [],
  });
  const ans = parseImportDocument({ name: "p", tasks: [{ name: "t" }] }, {
    maxPayloadBytes: 4096,
  });
  assert.equal(ans.assembly_kind, "ansible");
  const sc = parseImportDocument({ name: "s", script_lines: ["a", "b"] }, {
    maxPayloadBytes: 4096,
  });
  assert.equal(sc.assembly_kind, "script");
  assert.deepEqual(sc.payload, { kind: "text", text: "a\nb" });
  assert.equal(sc.metadata!.timeout_seconds, 3600);
});

Deno.test("serialization: base64 scripts are decoded; plain one-word scripts stay plain", () => {
  const encoded = btoa("Get-Service\nGet-Process\n");
  const auto = parseImportDocument({ name: "a", script: encoded }, { maxPayloadBytes: 4096 });
  assert.deepEqual(auto.payload, { kind: "text", text: "Get-Service\nGet-Process\n" });
  for (const plain of ["hostname", "whoami", "ipconfig", "uptimeuptime1234"]) {
    const p = parseImportDocument({ name: "p", script: plain }, { maxPayloadBytes: 4096 });
    assert.deepEqual(p.payload, { kind: "text", text: plain });
  }
});

import assert from "node:assert/strict";
import type { Site } from "../api/types.ts";
import { platformCommands, referenceAgentCommand, shellQuote } from "./install.ts";

const site = {
  id: 3,
  name: "Main",
  description: "",
  created_at: "",
  device_count: 0,
  online_count: 0,
  offline_count: 0,
  overdue_count: 0,
  enrollment_code: "ABCD-EF12-3456",
  auto_approve_until: null,
} as Site;

Deno.test("install: the reference agent's command carries the quoted address and code", () => {
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
  assert.equal(
    referenceAgentCommand(site, "http://rmm.example:5000/")!.command,
    "deno task agent --server http://rmm.example:5000 --code ABCD-EF12-3456 --state ./borealis-agent --connect",
  );
  assert.equal(referenceAgentCommand({ ...site, enrollment_code: null }, "http://x"), null);
});

Deno.test("install: the engine's per-platform commands, one per platform", () => {
  assert.deepEqual(platformCommands(null), []);
  const list = platformCommands({
    linux: "curl … linux",
    macos: "curl … macos",
    windows: "$f = … windows",
    token_id: "t",
    expires_at: "2026-01-01T00:00:00Z",
    version: "1.0.0",
  });
  assert.deepEqual(list.map((c) => c.platform), ["linux", "macos", "windows"]);
  assert.equal(list[2]!.command, "$f = … windows");
});

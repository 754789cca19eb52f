import assert from "node:assert/strict";
import { installCommands, shellQuote } from "./install.ts";
import type { Site } from "../api/types.ts";

const site: Site = {
  id: 1,
  name: "Main",
  description: "",
  created_at: "2026-01-01T00:00:00Z",
  device_count: 0,
  online_count: 0,
  offline_count: 0,
  overdue_count: 0,
  enrollment_code: "ABCD-EF01-2345-6789-ABCD-EF01-2345-6789",
  auto_approve_until: null,
};

Deno.test("install commands: the reference agent's command until the engine serves its own", () => {
  assert.deepEqual(installCommands(site, "https://rmm.example.com/"), [{
    platform: "reference-agent",
    label: "Reference agent (from a checkout of the engine)",
    command: "deno task agent --server https://rmm.example.com " +
      "--code ABCD-EF01-2345-6789-ABCD-EF01-2345-6789 --state ./borealis-agent --connect",
  }]);
  assert.deepEqual(installCommands({ ...site, enrollment_code: null }, "http://x"), []);
  const served = [{ platform: "linux", command: "curl … | sh" }];
  assert.equal(installCommands({ ...site, install_commands: served }, "http://x"), served);
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
});

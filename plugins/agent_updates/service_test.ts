import assert from "node:assert/strict";
import { compareVersions } from "./service.ts";

Deno.test("agent_updates: versions order like semver", () => {
  const sorted = [
    "1.10.0",
    "1.2.0",
    "1.2.0-beta.2",
    "1.2.0-beta.10",
    "0.9.9",
    "1.2.0-alpha",
    "2.0.0+build.1",
  ]
    .sort(compareVersions);
  assert.deepEqual(sorted, [
    "0.9.9",
    "1.2.0-alpha",
    "1.2.0-beta.2",
    "1.2.0-beta.10",
    "1.2.0",
    "1.10.0",
    "2.0.0+build.1",
  ]);
  assert.equal(compareVersions("1.0.0", "1.0.0+x"), 0);
});

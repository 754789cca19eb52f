import assert from "node:assert/strict";
import { mergeDetails, normalizeSoftwareName } from "./merge.ts";

Deno.test("merge: new values win, empty values never erase stored ones, objects merge deeply", () => {
  const stored = {
    summary: { hostname: "a", domain: "corp", uptime_sec: 5 },
    storage: [{ drive: "C:" }],
    cpu: { name: "x" },
  };
  const incoming = {
    summary: { hostname: "b", domain: "", last_user: "bob" },
    storage: [],
    services: [{ name: "sshd" }],
  };
  assert.deepEqual(mergeDetails(stored, incoming), {
    summary: { hostname: "b", domain: "corp", uptime_sec: 5, last_user: "bob" },
    storage: [{ drive: "C:" }],
    cpu: { name: "x" },
    services: [{ name: "sshd" }],
  });
  assert.deepEqual(stored.summary.hostname, "a", "inputs are not modified");
});

Deno.test("merge: software names normalize for matching", () => {
  assert.equal(normalizeSoftwareName("  Mozilla   Firefox (x64) "), "mozilla firefox (x64)");
  assert.equal(normalizeSoftwareName("ＣＣleaner"), "ccleaner");
});

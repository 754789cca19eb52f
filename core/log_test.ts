import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "./clock.ts";
import { createLogSink, formatLine, redact, redactFields } from "./log.ts";

Deno.test("log: line format is <ISO UTC>-engine-<LEVEL>-<scope>: <message>", () => {
  const line = formatLine(Date.UTC(2026, 10, 23, 8, 0, 0, 5), "INFO", "kernel", "hello\nworld");
  assert.equal(line, "2026-11-23T08:00:00.005Z-engine-INFO-kernel: hello world");
});

Deno.test("log: secrets are redacted from messages and fields", () => {
  const cases = [
    "login failed password=hunter2 for bob",
    "Authorization: Bearer abcdefghijklmnop1234",
    "DPoP eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    "db postgres://engine:s3cretpw@db.example:5432/borealis",
    "sealed aegis:v1:k1:QUJDREVGR0hJSktMTU5PUA==",
    `{"refresh_token": "AAAABBBBCCCCDDDD"}`,
  ];
  const secrets = [
    "hunter2",
    "abcdefghijklmnop1234",
    "c2lnbmF0dXJl",
    "s3cretpw",
    "QUJDREVGR0hJSktMTU5PUA",
    "AAAABBBBCCCCDDDD",
  ];
  cases.forEach((c, i) => assert.ok(!redact(c).includes(secrets[i]!), `${c} → ${redact(c)}`));
  const fields = redactFields({
    user: "bob",
    password: "hunter2",
    nested: { api_key: "k", ok: 1 },
    list: ["Bearer zzzzzzzzzzzz"],
  });
  assert.deepEqual(fields, {
    user: "bob",
    password: "[redacted]",
    nested: { api_key: "[redacted]", ok: 1 },
    list: ["Bearer [redacted]"],
  });
});

Deno.test("log: file lines, daily rotation and retention follow the clock", async () => {
  const dir = await Deno.makeTempDir();
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 10));
  const sink = createLogSink({ dir, stderr: false, clock, retentionDays: 2 });
  const log = sink.logger("test");
  try {
    log.info("day one", { token: "t0psecret" });
    log.debug("hidden at INFO level");
    for (let day = 1; day <= 4; day++) {
      await clock.advance(86_400_000);
      log.warn(`day ${day + 1}`);
    }
    sink.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    // Rotated files older than the 2-day retention are gone.
    assert.deepEqual(names, ["engine.log", "engine.log.2026-01-03", "engine.log.2026-01-04"]);
    const current = await Deno.readTextFile(join(dir, "engine.log"));
    assert.match(current, /^2026-01-05T10:00:00.000Z-engine-WARNING-test: day 5\n$/);
    const all = names.map((n) => Deno.readTextFileSync(join(dir, n))).join("");
    assert.ok(!all.includes("t0psecret"));
    assert.ok(!all.includes("hidden at INFO"));
  } finally {
    sink.close();
    await Deno.remove(dir, { recursive: true });
  }
});

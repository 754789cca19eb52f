import assert from "node:assert/strict";
import { ConfigError, intEnv, loadCoreSettings, parseSettings, setting } from "./config.ts";

Deno.test("config: defaults apply with an empty environment", () => {
  const s = loadCoreSettings({});
  assert.equal(s.host, "127.0.0.1");
  assert.equal(s.port, 5000);
  assert.equal(s.autoMigrate, true);
  assert.equal(s.dbPoolSize, 10);
  assert.equal(s.dbIdleInTxnTimeoutMs, 60_000);
  assert.deepEqual(s.plugins, ["all"]);
  assert.deepEqual(s.corsOrigins, []);
  assert.equal(s.databaseUrl, undefined);
  assert.ok(s.dataDir.endsWith("/.data"));
});

Deno.test("config: every bad variable is reported on its own line with name, problem and accepted form", () => {
  let error: unknown;
  try {
    loadCoreSettings({
      BOREALIS_PORT: "eighty",
      BOREALIS_DB_POOL_SIZE: "0",
      BOREALIS_DEBUG: "maybe",
      BOREALIS_DATABASE_URL: "mysql://x",
      BOREALIS_HOST: "0.0.0.0",
    });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  const lines = error.lines;
  assert.equal(lines.length, 4);
  const byName = (n: string) => lines.find((l) => l.startsWith(n + "="));
  assert.match(byName("BOREALIS_PORT")!, /not an integer; expected an integer from 0 to 65535/);
  assert.match(byName("BOREALIS_DB_POOL_SIZE")!, /out of range; expected an integer from 1 to 500/);
  assert.match(byName("BOREALIS_DEBUG")!, /not a boolean; expected true or false/);
  assert.match(byName("BOREALIS_DATABASE_URL")!, /not a valid URL; expected a postgres:/);
});

Deno.test("config: plugin sections parse with their own specs", () => {
  const specs = {
    flush: setting("BOREALIS_X_FLUSH", intEnv(60, 5, 3600), "seconds from 5 to 3600", "x"),
  };
  assert.equal(parseSettings(specs, {}).flush, 60);
  assert.equal(parseSettings(specs, { BOREALIS_X_FLUSH: "7" }).flush, 7);
  assert.throws(
    () => parseSettings(specs, { BOREALIS_X_FLUSH: "4" }),
    /BOREALIS_X_FLUSH="4": out of range/,
  );
});

Deno.test("config: booleans accept the usual spellings and an empty value means the default", () => {
  for (
    const [raw, want] of [
      ["true", true],
      ["1", true],
      ["YES", true],
      ["off", false],
      ["0", false],
      ["", false],
    ]
  ) {
    assert.equal(loadCoreSettings({ BOREALIS_DEBUG: raw as string }).debug, want, String(raw));
  }
});

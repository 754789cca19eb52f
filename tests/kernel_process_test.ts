/** The engine as a real process: signals, CLI exit codes, zero-config start. */
import assert from "node:assert/strict";
import { createTestDatabase } from "./helpers/test_db.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function readLine(
  reader: ReadableStreamDefaultReader<string>,
  match: RegExp,
  timeoutMs: number,
): Promise<string> {
  let buffer = "";
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const line = buffer.split("\n").find((l) => match.test(l));
    if (line) return line;
  }
  throw new Error(`no line matching ${match} in: ${buffer.slice(-2000)}`);
}

Deno.test("process: SIGTERM lets in-flight requests finish, runs onStop hooks in reverse order and exits 0", async () => {
  const db = await createTestDatabase();
  const out = `${db.dataDir}/stop-order.txt`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/fixtures/stop_order_engine.ts"],
    cwd: ROOT,
    env: { ...db.env, BOREALIS_PORT: "0", STOP_ORDER_FILE: out },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const ready = await readLine(reader, /^READY \d+/, 60_000);
    const port = Number(ready.split(" ")[1]);
    const slow = fetch(`http://127.0.0.1:${port}/api/slow`);
    await new Promise((r) => setTimeout(r, 200)); // the request is in flight
    child.kill("SIGTERM");
    const res = await slow;
    assert.deepEqual(await res.json(), { finished: true });
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    const status = await child.status;
    assert.equal(status.code, 0);
    assert.equal(await Deno.readTextFile(out), "second\nfirst\n");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await db.drop();
  }
});

async function cli(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

Deno.test("cli: unknown commands and flags print usage and exit 2; --help works everywhere", async () => {
  const unknown = await cli(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command: frobnicate/);
  assert.match(unknown.err, /Usage: deno task start/);
  const badFlag = await cli(["migrate", "--bogus"]);
  assert.equal(badFlag.code, 2);
  for (
    const args of [["--help"], ["start", "--help"], ["migrate", "--help"], ["plugins", "--help"], [
      "db",
      "profile",
      "--help",
    ]]
  ) {
    const r = await cli(args);
    assert.equal(r.code, 0, args.join(" "));
    assert.match(r.out, /Usage/);
  }
});

Deno.test("cli: a bad variable stops start-up with one line per variable and exit code 2", async () => {
  const r = await cli(["start"], { BOREALIS_PORT: "http", BOREALIS_DB_POOL_SIZE: "-1" });
  assert.equal(r.code, 2);
  assert.match(r.err, /BOREALIS_PORT="http": not an integer; expected an integer from 0 to 65535/);
  assert.match(r.err, /BOREALIS_DB_POOL_SIZE="-1": out of range/);
});

Deno.test("cli: migrate, migrate --status and plugins against a real database", async () => {
  const db = await createTestDatabase();
  try {
    const env = { ...db.env, BOREALIS_PLUGINS: "example" };
    const before = await cli(["migrate", "--status"], env);
    assert.equal(before.code, 0, before.err);
    assert.match(before.out, /example: 0 applied, 1 pending/);
    const apply = await cli(["migrate"], env);
    assert.equal(apply.code, 0, apply.err);
    assert.match(apply.out, /applied \d+ migration\(s\)/);
    const after = await cli(["migrate", "--status"], env);
    assert.match(after.out, /kernel: \d+ applied, 0 pending/);
    assert.match(after.out, /example: 1 applied, 0 pending/);
    const plugins = await cli(["plugins"], env);
    assert.equal(plugins.code, 0, plugins.err);
    assert.match(plugins.out, /^example — /m);
    assert.match(plugins.out, /POST\s+\/api\/example\/notes/);
  } finally {
    await db.drop();
  }
});

Deno.test("cli: an unreachable database is retried up to the connect timeout, then one clear error", async () => {
  const r = await cli(["migrate"], {
    BOREALIS_DATABASE_URL: "postgres://nobody:pw@127.0.0.1:1/none",
    BOREALIS_DB_CONNECT_TIMEOUT: "2",
  });
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /error: cannot reach PostgreSQL at postgres:\/\/nobody:\*\*\*@127.0.0.1:1\/none after \d+ attempt/,
  );
  assert.ok(!r.err.includes(":pw@"));
});

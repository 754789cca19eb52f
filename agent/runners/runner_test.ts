import assert from "node:assert/strict";
import { join } from "node:path";
import { b64 } from "../protocol/client.ts";
import { fileJournal } from "../worker.ts";
import { interpreterFor } from "./interpreters.ts";
import { ScriptRunner } from "./runner.ts";

async function signer() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = b64(new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey)));
  const job = async (
    id: string,
    type: string,
    script: string,
    extra: Record<string, unknown> = {},
  ) => {
    const bytes = new TextEncoder().encode(script);
    const sig = new Uint8Array(
      await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes),
    );
    return {
      job_id: id,
      script_type: type,
      script_content: b64(bytes),
      script_encoding: "base64",
      sig_alg: "ed25519",
      signature: b64(sig),
      timeout_seconds: 30,
      ...extra,
    };
  };
  return { spki, job };
}

Deno.test("runner: interpreters per OS; unsupported types are named", () => {
  assert.equal(typeof interpreterFor("bash", "linux"), "object");
  assert.match(
    String(interpreterFor("batch", "linux")),
    /^unsupported: batch scripts run only on Windows/,
  );
  assert.match(String(interpreterFor("ansible", "linux")), /^unsupported/);
  const ps = interpreterFor("powershell", "linux");
  if (typeof ps === "string") assert.match(ps, /^unsupported: PowerShell 7 \(pwsh\) was not found/);
});

Deno.test({
  name: "runner: a timeout kills the whole process tree; python runs where present",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const { spki, job } = await signer();
    const runner = new ScriptRunner({ signingKey: spki });
    const marker = join(await Deno.makeTempDir(), "child-still-alive");
    const started = Date.now();
    const out = await runner.handle(
      await job("t1", "bash", `(sleep 3; touch ${marker}) &\necho started\nsleep 30\n`, {
        timeout_seconds: 1,
      }),
    );
    assert.equal(out!.status, "Failed");
    assert.equal(out!.exit_code, null);
    assert.match(out!.stderr, /killed after the 1 s timeout/);
    assert.equal(out!.stdout, "started\n");
    assert.ok(Date.now() - started < 10_000);
    await new Promise((r) => setTimeout(r, 3500));
    await assert.rejects(Deno.stat(marker), "the background child was killed with its group");
    if (typeof interpreterFor("python") !== "string") {
      const py = await runner.handle(
        await job("p1", "python", "import sys\nprint(sys.version_info[0])\n"),
      );
      assert.equal(py!.status, "Success");
      assert.equal(py!.stdout.trim(), "3");
    }
  },
});

Deno.test("runner: refuses a bad signature and never runs a job id twice, even after a restart", async () => {
  const { spki, job } = await signer();
  const dir = await Deno.makeTempDir();
  try {
    const journal = fileJournal(join(dir, "jobs.json"));
    const r1 = new ScriptRunner({ signingKey: spki, journal });
    const tampered = {
      ...(await job("bad", "bash", "echo hi\n")),
      script_content: b64(new TextEncoder().encode("rm -rf /\n")),
    };
    assert.match((await r1.handle(tampered))!.stderr, /does not verify/);
    const ok = await r1.handle(await job("j1", "bash", "echo once >> counter\necho ran\n"));
    assert.equal(ok!.stdout, "ran\n");
    // A new runner (the agent restarted) with the same journal: the job is not run again.
    await new Promise((r) => setTimeout(r, 50));
    const r2 = new ScriptRunner({ signingKey: spki, journal: fileJournal(join(dir, "jobs.json")) });
    const again = await r2.handle(await job("j1", "bash", "echo twice\n"));
    assert.equal(again!.stdout, "ran\n");
    assert.equal(r2.executed.length, 0);
    assert.equal(r2.status({ job_id: "j1" }), "result");
    assert.equal(r2.status({ job_id: "never" }), "unknown");
    // current_user without a provider is refused, not run as the service account.
    const who = await r2.handle(await job("u1", "bash", "id\n", { run_mode: "current_user" }));
    assert.equal(who!.status, "Failed");
    assert.match(who!.stderr, /unsupported/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

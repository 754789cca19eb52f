/**
 * Quick run end to end: reference agents running bash for real over the agent socket,
 * signed scripts (a tampered one refused), variables, scope, activity routes.
 */
import assert from "node:assert/strict";
import { createOperator } from "./helpers/operators.ts";
import { b64, unb64 } from "./agent/agent.ts";
import { type Json, startScheduler, until } from "../plugins/scheduler/testing/helpers.ts";

Deno.test("scheduler: quick run executes bash on real agents, stores results, refuses tampering", async () => {
  const s = await startScheduler();
  try {
    const a1 = await s.connect(await s.enroll("qr-one"));
    const a2 = await s.connect(await s.enroll("qr-two"), {
      tamper: (f) => {
        const d = f.data as Record<string, unknown>;
        const text = new TextDecoder().decode(unb64(String(d.script_content)));
        d.script_content = b64(new TextEncoder().encode(text.replace("hello", "rm -rf ~; echo")));
      },
    });
    // The key the agent pinned at enrollment is the one the engine publishes.
    const key = await s.json("/api/scripts/signing_key");
    assert.equal(key.status, 200);
    assert.equal(key.body.signing_key, a1.agent.state.signing_key);
    const sr = await a1.agent.call("POST", "/api/agent/script/request", {});
    assert.equal((await sr.json()).signing_key, key.body.signing_key);

    const guid = await s.script(
      "greet",
      "bash",
      'echo "hello $NAME from $(hostname >/dev/null; echo bash)"\necho oops >&2\n',
      {
        variables: [{ name: "name", type: "string", required: true }],
        timeout_seconds: 30,
      },
    );
    const bad = await s.json("/api/scripts/quick_run", {
      json: { assembly_guid: guid, hostnames: ["qr-one"] },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, "invalid_variables");

    const run = await s.json("/api/scripts/quick_run", {
      json: {
        assembly_guid: guid,
        hostnames: ["qr-one", "QR-TWO"],
        variable_values: { name: "it's $(whoami)" },
      },
    });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(run.body.results.length, 2);
    const id1 = run.body.results.find((r: { hostname: string }) =>
      r.hostname === "qr-one"
    ).activity_id;
    const id2 = run.body.results.find((r: { hostname: string }) =>
      r.hostname === "qr-two"
    ).activity_id;
    let r1: Json, r2: Json;
    await until(async () => {
      r1 = (await s.json(`/api/device/activity/job/${id1}`)).body;
      r2 = (await s.json(`/api/device/activity/job/${id2}`)).body;
      return r1.status !== "Running" && r2.status !== "Running";
    });
    assert.equal(r1.status, "Success");
    assert.equal(r1.stdout, "hello it's $(whoami) from bash\n");
    assert.equal(r1.stderr, "oops\n");
    assert.equal(r1.exit_code, 0);
    // The tampered copy was refused by the agent, not run.
    assert.equal(r2.status, "Failed");
    assert.match(r2.stderr, /signature does not verify/);
    assert.equal(a2.runner.executed.length, 0);
    assert.equal(a1.runner.executed.length, 1);

    // An unsigned script is refused too.
    const frame = a1.socket.frames.find((f) => f.type === "quick_job_run")!;
    const unsigned = {
      ...(frame.data as Record<string, unknown>),
      job_id: "999999",
      signature: undefined,
    };
    const refused = await a1.runner.handle(unsigned);
    assert.equal(refused?.status, "Failed");
    assert.match(refused!.stderr, /signature/);

    // PowerShell and batch are reported unsupported on Linux.
    const ps = await s.script("ps", "powershell", "Write-Host $env:X", {
      variables: [{ name: "X", type: "string" }],
    });
    const psRun = await s.json("/api/scripts/quick_run", {
      json: { assembly_guid: ps, hostnames: ["qr-one"], variable_values: { X: "a'b" } },
    });
    const psId = psRun.body.results[0].activity_id;
    let psRow: Json;
    await until(async () =>
      (psRow = (await s.json(`/api/device/activity/job/${psId}`)).body).status !== "Running"
    );
    assert.equal(psRow.status, "Failed");
    assert.match(psRow.stderr, /unsupported/);
    const psFrame = a1.socket.frames.find((f) =>
      f.type === "quick_job_run" && (f.data as { job_id: string }).job_id === String(psId)
    )!;
    const psText = new TextDecoder().decode(
      unb64(String((psFrame.data as { script_content: string }).script_content)),
    );
    assert.equal(psText, "Write-Host 'a''b'");

    // Activity list and clear.
    const hist = await s.json("/api/device/activity/qr-one");
    assert.equal(hist.body.history.length, 2);
    const cleared = await s.json("/api/device/activity/qr-one", { method: "DELETE" });
    assert.equal(cleared.body.deleted, 2);

    // Scope: a User of another site may not run on these devices; unknown names look the same.
    const other = await s.h.createSite("Other");
    const user = await createOperator(s.h.t, { role: "User", sites: [other.id] });
    const denied = await s.h.op("/api/scripts/quick_run", {
      json: { assembly_guid: guid, hostnames: ["qr-one", "nope"], variable_values: { name: "x" } },
      as: user,
    });
    assert.equal(denied.status, 403);
    const deniedBody = await denied.json();
    assert.equal(deniedBody.error, "out_of_scope_hostnames");
    assert.deepEqual(deniedBody.details.out_of_scope_hostnames, ["qr-one", "nope"]);
    const hidden = await s.h.op(`/api/device/activity/job/${id1}`, { as: user });
    assert.equal(hidden.status, 404);
    await hidden.body?.cancel();
  } finally {
    await s.close();
  }
});

Deno.test("scheduler: a quick run to an offline agent is held, then runs when it connects; a silent agent times out", async () => {
  const s = await startScheduler();
  try {
    const offline = await s.enroll("qr-late");
    const silent = await s.connect(await s.enroll("qr-silent"), { run: false });
    const guid = await s.script("date", "bash", "echo late\n", { timeout_seconds: 30 });
    const run = await s.json("/api/scripts/quick_run", {
      json: { assembly_guid: guid, hostnames: ["qr-late", "qr-silent"] },
    });
    const late = run.body.results.find((r: { hostname: string }) => r.hostname === "qr-late");
    const quiet = run.body.results.find((r: { hostname: string }) => r.hostname === "qr-silent");
    assert.equal(late.status, "Pending");
    assert.equal(quiet.status, "Running");
    await silent.socket.waitFor((f) => f.type === "quick_job_run");
    const live = await s.connect(offline);
    await until(async () =>
      (await s.json(`/api/device/activity/job/${late.activity_id}`)).body.status === "Success"
    );
    assert.equal(live.runner.executed.length, 1);
    // 30 s timeout + 60 s grace + 180 s hold allowance → Timed Out after 270 s.
    await s.h.t.clock.advance(269_000);
    await s.internals().runs.tick();
    assert.equal(
      (await s.json(`/api/device/activity/job/${quiet.activity_id}`)).body.status,
      "Running",
    );
    await s.h.t.clock.advance(2_000);
    await s.internals().runs.tick();
    const row = (await s.json(`/api/device/activity/job/${quiet.activity_id}`)).body;
    assert.equal(row.status, "Timed Out");
  } finally {
    await s.close();
  }
});

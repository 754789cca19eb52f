/**
 * What a crash leaves behind is cleaned up when the engine starts again: quick-run
 * activities recorded but never sent are failed at once (not Running until their
 * deadline), and payload folders of assembly changes lost before their flush go.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Json, startScheduler } from "../plugins/scheduler/testing/helpers.ts";
import { schedulerInternalsKey } from "../plugins/scheduler/mod.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { schedulerPlugins } from "../plugins/scheduler/testing/helpers.ts";
import { createOperator } from "./helpers/operators.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

/** The engine started again on the same database, with an Admin's request helper. */
async function restart(db: TestEngine["db"]) {
  const t = await startTestEngine({ plugins: schedulerPlugins, db });
  const admin = await createOperator(t, { role: "Admin" });
  return { t, op: (path: string) => t.request(path, { headers: admin.headers }) };
}

Deno.test("restart: quick-run activities a stopped engine recorded but never sent are failed on start; sent ones are left to their agent", async () => {
  const s = await startScheduler();
  let restarted: Awaited<ReturnType<typeof restart>> | undefined;
  try {
    const agent = await s.enroll("crash-target");
    const guid = await s.script("crash", "bash", "echo hi\n", { timeout_seconds: 600 });
    const internals = s.internals();
    const d = internals.dispatcher;
    // What a crash between recording a quick run and sending it leaves: activities owned
    // by an instance that is gone, never claimed for sending.
    const prepared = await d.prepare(guid, {}, "system");
    const target = {
      guid: agent.state.guid!.toUpperCase(),
      hostname: "crash-target",
      siteId: null,
    };
    const lost = await d.createActivities(prepared, [target, target, target], {
      runMode: "system",
      requestedBy: "admin",
      quickJobId: crypto.randomUUID(),
      status: "Running",
      owner: "a-dead-instance",
    });
    // One that was claimed (handed to realtime) before the crash: the agent has it.
    const sent = await d.createActivities(prepared, [target], {
      runMode: "system",
      requestedBy: "admin",
      quickJobId: crypto.randomUUID(),
      status: "Running",
      owner: "a-dead-instance",
    });
    assert.deepEqual([...await d.claimForSending(sent)], sent);

    await s.h.t.stop();
    restarted = await restart(s.h.t.db);
    const status = async (id: number): Promise<Json> =>
      await (await restarted!.op(`/api/device/activity/job/${id}`)).json();
    if (serverUrl) {
      // Other instances may be sending right now: only runs older than the claim window
      // are failed, by the periodic sweep.
      assert.equal((await status(lost[0]!)).status, "Running");
      await restarted.t.clock.advance(31_000);
      await restarted.t.engine.tasks.idle();
      await restarted.t.engine.tasks.runNow("scheduler.fail_undelivered");
    }
    for (const id of lost) {
      const a = await status(id);
      assert.equal(a.status, "Failed", JSON.stringify(a));
      assert.match(a.stderr, /not delivered: the engine stopped before it sent this script/);
      assert.equal(a.metadata.undelivered, true);
    }
    assert.equal((await status(sent[0]!)).status, "Running", "a sent run waits for its agent");
    // A late sender cannot claim what was declared undelivered.
    const d2 = restarted.t.engine.service(schedulerInternalsKey).dispatcher;
    assert.equal((await d2.claimForSending(lost)).size, 0);
  } finally {
    if (restarted) {
      await restarted.t.stop();
      await s.h.t.db.drop();
    } else await s.close();
  }
});

Deno.test("restart: payload folders no assembly references are removed at start once past the grace period; referenced and fresh ones stay", async () => {
  const s = await startScheduler();
  let restarted: Awaited<ReturnType<typeof restart>> | undefined;
  try {
    const guid = await s.script("kept", "bash", "echo kept\n");
    const detail = await s.json(`/api/assemblies/${guid}`);
    const kept = detail.body.payload_guid ?? detail.body.assembly?.payload_guid;
    const root = join(s.h.t.db.dataDir, "Assemblies", "Payloads");
    // Folders a crash leaves: changes staged in memory, lost before their flush.
    const orphan = crypto.randomUUID();
    const fresh = crypto.randomUUID();
    for (const p of [orphan, fresh]) {
      await Deno.mkdir(join(root, p), { recursive: true });
      await Deno.writeTextFile(join(root, p, "payload.sh"), "echo lost\n");
    }
    const twoHoursAgo = new Date(s.h.t.clock.now() - 2 * 3_600_000);
    await Deno.utime(join(root, orphan), twoHoursAgo, twoHoursAgo);
    await Deno.utime(join(root, fresh), new Date(s.h.t.clock.now()), new Date(s.h.t.clock.now()));
    // A temporary file of a write that never finished, inside a referenced folder.
    const tmp = join(root, kept, "payload.sh.tmp-deadbeef");
    await Deno.writeTextFile(tmp, "half");
    await Deno.utime(tmp, twoHoursAgo, twoHoursAgo);

    await s.h.t.stop();
    restarted = await restart(s.h.t.db);
    const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
    assert.equal(await exists(join(root, orphan)), false, "the old orphan is gone");
    assert.equal(await exists(join(root, fresh)), true, "a fresh folder is within the grace");
    assert.equal(await exists(join(root, kept)), true, "a referenced payload stays");
    assert.equal(await exists(tmp), false, "the stale temporary file is gone");
    const still = await restarted.op(`/api/assemblies/${guid}`);
    assert.equal(still.status, 200);
    await still.body?.cancel();
  } finally {
    if (restarted) {
      await restarted.t.stop();
      await s.h.t.db.drop();
    } else await s.close();
  }
});

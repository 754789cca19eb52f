/**
 * Scheduler scope and housekeeping: jobs are site-scoped, credentials are opened through
 * Aegis for credential variables, history older than the retention is purged in batches.
 */
import assert from "node:assert/strict";
import { createOperator } from "./helpers/operators.ts";
import { unb64 } from "./agent/agent.ts";
import { startScheduler, until } from "../plugins/scheduler/testing/helpers.ts";

Deno.test("scheduler: jobs are site-scoped; credential variables open through Aegis; old history is purged", async () => {
  const s = await startScheduler();
  try {
    const a = await s.connect(await s.enroll("scope-a"));
    const second = await s.h.createSite("Branch");
    await s.enroll("branch-1", second.enrollment_code);
    const user = await createOperator(s.h.t, { role: "User", sites: [s.h.site.id] });
    const guid = await s.script(
      "whoami",
      "bash",
      'echo "$LOGIN_USERNAME/$LOGIN_PASSWORD/$LOGIN"\n',
      {
        variables: [{ name: "login", type: "credential", required: true }],
      },
    );
    const cred = await s.json("/api/credentials", {
      json: {
        name: "svc",
        credential_type: "machine",
        connection_type: "ssh",
        username: "svc-user",
        password: "s3cr3t'pw",
      },
    });
    assert.equal(cred.status, 201, JSON.stringify(cred.body));

    // A User may target only devices of their sites.
    const denied = await s.h.op("/api/scheduled_jobs", {
      as: user,
      json: {
        name: "reach",
        components: [{ assembly_guid: guid, variable_values: { login: cred.body.id } }],
        targets: ["scope-a", "branch-1"],
        schedule: { type: "once", start: s.h.t.clock.now() / 1000 + 3600 },
      },
    });
    assert.equal(denied.status, 403);
    assert.deepEqual((await denied.json()).details.out_of_scope_hostnames, ["branch-1"]);
    const mine = await s.h.op("/api/scheduled_jobs", {
      as: user,
      json: {
        name: "mine",
        components: [{ assembly_guid: guid, variable_values: { login: cred.body.id } }],
        targets: ["scope-a"],
        schedule: { type: "immediately" },
      },
    });
    assert.equal(mine.status, 201);
    const mineId = (await mine.json()).id;
    const adminJob = await s.json("/api/scheduled_jobs", {
      json: {
        name: "admin only",
        components: [{ assembly_guid: guid, variable_values: { login: cred.body.id } }],
        targets: ["branch-1"],
        schedule: { type: "once", start: s.h.t.clock.now() / 1000 + 3600 },
      },
    });
    assert.equal(adminJob.status, 201);
    const seen = await (await s.h.op("/api/scheduled_jobs", { as: user })).json();
    assert.deepEqual(seen.jobs.map((j: { name: string }) => j.name), ["mine"]);
    const hidden = await s.h.op(`/api/scheduled_jobs/${adminJob.body.id}`, { as: user });
    assert.equal(hidden.status, 404);
    await hidden.body?.cancel();
    const del = await s.h.op(`/api/scheduled_jobs/${adminJob.body.id}`, {
      as: user,
      method: "DELETE",
    });
    assert.equal(del.status, 404);
    await del.body?.cancel();

    // The "immediately" job opened its occurrence at creation; the credential reaches the
    // script as environment variables, never as script text.
    await s.internals().runs.idle();
    await s.internals().runs.pump();
    const devices = async () =>
      (await s.json(`/api/scheduled_jobs/${mineId}/devices`)).body.devices;
    await until(async () => (await devices())[0]?.status === "Success");
    assert.equal((await devices())[0].stdout, `svc-user/s3cr3t'pw/${cred.body.id}\n`);
    const frame = a.socket.frames.find((f) => f.type === "quick_job_run")!;
    const text = new TextDecoder().decode(
      unb64(String((frame.data as { script_content: string }).script_content)),
    );
    assert.ok(!text.includes("s3cr3t"));

    // Retention: rows older than 30 days go, newer ones stay.
    const sql = s.h.t.engine.sql;
    await sql`update activity_history set ran_at = ran_at - interval '31 days'`;
    await sql`update scheduled_job_occurrences set created_at = created_at - interval '31 days'`;
    await s.internals().runs.closeOccurrences();
    const purged = await s.internals().runs.purge();
    assert.ok(purged >= 2, `purged ${purged}`);
    const [left] = await sql<{ n: number }[]>`select count(*)::int as n from activity_history`;
    assert.equal(left!.n, 0);
    const runs = (await s.json(`/api/scheduled_jobs/${mineId}/runs`)).body;
    assert.equal(runs.runs.length, 0);
  } finally {
    await s.close();
  }
});

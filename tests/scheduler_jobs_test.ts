/**
 * Scheduled jobs end to end with the injected clock: a filter target snapshotted at the
 * occurrence, reference agents running bash, the completion gate, Expired, no
 * backfill, Timed Out, Skipped, maintenance windows.
 */
import assert from "node:assert/strict";
import { startScheduler, until } from "../plugins/scheduler/testing/helpers.ts";

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const iso = (sec: number) => new Date(sec * 1000).toISOString();

Deno.test("scheduler: a job targeting a filter runs bash on agents; gate, Expired and no backfill", async () => {
  const s = await startScheduler();
  try {
    const clock = s.h.t.clock;
    const a = await s.connect(await s.enroll("sched-a"));
    const b = await s.connect(await s.enroll("sched-b"));
    await s.enroll("sched-off"); // enrolled, never connects
    await s.enroll("elsewhere"); // not matched by the filter
    const filter = await s.json("/api/device_filters", {
      json: {
        name: "sched hosts",
        criteria_mode: "basic",
        basic_criteria: [{ field: "hostname", operator: "begins_with", value: "sched-" }],
      },
    });
    assert.equal(filter.status, 201, JSON.stringify(filter.body));
    const guid = await s.script("count", "bash", 'echo "run $N on $(uname -s)"\n', {
      variables: [{ name: "N", type: "number", required: true }],
      timeout_seconds: 60,
    });
    const created = await s.json("/api/scheduled_jobs", {
      json: {
        name: "every five",
        components: [{ type: "script", assembly_guid: guid, variable_values: { N: 7 } }],
        targets: [{ kind: "filter", filter_id: filter.body.id }],
        schedule: { type: "every_5_minutes", start: T0 / 1000 },
        duration: { expiration: "20m" },
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    assert.equal(created.body.next_run_ts, T0 / 1000);
    // A filter a job targets cannot be deleted out from under it.
    const del = await s.json(`/api/device_filters/${filter.body.id}`, { method: "DELETE" });
    assert.equal(del.status, 409, JSON.stringify(del.body));
    assert.equal(del.body.error, "filter_in_use");
    assert.deepEqual(
      del.body.details.usage.map((u: { kind: string; name: string }) => [u.kind, u.name]),
      [["scheduled_job", "every five"]],
    );

    const internals = s.internals();
    await internals.runs.tick();
    await internals.runs.idle();
    const devices = async () => (await s.json(`/api/scheduled_jobs/${id}/devices`)).body;
    await until(async () => {
      const d = await devices();
      return d.devices.filter((r: { status: string }) => r.status === "Success").length === 2;
    });
    const d1 = await devices();
    assert.equal(d1.occurrence, T0 / 1000);
    assert.deepEqual(
      d1.devices.map((r: { hostname: string; status: string }) => [r.hostname, r.status]),
      [["sched-a", "Success"], ["sched-b", "Success"], ["sched-off", "Pending"]],
    );
    assert.ok(
      d1.devices.every((r: { resolved_from_filter_id: number }) =>
        r.resolved_from_filter_id === filter.body.id
      ),
    );
    assert.equal(d1.devices[0].stdout, "run 7 on Linux\n");
    assert.equal(a.runner.executed.length, 1);
    assert.equal(b.runner.executed.length, 1);

    // Completion gate: sched-off is still pending, so the 12:05 … 12:15 slots do not open.
    await clock.advance(12 * 60_000);
    await s.h.t.engine.tasks.idle();
    await internals.runs.idle();
    let runs = (await s.json(`/api/scheduled_jobs/${id}/runs`)).body;
    assert.equal(runs.occurrences.length, 1);
    assert.equal(runs.occurrences[0].status, "Running");
    const list = (await s.json("/api/scheduled_jobs")).body.jobs[0];
    assert.equal(list.last_status, "Running");
    assert.equal(list.result_counts.success, 2);
    assert.equal(list.result_counts.pending, 1);

    // At 12:20 the offline target expires, the occurrence closes, and the 12:20 slot fires;
    // the missed 12:05, 12:10 and 12:15 slots are never backfilled.
    await clock.set(T0 + 20 * 60_000);
    await s.h.t.engine.tasks.idle();
    await internals.runs.tick();
    await internals.runs.idle();
    runs = (await s.json(`/api/scheduled_jobs/${id}/runs`)).body;
    assert.deepEqual(
      runs.occurrences.map((
        o: { scheduled_ts: number; status: string },
      ) => [iso(o.scheduled_ts), o.status]),
      [["2026-01-05T12:20:00.000Z", "Running"], ["2026-01-05T12:00:00.000Z", "Complete"]],
    );
    const first = (await s.json(`/api/scheduled_jobs/${id}/devices?occurrence=${T0 / 1000}`)).body;
    const off = first.devices.find((r: { hostname: string }) => r.hostname === "sched-off");
    assert.equal(off.status, "Expired");
    assert.equal(off.error, "Device offline");
    assert.equal(a.runner.executed.length, 1, "nothing ran twice");
  } finally {
    await s.close();
  }
});

Deno.test("scheduler: Timed Out past the stop-after limit, Skipped with zero targets, toggle and rerun", async () => {
  const s = await startScheduler();
  try {
    const clock = s.h.t.clock;
    const silent = await s.connect(await s.enroll("mute-1"), { run: false });
    const guid = await s.script("hang", "bash", "sleep 600\n", { timeout_seconds: 3600 });
    const job = await s.json("/api/scheduled_jobs", {
      json: {
        name: "limited",
        components: [{ assembly_guid: guid }],
        targets: ["mute-1"],
        schedule: { type: "once", start: new Date(T0).toISOString() },
        duration: { stopAfterEnabled: true, expiration: "2m" },
      },
    });
    assert.equal(job.status, 201, JSON.stringify(job.body));
    const internals = s.internals();
    await internals.runs.tick();
    await internals.runs.idle();
    await silent.socket.waitFor((f) => f.type === "quick_job_run");
    const status = async () =>
      (await s.json(`/api/scheduled_jobs/${job.body.id}/devices`)).body.devices[0].status;
    assert.equal(await status(), "Running");
    await clock.advance(119_000);
    await internals.runs.tick();
    assert.equal(await status(), "Running");
    await clock.advance(2_000);
    await internals.runs.tick();
    assert.equal(await status(), "Timed Out");
    await internals.runs.tick();
    const row = (await s.json(`/api/scheduled_jobs/${job.body.id}`)).body;
    assert.equal(row.last_status, "Timed Out");
    assert.equal(row.next_run_ts, null, "a finished once-job has no next run");

    // Zero targets: the occurrence is Skipped.
    const empty = await s.json("/api/device_filters", {
      json: {
        name: "nobody",
        basic_criteria: [{ field: "hostname", operator: "equals", value: "no-such-host" }],
      },
    });
    const skip = await s.json("/api/scheduled_jobs", {
      json: {
        name: "nobody home",
        components: [{ assembly_guid: guid }],
        targets: [{ kind: "filter", filter_id: empty.body.id }],
        schedule: { type: "immediately" },
      },
    });
    const runs = (await s.json(`/api/scheduled_jobs/${skip.body.id}/runs`)).body;
    assert.equal(runs.occurrences[0].status, "Skipped");
    assert.equal(runs.occurrences[0].skip_reason, "no_devices_targeted");
    assert.equal((await s.json(`/api/scheduled_jobs/${skip.body.id}`)).body.last_status, "Skipped");

    // Toggle off and on; rerun opens a manual occurrence.
    const off = await s.json(`/api/scheduled_jobs/${skip.body.id}/toggle`, { method: "POST" });
    assert.equal(off.body.enabled, false);
    const on = await s.json(`/api/scheduled_jobs/${skip.body.id}/toggle`, {
      method: "POST",
      json: { enabled: true },
    });
    assert.equal(on.body.enabled, true);
    const rerun = await s.json(`/api/scheduled_jobs/${skip.body.id}/rerun`, { method: "POST" });
    assert.equal(rerun.status, 200);
    const after = (await s.json(`/api/scheduled_jobs/${skip.body.id}/runs`)).body;
    assert.equal(after.occurrences.length, 2);
    assert.ok(after.occurrences[0].manual);
    const cleared = await s.json(`/api/scheduled_jobs/${skip.body.id}/runs`, { method: "DELETE" });
    assert.equal(cleared.body.deleted, 2);
    const del = await s.json(`/api/scheduled_jobs/${skip.body.id}`, { method: "DELETE" });
    assert.equal(del.status, 200);
    assert.equal((await s.json(`/api/scheduled_jobs/${skip.body.id}`)).status, 404);

    // Bad input is a 400, never a 500.
    const bad = await s.json("/api/scheduled_jobs", {
      json: {
        name: "bad cron",
        components: [{ assembly_guid: guid }],
        targets: ["mute-1"],
        schedule: { type: "cron", cron: "61 * * * *" },
      },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, "invalid_schedule");
    const badZone = await s.json("/api/scheduled_jobs", {
      json: {
        name: "bad zone",
        components: [{ assembly_guid: guid }],
        targets: ["mute-1"],
        schedule: { type: "cron", cron: "0 3 * * *", timezone: "Mars/Olympus" },
      },
    });
    assert.equal(badZone.status, 400);
  } finally {
    await s.close();
  }
});

Deno.test("scheduler: maintenance windows hold window-only jobs and answer devicesInWindow in one pass", async () => {
  const s = await startScheduler();
  try {
    const clock = s.h.t.clock;
    const a = await s.connect(await s.enroll("win-a"));
    const guid = await s.script("patch", "bash", "echo patched\n");
    const win = await s.json("/api/maintenance_windows", {
      json: {
        name: "lunch",
        cron: "10 12 * * *",
        timezone: "UTC",
        duration_minutes: 30,
        site_id: s.h.site.id,
      },
    });
    assert.equal(win.status, 201, JSON.stringify(win.body));
    assert.equal(win.body.open_now, false);
    const job = await s.json("/api/scheduled_jobs", {
      json: {
        name: "patch in window",
        components: [{ assembly_guid: guid }],
        targets: ["win-a"],
        schedule: { type: "once", start: T0 / 1000 },
        maintenance_window_only: true,
      },
    });
    const internals = s.internals();
    await internals.runs.tick();
    await internals.runs.pump();
    const status = async () =>
      (await s.json(`/api/scheduled_jobs/${job.body.id}/devices`)).body.devices[0].status;
    assert.equal(await status(), "Pending");
    assert.equal(a.runner.executed.length, 0);

    const svc = internals.windows;
    const devices = [{ guid: a.guid, siteId: s.h.site.id }, {
      guid: "00000000-0000-0000-0000-000000000001",
      siteId: null,
    }];
    assert.equal((await svc.devicesInWindow(devices, T0)).size, 0);
    const inside = await svc.devicesInWindow(devices, T0 + 11 * 60_000);
    assert.equal(inside.size, 1);
    assert.equal(inside.get(a.guid)?.endsAt, T0 + 40 * 60_000);
    assert.equal(inside.get(a.guid)?.name, "lunch");

    await clock.advance(10 * 60_000);
    await internals.runs.pump();
    await until(async () => (await status()) === "Success");
    assert.equal(a.runner.executed.length, 1);
    const listed = (await s.json("/api/maintenance_windows")).body.windows[0];
    assert.equal(listed.open_now, true);
  } finally {
    await s.close();
  }
});

Deno.test("scheduler: runs of offline devices at the front of the queue do not starve online ones", async () => {
  const s = await startScheduler({ env: { BOREALIS_SCHEDULER_DISPATCH_BATCH: "1" } });
  try {
    const hosts = [];
    for (let i = 0; i < 6; i++) hosts.push((await s.enroll(`starve-${i}`)).state.hostname);
    const online = await s.connect(await s.enroll("starve-z"));
    const guid = await s.script("one", "bash", "echo one\n");
    const job = await s.json("/api/scheduled_jobs", {
      json: {
        name: "queue",
        components: [{ assembly_guid: guid }],
        targets: [...hosts, "starve-z"],
        schedule: { type: "once", start: T0 / 1000 },
      },
    });
    assert.equal(job.status, 201);
    await s.internals().runs.tick();
    await s.internals().runs.idle();
    await s.internals().runs.pump();
    await until(() => online.runner.executed.length === 1);
  } finally {
    await s.close();
  }
});

/**
 * Fleet-wide targets: a quick run (and a scheduled job) aimed at a saved filter, at
 * sites, or at every device in the caller's scope, resolved on the server. Site scope
 * holds throughout; revoked devices are left out; `online_only` skips what the device
 * list does not call online; the agents really run the script.
 */
import assert from "node:assert/strict";
import { startScheduler, until } from "../plugins/scheduler/testing/helpers.ts";
import { createOperator } from "./helpers/operators.ts";

interface Result {
  hostname: string;
  status: string;
  presence: string;
  activity_id: number | null;
}

Deno.test("fleet targets: quick runs and jobs reach a filter, sites or all devices in scope", async () => {
  const s = await startScheduler();
  try {
    const branch = await s.h.createSite("Branch");
    const a1 = await s.connect(await s.enroll("fleet-a1"));
    const a2 = await s.connect(await s.enroll("fleet-a2"));
    await s.enroll("fleet-off"); // enrolled, never connected: offline
    const b1 = await s.connect(await s.enroll("fleet-b1", branch.enrollment_code));
    const rev = await s.enroll("fleet-rev");
    assert.equal(
      (await s.json(`/api/devices/${rev.state.guid}/revoke`, { method: "POST" })).status,
      200,
    );
    const user = await createOperator(s.h.t, { role: "User", sites: [s.h.site.id] });
    const script = await s.script("hello", "bash", "echo fleet\n", { timeout_seconds: 30 });
    const run = async (
      body: Record<string, unknown>,
      as = undefined as typeof user | undefined,
    ) => {
      const res = await s.h.op("/api/scripts/quick_run", {
        json: { assembly_guid: script, ...body },
        as,
      });
      return { status: res.status, body: await res.json() };
    };
    const hosts = (r: { body: { results: Result[] } }) =>
      r.body.results.map((x) => `${x.hostname}:${x.status}:${x.presence}`).sort();

    // Every device in an Admin's scope: the revoked one is left out, the offline one held.
    const all = await run({ all_devices: true });
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.deepEqual(hosts(all), [
      "fleet-a1:Running:online",
      "fleet-a2:Running:online",
      "fleet-b1:Running:online",
      "fleet-off:Pending:offline",
    ]);
    assert.deepEqual(all.body.counts, { running: 3, pending: 1, skipped: 0, failed: 0 });
    // The connected agents really ran it.
    const ran = all.body.results.filter((x: Result) => x.status === "Running");
    await until(async () => {
      for (const x of ran) {
        const act = (await s.json(`/api/device/activity/job/${x.activity_id}`)).body;
        if (act.status !== "Success" || act.stdout !== "fleet\n") return false;
      }
      return true;
    });
    assert.equal(a1.runner.executed.length + a2.runner.executed.length, 2);
    assert.equal(b1.runner.executed.length, 1);

    // online_only: eligibility is the device list's presence.
    const online = await run({ all_devices: true, online_only: true });
    assert.deepEqual(online.body.counts, { running: 3, pending: 0, skipped: 1, failed: 0 });
    const skipped = online.body.results.find((x: Result) => x.status === "Skipped");
    assert.equal(skipped.hostname, "fleet-off");
    assert.equal(skipped.activity_id, null);

    // A User's "all devices" is their sites only; another site is refused, named.
    assert.deepEqual(hosts(await run({ all_devices: true }, user)), [
      "fleet-a1:Running:online",
      "fleet-a2:Running:online",
      "fleet-off:Pending:offline",
    ]);
    const denied = await run({ site_ids: [branch.id] }, user);
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.body.details.out_of_scope_hostnames, [`site ${branch.id}`]);
    assert.deepEqual(hosts(await run({ site_ids: [branch.id] })), ["fleet-b1:Running:online"]);

    // A saved filter is resolved in the caller's scope; selectors combine without duplicates.
    const filter = await s.json("/api/device_filters", {
      json: {
        name: "fleet hosts",
        basic_criteria: [{ field: "hostname", operator: "begins_with", value: "fleet-" }],
      },
    });
    assert.equal(filter.status, 201, JSON.stringify(filter.body));
    assert.deepEqual(hosts(await run({ filter_id: filter.body.id, online_only: true }, user)), [
      "fleet-a1:Running:online",
      "fleet-a2:Running:online",
      "fleet-off:Skipped:offline",
    ]);
    const combined = await run({
      filter_id: filter.body.id,
      site_ids: [branch.id],
      hostnames: ["FLEET-A1"],
      online_only: true,
    });
    assert.equal(combined.body.results.length, 4, "each device once");
    assert.equal((await run({})).body.error, "missing_hostnames");

    // Scheduled jobs take sites and "all devices" too, resolved at each occurrence in the
    // job's scope.
    const job = async (targets: unknown[], as = undefined as typeof user | undefined) => {
      const res = await s.h.op("/api/scheduled_jobs", {
        as,
        json: {
          name: `fleet ${crypto.randomUUID().slice(0, 6)}`,
          components: [{ assembly_guid: script }],
          targets,
          schedule: { type: "immediately" },
        },
      });
      return { status: res.status, body: await res.json() };
    };
    assert.equal((await job([{ kind: "sites", site_ids: [branch.id] }], user)).status, 403);
    const sitesJob = await job([{ kind: "sites", site_ids: [branch.id] }]);
    assert.equal(sitesJob.status, 201, JSON.stringify(sitesJob.body));
    const userAll = await job([{ kind: "all_devices" }], user);
    assert.equal(userAll.status, 201, JSON.stringify(userAll.body));
    await s.internals().runs.tick();
    await s.internals().runs.idle();
    const targetsOf = async (id: number) =>
      (await s.json(`/api/scheduled_jobs/${id}/devices`)).body.devices.map((
        d: { hostname: string },
      ) => d.hostname).sort();
    assert.deepEqual(await targetsOf(sitesJob.body.id), ["fleet-b1"]);
    assert.deepEqual(await targetsOf(userAll.body.id), ["fleet-a1", "fleet-a2", "fleet-off"]);
  } finally {
    await s.close();
  }
});

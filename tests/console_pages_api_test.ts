/**
 * The API the console's part-2 pages needed: an import document checked without being
 * staged (and Python scripts), a schedule's next run times computed by the engine, when
 * each maintenance window opens next, the device list narrowed to a saved filter, filter
 * match counts, and the audit log filtered by target, outcome and a time range.
 */
import assert from "node:assert/strict";
import assemblies from "../plugins/assemblies/mod.ts";
import realtime from "../plugins/realtime/mod.ts";
import scheduler from "../plugins/scheduler/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { createOperator } from "./helpers/operators.ts";

type Json = Record<string, unknown>;

Deno.test("console pages API: import preview, schedule preview, window openings, devices by filter, filter counts, audit filters", async (t) => {
  // The harness's clock starts on Monday 2026-01-05 12:00 UTC.
  const h = await startIdentity({
    plugins: [...identityPlugins, realtime, assemblies, scheduler],
    env: { BOREALIS_ASSEMBLIES_MAX_BYTES: "100000" },
  });
  const json = async (path: string, init: Parameters<typeof h.op>[1] = {}) => {
    const res = await h.op(path, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  try {
    await t.step("import preview: the import rules, nothing staged", async () => {
      const before = (await json("/api/assemblies?limit=1")).body.total;
      const doc = {
        name: "Check disk",
        type: "python",
        script: "import shutil\nprint(shutil.disk_usage('/'))\n",
        timeout_seconds: 120,
        variables: [{ name: "Drive", type: "string", default: "/", required: true }],
        files: [{ file_name: "notes.txt", size: 3, data: "YWJj" }],
      };
      const ok = await json("/api/assemblies/import/preview", { json: doc });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.display_name, "Check disk");
      assert.equal(ok.body.assembly_kind, "script");
      assert.equal(ok.body.assembly_type, "python");
      assert.equal(ok.body.payload, doc.script);
      assert.equal(ok.body.metadata.timeout_seconds, 120);
      assert.equal(ok.body.metadata.variables[0].name, "Drive");
      assert.equal(ok.body.payload_size_bytes, new TextEncoder().encode(doc.script).length);
      assert.equal((await json("/api/assemblies?limit=1")).body.total, before, "nothing staged");

      const bad = await json("/api/assemblies/import/preview", {
        json: { name: "x", script: "echo", variables: [{ name: "9bad" }], files: [{ data: "!" }] },
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, "invalid_assembly_document");
      const fields = (bad.body.details as Json[]).map((d) => d.field);
      assert.ok(fields.includes("variables.0.name"), JSON.stringify(fields));
      assert.ok(fields.some((f) => String(f).startsWith("files.0")), JSON.stringify(fields));

      const big = await json("/api/assemblies/import/preview", {
        json: {
          name: "big",
          script: "x".repeat(60_000),
          files: [{ file_name: "f", data: btoa("y".repeat(60_000)) }],
        },
      });
      assert.equal(big.status, 400, JSON.stringify(big.body).slice(0, 300));
      assert.match(JSON.stringify(big.body.details), /the limit is 100000/);

      const kindless = await json("/api/assemblies/import/preview", { json: { name: "?" } });
      assert.equal(kindless.status, 400);

      // A Python script is stored like any other script type.
      const created = await json("/api/assemblies", {
        json: {
          display_name: "py",
          assembly_kind: "script",
          assembly_type: "python",
          payload: "print(1)",
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.assembly_type, "python");
    });

    await t.step("schedule preview: cron in a time zone, intervals, a past once", async () => {
      const cron = await json("/api/scheduled_jobs/schedule_preview", {
        json: {
          schedule: { type: "cron", cron: "30 2 * * 1-5", timezone: "Europe/Berlin" },
          count: 5,
        },
      });
      assert.equal(cron.status, 200, JSON.stringify(cron.body));
      assert.equal(cron.body.time_zone, "Europe/Berlin");
      // 02:30 in Berlin (UTC+1 in January) is 01:30Z, weekdays only, from Tue 6 Jan.
      assert.deepEqual(cron.body.runs.map((r: Json) => r.at), [
        "2026-01-06T01:30:00.000Z",
        "2026-01-07T01:30:00.000Z",
        "2026-01-08T01:30:00.000Z",
        "2026-01-09T01:30:00.000Z",
        "2026-01-12T01:30:00.000Z",
      ]);
      assert.deepEqual(cron.body.runs.map((r: Json) => r.local)[0], "2026-01-06T02:30");

      const hourly = await json("/api/scheduled_jobs/schedule_preview", {
        json: { schedule: { type: "every_hour", start: "2026-01-05T10:15:00Z" }, count: 3 },
      });
      assert.deepEqual(hourly.body.runs.map((r: Json) => r.at), [
        "2026-01-05T12:15:00.000Z",
        "2026-01-05T13:15:00.000Z",
        "2026-01-05T14:15:00.000Z",
      ]);
      const past = await json("/api/scheduled_jobs/schedule_preview", {
        json: { schedule: { type: "once", start: "2026-01-01T00:00:00Z" } },
      });
      assert.deepEqual(past.body.runs, []);
      for (
        const schedule of [
          { type: "cron", cron: "not a cron", timezone: "UTC" },
          { type: "cron", cron: "0 0 * * *", timezone: "Mars/Olympus" },
          { type: "cron" },
        ]
      ) {
        const r = await json("/api/scheduled_jobs/schedule_preview", { json: { schedule } });
        assert.equal(r.status, 400, JSON.stringify(schedule));
        assert.equal(r.body.error, "invalid_schedule");
      }
    });

    await t.step("maintenance windows say when they open next", async () => {
      const w = await json("/api/maintenance_windows", {
        json: {
          name: "Patch night",
          cron: "0 22 * * 6",
          timezone: "America/New_York",
          duration_minutes: 240,
        },
      });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      // Saturday 22:00 in New York (UTC-5) is Sunday 03:00Z.
      assert.equal(w.body.next_open_at, "2026-01-11T03:00:00.000Z");
      const off = await json(`/api/maintenance_windows/${w.body.id}`, {
        method: "PUT",
        json: {
          name: "Patch night",
          cron: "0 22 * * 6",
          timezone: "America/New_York",
          duration_minutes: 240,
          enabled: false,
        },
      });
      assert.equal(off.body.next_open_at, null);
    });

    await t.step("the device list narrows to a saved filter; counts; scope", async () => {
      for (const hostname of ["web-01", "web-02", "db-01"]) {
        const a = await h.agent({ hostname });
        await a.requestEnrollment(h.site.enrollment_code);
        assert.equal((await h.approve(hostname)).status, 200);
        await a.poll();
      }
      const f = await json("/api/device_filters", {
        json: {
          name: "Web servers",
          basic_criteria: [{ field: "hostname", operator: "begins_with", value: "web" }],
        },
      });
      assert.equal(f.status, 201, JSON.stringify(f.body));
      const list = await json(`/api/devices?filter_id=${f.body.id}&sort=hostname`);
      assert.equal(list.status, 200, JSON.stringify(list.body));
      assert.deepEqual(list.body.devices.map((d: Json) => d.hostname), ["web-01", "web-02"]);
      assert.equal(list.body.total, 2);
      const narrowed = await json(`/api/devices?filter_id=${f.body.id}&q=02`);
      assert.deepEqual(narrowed.body.devices.map((d: Json) => d.hostname), ["web-02"]);
      assert.equal((await json("/api/devices?filter_id=999999")).status, 404);

      const bad = await json("/api/device_filters", {
        json: {
          name: "Broken regex",
          basic_criteria: [{
            field: "hostname",
            operator: "contains",
            value: "(",
            use_regex: true,
          }],
        },
      });
      assert.equal(bad.status, 201, JSON.stringify(bad.body));
      const counted = await json("/api/device_filters?with_counts=true");
      const byName = Object.fromEntries(
        (counted.body.filters as Json[]).map((x) => [x.name, x.match_count]),
      );
      assert.equal(byName["Web servers"], 2);
      assert.equal(byName["Broken regex"], null, "a filter that cannot run counts as unknown");
      assert.equal(
        "match_count" in (await json("/api/device_filters")).body.filters[0],
        false,
        "counts only when asked",
      );

      const other = await h.createSite("Elsewhere");
      const user = await createOperator(h.t, { role: "User", sites: [other.id] });
      const scoped = await json(`/api/devices?filter_id=${f.body.id}`, { as: user });
      assert.equal(scoped.status, 200);
      assert.equal(scoped.body.total, 0, "a filter resolves within the caller's sites");
      const userCounts = await json("/api/device_filters?with_counts=true", { as: user });
      assert.equal(
        (userCounts.body.filters as Json[]).find((x) => x.name === "Web servers")!.match_count,
        0,
      );
    });

    await t.step("the audit log filters by target, outcome and time range", async () => {
      const all = await json("/api/audit?limit=1000");
      const target = (all.body.entries as Json[]).find((e) =>
        String(e.target).startsWith("filter:")
      )!.target as string;
      const byTarget = await json(`/api/audit?target=${encodeURIComponent(target)}`);
      assert.ok(byTarget.body.entries.length >= 1);
      assert.ok((byTarget.body.entries as Json[]).every((e) => e.target === target));
      const byPrefix = await json(`/api/audit?target=${encodeURIComponent("filter:*")}`);
      assert.ok(
        (byPrefix.body.entries as Json[]).every((e) => String(e.target).startsWith("filter:")),
      );
      assert.ok(byPrefix.body.entries.length >= 2);
      const future = await json("/api/audit?since=2030-01-01T00:00:00Z");
      assert.deepEqual(future.body.entries, []);
      const past = await json("/api/audit?until=2000-01-01T00:00:00Z");
      assert.deepEqual(past.body.entries, []);
      const success = await json("/api/audit?outcome=success&limit=1000");
      assert.ok((success.body.entries as Json[]).every((e) => e.outcome === "success"));
      assert.equal((await json("/api/audit?outcome=maybe")).status, 400);
    });
  } finally {
    await h.close();
  }
});

/**
 * Watchdog policies through the HTTP API: create/read/update/delete/archive, metadata,
 * validation, preview against real telemetry (each rule), targets (all devices, one
 * device, a filter), action normalization and site scope.
 */
import assert from "node:assert/strict";
import { startWatchdogs } from "../plugins/watchdogs/testing/harness.ts";
import { createOperator } from "./helpers/operators.ts";

const cpu = { type: "cpu_percent", threshold: 90 };

Deno.test("watchdogs policies: CRUD, defaults, metadata, validation, archive and cascade delete", async () => {
  const h = await startWatchdogs();
  try {
    const meta = await (await h.op("/api/watchdogs/metadata")).json();
    assert.equal(meta.max_rules, 24);
    assert.equal(meta.rule_types.length, 10);
    assert.equal(meta.defaults.cooldown_seconds, 900);

    const w = await h.policy({ name: "Defaults", criteria: { rules: [cpu] } });
    assert.equal(w.severity, "warning");
    assert.equal(w.evaluation_interval_seconds, 60);
    assert.equal(w.cooldown_seconds, 900);
    assert.equal(w.auto_resolve_after_seconds, 300);
    assert.equal(w.min_consecutive_matches, 1);
    assert.equal(w.boot_grace_seconds, 0);
    assert.deepEqual(w.targets, [{ kind: "all_devices" }]);
    assert.deepEqual(w.criteria, { match_mode: "all", rules: [cpu] });
    assert.ok(w.last_evaluated_at, "saving evaluates at once");

    // Validation: 25 rules, a bad rule, a bad action, a specific drive without a drive.
    const bad = async (body: Record<string, unknown>) => {
      const r = await h.op("/api/watchdogs", {
        json: { name: `b-${crypto.randomUUID()}`, ...body },
      });
      const j = await r.json();
      return { status: r.status, error: j.error };
    };
    assert.deepEqual(await bad({ criteria: { rules: Array(25).fill(cpu) } }), {
      status: 400,
      error: "validation_failed",
    });
    assert.equal((await bad({ criteria: { rules: [{ type: "nope" }] } })).status, 400);
    assert.equal(
      (await bad({
        criteria: { rules: [{ type: "storage_usage_percent", drive_mode: "specific" }] },
      })).status,
      400,
    );
    assert.equal(
      (await bad({ criteria: { rules: [cpu] }, actions: { actions: [{ type: "reboot" }] } }))
        .status,
      400,
    );
    assert.equal(
      (await bad({ criteria: { rules: [cpu] }, evaluation_interval_seconds: 5 })).status,
      400,
    );
    assert.equal(
      (await bad({ criteria: { rules: [cpu] }, site_mode: "specific_sites" })).status,
      400,
    );
    const dup = await h.op("/api/watchdogs", {
      json: { name: "defaults", criteria: { rules: [cpu] } },
    });
    assert.equal(dup.status, 409);
    await dup.body?.cancel();

    // Assembly actions keep variable_values and lower-case the GUID; do_nothing is "Incident only".
    const guid = "AB12CD34-0000-4000-8000-00000000ABCD";
    const put = await h.op(`/api/watchdogs/${w.id}`, {
      method: "PUT",
      json: {
        name: "Defaults",
        severity: "error",
        criteria: { match_mode: "any", rules: [cpu, { type: "memory_percent", threshold: 95 }] },
        actions: {
          actions: [
            { type: "do_nothing" },
            { type: "assembly", assembly_guid: guid, variable_values: { Path: "C:\\Temp", n: 3 } },
          ],
        },
      },
    });
    assert.equal(put.status, 200);
    const updated = await put.json();
    assert.equal(updated.severity, "error");
    assert.equal(updated.criteria.match_mode, "any");
    assert.deepEqual(updated.actions.actions[1], {
      type: "assembly",
      assembly_guid: guid.toLowerCase(),
      run_mode: "system",
      execution_context: "local",
      variable_values: { Path: "C:\\Temp", n: 3 },
    });

    const list = await (await h.op("/api/watchdogs")).json();
    assert.equal(list.count, 1);
    const arch = await h.op(`/api/watchdogs/${w.id}/archive`, { json: { archived: true } });
    assert.equal((await arch.json()).archived, true);
    assert.equal((await (await h.op("/api/watchdogs")).json()).count, 0);
    assert.equal((await (await h.op("/api/watchdogs?archived=true")).json()).count, 1);

    assert.equal((await h.op(`/api/watchdogs/${crypto.randomUUID()}`)).status, 404);
    assert.equal((await h.op(`/api/watchdogs/not-a-uuid`)).status, 400);
    const del = await h.op(`/api/watchdogs/${w.id}`, { method: "DELETE" });
    assert.equal(del.status, 204);
    assert.equal((await h.op(`/api/watchdogs/${w.id}`)).status, 404);

    // Audited.
    const [row] = await h.t.engine.sql<{ n: number }[]>`
      select count(*)::int as n from audit_log where action like 'watchdog.%'`;
    assert.ok(row!.n >= 4);
  } finally {
    await h.close();
  }
});

Deno.test("watchdogs policies: preview evaluates every rule against stored telemetry and resolves targets", async () => {
  const h = await startWatchdogs();
  try {
    const a = await h.enrolled("pv-win");
    const b = await h.enrolled("pv-linux");
    await h.heartbeat(a, { cpu_percent: 95, memory_percent: 50, uptime: 40 * 86_400 }, {
      agent_role_health: { screenshot: { status: "unhealthy" } },
    });
    await h.heartbeat(b, { cpu_percent: 5, memory_percent: 97, uptime: 3600 });
    await h.details(a, {
      storage: [{ drive: "C:\\", total: 100, used: 95, free: 5, usage: 95 }, {
        drive: "D:\\",
        usage: 10,
      }],
      services: [{ name: "Spooler", status: "Stopped" }],
      processes: [{ name: "explorer.exe" }],
      software: [{ name: "Google Chrome", version: "119.0.1", source: "local_installed" }],
    });
    await h.details(b, {
      storage: [{ drive: "/", usage: 40 }],
      services: [{ name: "Spooler", status: "Running" }],
      processes: [{ name: "sshd" }],
      software: [{ name: "Google Chrome", version: "121.0", source: "dpkg" }],
    });
    await h.tick(5000);

    const preview = async (rules: unknown[], extra: Record<string, unknown> = {}) => {
      const r = await h.op("/api/watchdogs/preview", {
        json: { name: "p", criteria: { rules }, ...extra },
      });
      assert.equal(r.status, 200);
      const j = await r.json();
      return {
        count: j.device_count as number,
        matched: (j.devices as { hostname: string; matched: boolean }[])
          .filter((d) => d.matched).map((d) => d.hostname),
        body: j,
      };
    };
    assert.deepEqual((await preview([cpu])).matched, ["pv-win"]);
    assert.deepEqual((await preview([{ type: "memory_percent", threshold: 90 }])).matched, [
      "pv-linux",
    ]);
    assert.deepEqual((await preview([{ type: "storage_usage_percent" }])).matched, ["pv-win"]);
    // A specific drive never falls back: D: is at 10% although C: is at 95%.
    assert.deepEqual(
      (await preview([{ type: "storage_usage_percent", drive_mode: "specific", drive: "D:" }]))
        .matched,
      [],
    );
    assert.deepEqual(
      (await preview([{ type: "storage_usage_percent", drive_mode: "specific", drive: "c:" }]))
        .matched,
      ["pv-win"],
    );
    assert.deepEqual(
      (await preview([{ type: "service_state", service_name: "spooler" }])).matched,
      ["pv-win"],
    );
    assert.deepEqual(
      (await preview([{ type: "agent_role_health", role_name: "screenshot" }])).matched,
      ["pv-win"],
    );
    assert.deepEqual(
      (await preview([{
        type: "software_presence_or_version",
        software_name: "google chrome",
        version_operator: "older_than",
        version_value: "120",
      }])).matched,
      ["pv-win"],
    );
    assert.deepEqual(
      (await preview([{ type: "software_presence_or_version", software_name: "Firefox" }])).matched,
      ["pv-linux", "pv-win"],
    );
    assert.deepEqual(
      (await preview([{ type: "process_presence", process_name: "explorer" }])).matched,
      ["pv-linux"],
    );
    assert.deepEqual(
      (await preview([{ type: "uptime_above_seconds", seconds: 30 * 86_400 }])).matched,
      ["pv-win"],
    );
    assert.deepEqual((await preview([{ type: "device_offline" }])).matched, []);
    // match modes
    assert.deepEqual(
      (await preview([cpu, { type: "memory_percent", threshold: 90 }], {})).matched,
      [],
    );
    const any = await preview([cpu, { type: "memory_percent", threshold: 90 }]);
    assert.equal(any.count, 2);
    const anyMode = await h.op("/api/watchdogs/preview", {
      json: {
        name: "p",
        criteria: { match_mode: "any", rules: [cpu, { type: "memory_percent", threshold: 90 }] },
      },
    });
    assert.equal((await anyMode.json()).matched_count, 2);

    // Targets: one device; a filter (resolved when evaluated).
    const one = await preview([cpu], { targets: [{ kind: "device", device_guid: b.guid }] });
    assert.equal(one.count, 1);
    const f = await h.op("/api/device_filters", {
      json: {
        name: "linux boxes",
        basic_criteria: [{ field: "hostname", operator: "contains", value: "linux" }],
      },
    });
    assert.equal(f.status, 201);
    const filterId = (await f.json()).id;
    const byFilter = await preview([{ type: "memory_percent", threshold: 90 }], {
      targets: [{ kind: "filter", filter_id: filterId }],
    });
    assert.equal(byFilter.count, 1);
    assert.deepEqual(byFilter.matched, ["pv-linux"]);
    const sample = byFilter.body.devices[0].sample.results[0];
    assert.equal(sample.type, "memory_percent");
    assert.equal(sample.sample.value, 97);

    // An hour later the telemetry is stale: stale_data, never a match.
    await h.tick(16 * 60_000);
    const stale = await preview([cpu]);
    assert.deepEqual(stale.matched, []);
    assert.ok(stale.body.devices.every((d: { state: string }) => d.state === "stale_data"));
    assert.deepEqual((await preview([{ type: "device_offline" }])).matched, ["pv-linux", "pv-win"]);
  } finally {
    await h.close();
  }
});

Deno.test("watchdogs policies: site scope — Users see only their sites' policies and cannot write", async () => {
  const h = await startWatchdogs();
  try {
    const other = await h.createSite("Other");
    const mine = await h.policy({
      name: "Main only",
      site_mode: "specific_sites",
      site_ids: [h.site.id],
      criteria: { rules: [cpu] },
    });
    const theirs = await h.policy({
      name: "Other only",
      site_mode: "specific_sites",
      site_ids: [other.id],
      criteria: { rules: [cpu] },
    });
    await h.policy({ name: "Everywhere", criteria: { rules: [cpu] } });
    const user = await createOperator(h.t, { role: "User", sites: [h.site.id] });
    const list = await (await h.op("/api/watchdogs", { as: user })).json();
    assert.deepEqual(list.items.map((w: { name: string }) => w.name).sort(), [
      "Everywhere",
      "Main only",
    ]);
    assert.equal((await h.op(`/api/watchdogs/${theirs.id}`, { as: user })).status, 404);
    assert.equal((await h.op(`/api/watchdogs/${mine.id}`, { as: user })).status, 200);
    const create = await h.op("/api/watchdogs", {
      as: user,
      json: { name: "x", criteria: { rules: [cpu] } },
    });
    assert.equal(create.status, 403);
    await create.body?.cancel();
    assert.equal((await h.t.request("/api/watchdogs")).status, 401);
    const prev = await h.op("/api/watchdogs/preview", {
      as: user,
      json: {
        name: "x",
        site_mode: "specific_sites",
        site_ids: [other.id],
        criteria: { rules: [cpu] },
      },
    });
    assert.equal(prev.status, 404);
    await prev.body?.cancel();
  } finally {
    await h.close();
  }
});

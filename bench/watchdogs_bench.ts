/**
 * Watchdogs benchmark: ten policies over 20,000 devices — one full evaluation (aim:
 * under 1 s), and incremental evaluation of 1,000 telemetry updates per second — each
 * next to a baseline measured in the same run: the same full evaluation of ONE policy,
 * the bare read of the telemetry columns, and realtime's own flush of the same updates.
 *
 *   deno run -A bench/watchdogs_bench.ts [--devices 20000] [--updates 1000] [--seconds 5]
 *
 * Set BOREALIS_TEST_DATABASE_URL to run against a PostgreSQL server instead of PGlite.
 * The fleet is realistic rather than on fire: each policy matches about 1–2 % of devices
 * (so the first run opens a few thousand incidents, later runs are steady). Devices are inserted with SQL (telemetry as agents would have reported it); updates go
 * through realtime's liveness and telemetry event exactly as a heartbeat does, minus HTTP.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { realtimeInternalsKey, telemetryReceived } from "../plugins/realtime/mod.ts";
import { watchdogsKey } from "../plugins/watchdogs/mod.ts";
import { watchdogPlugins } from "../plugins/watchdogs/testing/harness.ts";
import { createOperator } from "../tests/helpers/operators.ts";
import { startTestEngine } from "../tests/helpers/test_engine.ts";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "20000" },
    updates: { type: "string", default: "1000" },
    seconds: { type: "string", default: "5" },
  },
});
const DEVICES = Number(values.devices);
const UPDATES = Number(values.updates);
const SECONDS = Number(values.seconds);

const POLICIES: Array<Record<string, unknown>> = [
  { name: "cpu", criteria: { rules: [{ type: "cpu_percent", threshold: 98 }] } },
  { name: "memory", criteria: { rules: [{ type: "memory_percent", threshold: 98 }] } },
  { name: "disk", criteria: { rules: [{ type: "storage_usage_percent", threshold: 98 }] } },
  {
    name: "disk c",
    criteria: {
      rules: [{
        type: "storage_usage_percent",
        drive_mode: "specific",
        drive: "C:",
        threshold: 98,
      }],
    },
  },
  { name: "spooler", criteria: { rules: [{ type: "service_state", service_name: "Spooler" }] } },
  { name: "offline", criteria: { rules: [{ type: "device_offline" }] } },
  { name: "role", criteria: { rules: [{ type: "agent_role_health", role_name: "screenshot" }] } },
  {
    name: "chrome",
    criteria: {
      rules: [{
        type: "software_presence_or_version",
        software_name: "Google Chrome",
        version_operator: "older_than",
        version_value: "120",
      }],
    },
  },
  { name: "uptime", criteria: { rules: [{ type: "uptime_above_seconds", seconds: 30 * 86_400 }] } },
  {
    name: "explorer + cpu",
    min_consecutive_matches: 3,
    criteria: {
      match_mode: "any",
      rules: [
        { type: "process_presence", process_name: "explorer" },
        { type: "cpu_percent", threshold: 99 },
      ],
    },
  },
];

const ms = (x: number) => `${x.toFixed(0)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const t = await startTestEngine({
    plugins: watchdogPlugins,
    env: {
      BOREALIS_ASSEMBLIES_CATALOG_DIR: await Deno.makeTempDir(),
      BOREALIS_LOG_LEVEL: "WARN",
    },
  });
  try {
    const sql = t.engine.sql;
    const api = t.engine.service(watchdogsKey);
    const internals = t.engine.service(realtimeInternalsKey);
    const now = new Date(t.clock.now());
    const [site] = await sql<{ id: number }[]>`
      insert into sites (name, created_at, updated_at)
      values ('bench', ${now}, ${now}) returning id`;
    const t0 = performance.now();
    await sql`
      insert into devices (guid, hostname, site_id, created_at, last_seen, last_reboot, uptime,
        cpu_percent, memory_percent, details)
      select gen_random_uuid(), 'bench-' || i, ${
      site!.id
    }, ${now}::timestamptz - interval '90 days',
        ${now}::timestamptz, ${now}::timestamptz - interval '3 days', case when i % 50 = 3 then 60 * 86400 else 3 * 86400 + (i % 20) * 86400 end,
        (i * 7) % 100, (i * 13) % 100,
        jsonb_build_object(
          'storage', jsonb_build_array(
            jsonb_build_object('drive', 'C:\\', 'total', 500, 'used', (i * 3) % 100 * 5, 'usage', (i * 3) % 100),
            jsonb_build_object('drive', 'D:\\', 'total', 1000, 'usage', (i * 11) % 100)),
          'services', jsonb_build_array(
            jsonb_build_object('name', 'Spooler', 'status', case when i % 50 = 0 then 'Stopped' else 'Running' end),
            jsonb_build_object('name', 'wuauserv', 'status', 'Running')),
          'agent_role_health', jsonb_build_object('screenshot',
            jsonb_build_object('status', case when i % 97 = 0 then 'unhealthy' else 'healthy' end)),
          'processes', jsonb_build_array(jsonb_build_object('name', case when i % 50 = 7 then 'idle' else 'explorer.exe' end)))
      from generate_series(1, ${DEVICES}) as i`;
    await sql`
      insert into device_software_inventory (device_guid, name, name_normalized, version, source, captured_at)
      select guid, 'Google Chrome', 'google chrome', case when random() < 0.02 then '119.0.1' else '121.0.2' end,
        'local_installed', ${now}
      from devices where hostname like 'bench-%'`;
    console.log(`setup: ${DEVICES} devices with telemetry in ${ms(performance.now() - t0)}`);

    // Policies are created disabled through the API (saving an enabled one evaluates it at
    // once), then switched on with SQL so the first evaluation below is the measured one.
    const admin = await createOperator(t, { role: "Admin" });
    for (const p of POLICIES) {
      const res = await t.request("/api/watchdogs", {
        method: "POST",
        json: { ...p, enabled: false },
        headers: admin.headers,
      });
      if (res.status !== 201) throw new Error(`policy ${res.status}: ${await res.text()}`);
      await res.body?.cancel();
    }
    await sql`update watchdogs set enabled = true`;
    const policies = await api.service.list(
      { kind: "system", id: "bench", name: "bench", sites: "all" },
      false,
    );
    const evaluator = api.service.evaluator;

    // Baseline 1: the bare read of the telemetry every rule needs (one query, no logic).
    const bare: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      await evaluator.samples(policies);
      bare.push(performance.now() - s);
    }
    // Baseline 2: the same full evaluation with ONE policy.
    const one: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      await evaluator.evaluate([policies[0]!]);
      one.push(performance.now() - s);
    }
    // Full evaluation of ten policies: the first opens the incidents, the next are steady.
    const first = await evaluator.evaluate(policies);
    const full: number[] = [];
    let steady = first;
    for (let i = 0; i < 3; i++) {
      steady = await evaluator.evaluate(policies);
      full.push(steady.ms);
    }
    const [{ n: incidents }] = await sql<{ n: number }[]>`
      select count(*)::int as n from watchdog_incidents where state = 'open'` as unknown as [
      { n: number },
    ];
    console.log(
      `watchdogs full evaluation (10 policies × ${DEVICES} devices = ${first.pairs} checks): ` +
        `${ms(median(full))} steady, ${ms(first.ms)} first run opening ${first.opened} incidents ` +
        `(baseline: same evaluation of 1 policy ${ms(median(one))}, bare telemetry read ${
          ms(median(bare))
        }; ` +
        `ratio to bare read ${
          (median(full) / median(bare)).toFixed(1)
        }×) — aim < 1000 ms; ${incidents} open incidents`,
    );
    const ph = (x: typeof first) =>
      `read ${ms(x.phases.read)}, compute ${ms(x.phases.compute)}, write ${ms(x.phases.write)}`;
    console.log(`watchdogs full evaluation phases: steady ${ph(steady)}; first ${ph(first)}`);
    console.log(
      `watchdogs full evaluation: ${Math.round(first.pairs / (median(full) / 1000))} checks/s ` +
        `(baseline 1 policy: ${Math.round(DEVICES / (median(one) / 1000))} checks/s)`,
    );

    // Incremental: UPDATES telemetry updates per simulated second, through liveness and the
    // telemetry event like a heartbeat; the watchdogs task evaluates each batch.
    const guids = (await sql<{ guid: string; hostname: string }[]>`
      select guid, hostname from devices where hostname like 'bench-%' order by hostname`)
      .map((r) => ({ guid: r.guid.toUpperCase(), hostname: r.hostname }));
    const batches: number[] = [];
    const flushOnly: number[] = [];
    let k = 0;
    for (let sec = 0; sec < SECONDS; sec++) {
      // Baseline: realtime's own flush of the same number of heartbeat updates.
      for (let i = 0; i < UPDATES; i++) {
        const d = guids[(k + i) % guids.length]!;
        internals.liveness.touch(d.guid, { hostname: d.hostname, siteId: site!.id }, {
          cpu_percent: (sec * 31 + i) % 100,
        });
      }
      let s = performance.now();
      await internals.flush();
      flushOnly.push(performance.now() - s);
      for (let i = 0; i < UPDATES; i++) {
        const d = guids[(k + i) % guids.length]!;
        internals.liveness.touch(d.guid, { hostname: d.hostname, siteId: site!.id }, {
          cpu_percent: (sec * 37 + i) % 100,
        });
        await t.engine.events.publish(telemetryReceived, {
          guid: d.guid,
          site_id: site!.id,
          kinds: ["heartbeat", "metrics"],
        }, { localOnly: true });
      }
      k += UPDATES;
      s = performance.now();
      const n = await api.flushDirty();
      batches.push(performance.now() - s);
      if (n !== UPDATES) throw new Error(`expected ${UPDATES} dirty devices, got ${n}`);
      await t.clock.advance(1000);
    }
    const batch = median(batches);
    console.log(
      `watchdogs incremental: ${UPDATES} updates re-evaluated against 10 policies in ${
        ms(batch)
      } ` +
        `per batch → capacity ${Math.round(UPDATES / (batch / 1000))} updates/s ` +
        `(baseline: realtime flush of the same ${UPDATES} updates ${ms(median(flushOnly))}; ` +
        `ratio ${(batch / median(flushOnly)).toFixed(1)}×) — 1000 updates/s ${
          batch < 1000 ? "sustained" : "NOT sustained"
        }`,
    );
  } finally {
    await t.close();
  }
}

if (import.meta.main) await main();

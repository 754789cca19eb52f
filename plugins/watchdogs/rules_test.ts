/** Each rule against telemetry samples (pure; no database). */
import assert from "node:assert/strict";
import {
  combine,
  compareVersions,
  type DeviceSample,
  evaluateRule,
  type RuleContext,
  versionSatisfies,
} from "./rules.ts";
import { Rule } from "./schemas.ts";

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0);
const ctx: RuleContext = { now: NOW, staleMs: 900_000, baselineAt: NOW - 86_400_000 };

function sample(over: Partial<DeviceSample> = {}): DeviceSample {
  return {
    guid: "G",
    hostname: "host-1",
    siteId: 1,
    createdAt: NOW - 30 * 86_400_000,
    lastSeen: NOW - 10_000,
    connected: true,
    lastReboot: NOW - 5 * 86_400_000,
    uptime: 5 * 86_400,
    cpuPercent: 20,
    memoryPercent: 40,
    ...over,
  };
}
const rule = (r: Record<string, unknown>) => Rule.parse(r);
const run = (r: Record<string, unknown>, s: Partial<DeviceSample> = {}, c = ctx) =>
  evaluateRule(rule(r), sample(s), c);

Deno.test("rule device_offline: connected or recently seen is online; past the limit is offline", () => {
  assert.equal(rule({ type: "device_offline" }).type, "device_offline");
  assert.equal(
    (rule({ type: "device_offline" }) as { offline_after_seconds: number }).offline_after_seconds,
    300,
  );
  assert.throws(() => rule({ type: "device_offline", offline_after_seconds: 30 }));
  assert.equal(run({ type: "device_offline" }).matched, false);
  assert.equal(
    run({ type: "device_offline" }, { connected: false, lastSeen: NOW - 299_000 }).matched,
    false,
  );
  const off = run({ type: "device_offline" }, { connected: false, lastSeen: NOW - 301_000 });
  assert.equal(off.matched, true);
  assert.equal(off.sample.seconds_since_seen, 301);
  assert.equal(run({ type: "device_offline" }, { connected: false, lastSeen: null }).matched, true);
  // Never stale: offline is exactly what old telemetry means.
  assert.equal(
    run({ type: "device_offline" }, { connected: false, lastSeen: NOW - 3_600_000 }).stale,
    undefined,
  );
});

Deno.test("rule storage_usage_percent: all drives, a specific drive, and no fallback to another drive", () => {
  const storage = [
    { drive: "C:\\", total: 100, used: 95, free: 5, usage: 95 },
    { drive: "D:\\", total: 1000, used: 100, free: 900 },
  ];
  assert.equal(run({ type: "storage_usage_percent" }, { storage }).matched, true);
  assert.equal(run({ type: "storage_usage_percent", threshold: 96 }, { storage }).matched, false);
  // D: usage is computed from used/total (10%).
  assert.equal(
    run({ type: "storage_usage_percent", drive_mode: "specific", drive: "d:" }, { storage })
      .matched,
    false,
  );
  assert.equal(
    run({ type: "storage_usage_percent", drive_mode: "specific", drive: "C:" }, { storage })
      .matched,
    true,
  );
  // E: is not reported: no verdict from C: although C: is over the threshold.
  const e = run({ type: "storage_usage_percent", drive_mode: "specific", drive: "E:" }, {
    storage,
  });
  assert.equal(e.matched, false);
  assert.equal(e.sample.found, false);
  assert.match(e.summary, /not reported/);
  assert.throws(() => rule({ type: "storage_usage_percent", drive_mode: "specific" }));
  // Linux mount points.
  assert.equal(
    run({ type: "storage_usage_percent", drive_mode: "specific", drive: "/var" }, {
      storage: [{ drive: "/", usage: 99 }, { drive: "/var/", usage: 91 }],
    }).matched,
    true,
  );
});

Deno.test("rule service_state: list or map; missing counts as not running", () => {
  const list = [{ name: "Spooler", status: "Running" }, { name: "wuauserv", status: "Stopped" }];
  assert.equal(
    run({ type: "service_state", service_name: "spooler" }, { services: list }).matched,
    false,
  );
  assert.equal(
    run({ type: "service_state", service_name: "wuauserv" }, { services: list }).matched,
    true,
  );
  assert.equal(
    run({ type: "service_state", service_name: "wuauserv", expected_status: "stopped" }, {
      services: list,
    })
      .matched,
    false,
  );
  assert.equal(
    run({ type: "service_state", service_name: "nginx" }, { services: list }).matched,
    true,
  );
  assert.equal(
    run({ type: "service_state", service_name: "nginx" }, { services: { nginx: "running" } })
      .matched,
    false,
  );
  assert.equal(
    run({ type: "service_state", service_name: "sshd" }, {
      services: { sshd: { status: "stopped" } },
    })
      .matched,
    true,
  );
});

Deno.test("rule agent_role_health: trigger statuses, default unhealthy, unknown when missing", () => {
  const roleHealth = { screenshot: { status: "unhealthy" }, shell: "healthy" };
  assert.equal(
    run({ type: "agent_role_health", role_name: "screenshot" }, { roleHealth }).matched,
    true,
  );
  assert.equal(
    run({ type: "agent_role_health", role_name: "shell" }, { roleHealth }).matched,
    false,
  );
  assert.equal(
    run({ type: "agent_role_health", role_name: "vnc", trigger_statuses: ["unknown"] }, {
      roleHealth,
    }).matched,
    true,
  );
  assert.equal(
    run({ type: "agent_role_health", role_name: "shell" }, {
      roleHealth: [{ role: "shell", status: "unhealthy" }],
    }).matched,
    true,
  );
  assert.throws(() =>
    rule({ type: "agent_role_health", role_name: "x", trigger_statuses: ["bad"] })
  );
});

Deno.test("rule software_presence_or_version: presence, absence and version comparisons", () => {
  const software = [
    {
      name: "Google Chrome",
      normalized: "google chrome",
      version: "119.0.6045.105",
      source: "local_installed",
    },
    { name: "7-Zip 23.01", normalized: "7-zip 23.01", version: "23.01", source: "local_installed" },
  ];
  const sw = (r: Record<string, unknown>) =>
    run({ type: "software_presence_or_version", ...r }, { software });
  assert.equal(sw({ software_name: "google chrome" }).matched, false);
  assert.equal(sw({ software_name: "Firefox" }).matched, true);
  assert.equal(sw({ software_name: "7-Zip", require_present: false }).matched, true);
  assert.equal(sw({ software_name: "Firefox", require_present: false }).matched, false);
  assert.equal(
    sw({ software_name: "Google Chrome", version_operator: "older_than", version_value: "120" })
      .matched,
    true,
  );
  assert.equal(
    sw({
      software_name: "Google Chrome",
      version_operator: "older_than",
      version_value: "119.0.6045.9",
    }).matched,
    false,
  );
  assert.equal(
    sw({ software_name: "Google Chrome", version_operator: "newer_than", version_value: "119" })
      .matched,
    true,
  );
  assert.equal(
    sw({
      software_name: "7-zip",
      require_present: false,
      version_operator: "matches",
      version_value: "23.*",
    })
      .matched,
    true,
  );
  assert.equal(sw({ software_name: "Google Chrome", software_source: "dpkg" }).matched, true);
  assert.throws(() =>
    rule({
      type: "software_presence_or_version",
      software_name: "x",
      version_operator: "older_than",
    })
  );
  assert.ok(compareVersions("1.10", "1.9") > 0);
  assert.ok(compareVersions("1.0", "1") === 0);
  assert.equal(versionSatisfies("", "older_than", "1"), false);
});

Deno.test("rules cpu_percent and memory_percent: at or above the threshold", () => {
  assert.equal(run({ type: "cpu_percent", threshold: 90 }, { cpuPercent: 95 }).matched, true);
  assert.equal(run({ type: "cpu_percent", threshold: 90 }, { cpuPercent: 89.9 }).matched, false);
  assert.equal(run({ type: "cpu_percent" }, { cpuPercent: null }).matched, false);
  assert.equal(run({ type: "memory_percent", threshold: 80 }, { memoryPercent: 80 }).matched, true);
  assert.equal(
    run({ type: "memory_percent", threshold: 80 }, { memoryPercent: 12 }).matched,
    false,
  );
});

Deno.test("rule uptime_above_seconds: reported uptime grows while the device stays up", () => {
  assert.equal(
    run({ type: "uptime_above_seconds", seconds: 86_400 }, { uptime: 3600 }).matched,
    false,
  );
  assert.equal(
    run({ type: "uptime_above_seconds", seconds: 86_400 }, { uptime: 90_000 }).matched,
    true,
  );
  // Reported 86,000 s ten minutes ago: now above 86,400.
  assert.equal(
    run({ type: "uptime_above_seconds", seconds: 86_400 }, {
      uptime: 86_000,
      lastSeen: NOW - 600_000,
    }).matched,
    true,
  );
  assert.equal(run({ type: "uptime_above_seconds", seconds: 60 }, { uptime: null }).matched, false);
});

Deno.test("rule reboot_detected: a reboot after the baseline within the window", () => {
  assert.equal(run({ type: "reboot_detected" }, { lastReboot: NOW - 600_000 }).matched, true);
  assert.equal(run({ type: "reboot_detected" }, { lastReboot: NOW - 7_200_000 }).matched, false);
  // Before the policy existed (its baseline): not news.
  assert.equal(
    run({ type: "reboot_detected" }, { lastReboot: NOW - 600_000 }, {
      ...ctx,
      baselineAt: NOW - 300_000,
    }).matched,
    false,
  );
  // The first boot after enrollment is not a reboot to report.
  assert.equal(
    run({ type: "reboot_detected" }, { lastReboot: NOW - 600_000, createdAt: NOW - 300_000 })
      .matched,
    false,
  );
  assert.equal(run({ type: "reboot_detected" }, { lastReboot: null }).matched, false);
});

Deno.test("rule process_presence: required running or forbidden, .exe optional", () => {
  const processes = [{ name: "explorer.exe", pid: 1 }, "sshd"];
  assert.equal(
    run({ type: "process_presence", process_name: "explorer" }, { processes }).matched,
    false,
  );
  assert.equal(
    run({ type: "process_presence", process_name: "sshd.exe" }, { processes }).matched,
    false,
  );
  assert.equal(
    run({ type: "process_presence", process_name: "backup" }, { processes }).matched,
    true,
  );
  assert.equal(
    run({ type: "process_presence", process_name: "miner", require_running: false }, {
      processes: [{ name: "Miner.exe" }],
    }).matched,
    true,
  );
});

Deno.test("stale telemetry gives stale, never a match; combine() in all and any modes", () => {
  const old = { lastSeen: NOW - 901_000, connected: false, cpuPercent: 99 };
  const cpu = run({ type: "cpu_percent", threshold: 50 }, old);
  assert.equal(cpu.stale, true);
  assert.equal(cpu.matched, false);
  const off = run({ type: "device_offline" }, old);
  assert.equal(combine("all", [cpu]), "stale");
  assert.equal(combine("all", [off, cpu]), "stale");
  assert.equal(combine("any", [off, cpu]), "matched");
  const clear = run({ type: "cpu_percent", threshold: 50 }, { cpuPercent: 1 });
  const hit = run({ type: "cpu_percent", threshold: 50 }, { cpuPercent: 99 });
  assert.equal(combine("all", [hit, clear]), "clear");
  assert.equal(combine("any", [hit, clear]), "matched");
  assert.equal(combine("all", [hit, hit]), "matched");
  assert.equal(combine("any", [clear, cpu]), "stale");
});

Deno.test("criteria hold at most 24 rules", async () => {
  const { Criteria } = await import("./schemas.ts");
  const r = { type: "cpu_percent" };
  assert.equal(Criteria.safeParse({ rules: Array(24).fill(r) }).success, true);
  assert.equal(Criteria.safeParse({ rules: Array(25).fill(r) }).success, false);
  assert.equal(Criteria.safeParse({ rules: [] }).success, false);
});

/** The plan phase of an evaluation, without a database: what opens, resolves and fires. */
import assert from "node:assert/strict";
import { key, type LoadedIncident, planEvaluation, type PlanInput } from "./plan.ts";
import type { DeviceSample } from "./rules.ts";
import { type Policy, PolicyInput } from "./schemas.ts";

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0);
const GUID = "AAAAAAAA-0000-0000-0000-000000000001";
const OTHER = "AAAAAAAA-0000-0000-0000-000000000002";

const policy: Policy = {
  ...PolicyInput.parse({
    name: "Hot CPU",
    criteria: { match_mode: "any", rules: [{ type: "cpu_percent", threshold: 90 }] },
  }),
  id: "11111111-1111-1111-1111-111111111111",
  last_edited_by: null,
  created_at: new Date(NOW - 86_400_000).toISOString(),
  updated_at: new Date(NOW - 86_400_000).toISOString(),
  last_evaluated_at: null,
};

const sample = (guid: string, cpuPercent: number): DeviceSample => ({
  guid,
  hostname: `host-${guid.slice(-1)}`,
  siteId: 1,
  createdAt: NOW - 86_400_000,
  lastSeen: NOW - 1000,
  connected: true,
  lastReboot: null,
  uptime: 3600,
  cpuPercent,
  memoryPercent: 10,
});

const input = (over: Partial<PlanInput> = {}): PlanInput => ({
  policies: [policy],
  targeted: new Map([[policy.id, new Set([GUID])]]),
  devices: new Map([[GUID, sample(GUID, 95)]]),
  states: new Map(),
  incidents: new Map(),
  overrides: new Map(),
  windows: new Map(),
  now: NOW,
  staleMs: 600_000,
  newId: () => "incident-1",
  ...over,
});

Deno.test("plan: a device over the threshold opens one incident, stores its state and fires", () => {
  const plan = planEvaluation(input());
  assert.equal(plan.pairs, 1);
  assert.equal(plan.opens.length, 1);
  assert.equal(plan.opens[0]!.id, "incident-1");
  assert.equal(plan.opens[0]!.hostname, "host-1");
  assert.match(String(plan.opens[0]!.message), /CPU at 95% \(threshold 90%\)/);
  assert.deepEqual(plan.upserts.map((u) => u.key), [key(policy.id, GUID)]);
  assert.deepEqual(plan.fires.map((f) => f.guid), [GUID]);
  assert.deepEqual([...plan.eventful.keys()], [key(policy.id, GUID)]);
  assert.deepEqual(plan.resolves, []);
});

Deno.test("plan: a quiet device costs no write", () => {
  const plan = planEvaluation(input({ devices: new Map([[GUID, sample(GUID, 20)]]) }));
  assert.equal(plan.pairs, 1);
  assert.deepEqual(
    [plan.upserts, plan.deletes, plan.opens, plan.fires, plan.resolves].map((a) => a.length),
    [0, 0, 0, 0, 0],
  );
});

Deno.test("plan: an incident whose device left the targets resolves as target_removed", () => {
  const incident: LoadedIncident = {
    id: "incident-9",
    state: "open",
    hostname: "host-2",
    site_id: 1,
    severity: "warning",
  };
  const plan = planEvaluation(input({
    devices: new Map([[GUID, sample(GUID, 20)], [OTHER, sample(OTHER, 99)]]),
    incidents: new Map([[key(policy.id, OTHER), incident]]),
  }));
  assert.deepEqual(plan.resolves, [{ id: "incident-9", reason: "target_removed" }]);
  assert.deepEqual(plan.changes.map((c) => [c.device_guid, c.change, c.reason]), [
    [OTHER, "resolved", "target_removed"],
  ]);
  assert.equal(plan.opens.length, 0, "the untargeted device opens nothing");
});

Deno.test("plan: a maintenance window holds a matching device (no incident, no action)", () => {
  const plan = planEvaluation(input({
    windows: new Map([[GUID, { windowId: "1", name: "Patch Tuesday", endsAt: NOW + 3_600_000 }]]),
  }));
  assert.equal(plan.opens.length, 0);
  assert.equal(plan.fires.length, 0);
});

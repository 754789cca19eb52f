/** Timelines of the anti-noise state machine (pure; the engine tests repeat them end to end). */
import assert from "node:assert/strict";
import type { Verdict } from "./rules.ts";
import {
  type ActiveIncident,
  type Hold,
  type NoiseSettings,
  step,
  type StepOutput,
  type StoredState,
} from "./state.ts";

const MIN = 60_000;
const base: NoiseSettings = {
  intervalMs: MIN,
  cooldownMs: 15 * MIN,
  autoResolveMs: 5 * MIN,
  minConsecutive: 1,
  bootGraceMs: 0,
};

/** Drives one (policy, device) pair through verdicts, one per minute, like the store would. */
class Pair {
  prev: StoredState | null = null;
  incident: ActiveIncident | null = null;
  now = 0;
  opened = 0;
  resolved: string[] = [];
  triggers = 0;
  fired = 0;
  log: StepOutput[] = [];

  constructor(readonly settings: NoiseSettings = base, readonly offlineOnly = false) {}

  tick(
    verdict: Verdict,
    o: { hold?: Hold | null; lastReboot?: number | null; lastSeen?: number } = {},
  ) {
    this.now += MIN;
    const out = step({
      prev: this.prev,
      incident: this.incident,
      verdict,
      now: this.now,
      settings: this.settings,
      lastReboot: o.lastReboot ?? null,
      hold: o.hold ?? null,
      lastSeen: o.lastSeen ?? this.now,
      offlineOnly: this.offlineOnly,
    });
    this.log.push(out);
    this.prev = out.next;
    if (out.open) {
      this.opened++;
      this.triggers = 1;
      this.incident = { id: `i${this.opened}`, state: "open" };
    }
    if (out.retrigger) this.triggers++;
    if (out.fire) this.fired++;
    if (out.resolve) {
      this.resolved.push(out.resolve);
      this.incident = null;
    }
    return out;
  }
}

Deno.test("state: a flapping device produces one incident whose trigger count rises", () => {
  const p = new Pair();
  for (let i = 0; i < 10; i++) p.tick(i % 2 === 0 ? "matched" : "clear");
  assert.equal(p.opened, 1);
  assert.equal(p.triggers, 5);
  assert.equal(p.resolved.length, 0);
  // Actions fire once: the re-triggers fall inside the 15-minute cooldown.
  assert.equal(p.fired, 1);
});

Deno.test("state: minimum consecutive matches filter out flapping entirely", () => {
  const p = new Pair({ ...base, minConsecutive: 3 });
  for (let i = 0; i < 10; i++) p.tick(i % 3 === 2 ? "clear" : "matched");
  assert.equal(p.opened, 0);
  assert.equal(p.log.at(-1)!.label, "pending");
  assert.equal(p.log.at(-2)!.label, "normal");
  p.tick("matched");
  assert.equal(p.opened, 0);
  p.tick("matched");
  assert.equal(p.opened, 1, "three matches in a row");
});

Deno.test("state: matches count at most once per interval (telemetry every few seconds)", () => {
  const out1 = step({
    prev: null,
    incident: null,
    verdict: "matched",
    now: 0,
    settings: { ...base, minConsecutive: 2 },
    lastReboot: null,
    hold: null,
    lastSeen: 0,
    offlineOnly: false,
  });
  const out2 = step({
    prev: out1.next,
    incident: null,
    verdict: "matched",
    now: 5000,
    settings: { ...base, minConsecutive: 2 },
    lastReboot: null,
    hold: null,
    lastSeen: 5000,
    offlineOnly: false,
  });
  assert.equal(out2.next!.consecutive, 1);
  assert.equal(out2.open, undefined);
});

Deno.test("state: auto-resolve after staying clear, then a recurrence opens a new incident", () => {
  const p = new Pair();
  p.tick("matched");
  for (let i = 0; i < 4; i++) p.tick("clear");
  assert.equal(p.resolved.length, 0, "clear for 3 minutes: still open");
  p.tick("clear");
  p.tick("clear");
  assert.deepEqual(p.resolved, ["auto_resolved"]);
  assert.equal(
    p.prev?.lastActionAt !== undefined,
    true,
    "the action time is kept for the cooldown",
  );
  p.tick("matched");
  assert.equal(p.opened, 2);
  assert.equal(p.fired, 1, "the recurrence is inside the cooldown: no second action");
  for (let i = 0; i < 7; i++) p.tick("clear");
  for (let i = 0; i < 10; i++) p.tick("clear");
  p.tick("matched");
  assert.equal(p.opened, 3);
  assert.equal(p.fired, 2, "past the cooldown: actions fire again");
  p.tick("clear");
  for (let i = 0; i < 30; i++) p.tick("clear");
  assert.equal(p.prev, null, "a quiet device keeps no state row");
});

Deno.test("state: a maintenance window holds matches; after it the count starts afresh", () => {
  const p = new Pair({ ...base, minConsecutive: 2 });
  const hold: Hold = { kind: "window", name: "patching", until: 10 * MIN };
  p.tick("matched", { hold });
  p.tick("matched", { hold });
  p.tick("matched", { hold });
  assert.equal(p.opened, 0);
  assert.equal(p.log.at(-1)!.label, "suppressed");
  assert.equal(p.prev!.consecutive, 0);
  assert.equal(p.prev!.heldUntil, 10 * MIN);
  p.tick("matched");
  assert.equal(p.opened, 0, "just after the window: one match is not enough");
  p.tick("matched");
  assert.equal(p.opened, 1, "still holds after the minimum consecutive matches");
});

Deno.test("state: overrides — suppressed holds, disabled resolves the open incident", () => {
  const p = new Pair();
  p.tick("matched", { hold: { kind: "suppressed", reason: "known", until: null } });
  assert.equal(p.opened, 0);
  p.tick("matched");
  assert.equal(p.opened, 1);
  const out = p.tick("matched", { hold: { kind: "disabled", reason: "retired box" } });
  assert.equal(out.label, "disabled");
  assert.deepEqual(p.resolved, ["device_disabled"]);
});

Deno.test("state: stale telemetry changes nothing; boot grace ignores matches", () => {
  const p = new Pair();
  p.tick("stale");
  assert.equal(p.log[0]!.label, "stale_data");
  assert.equal(p.opened, 0);
  const g = new Pair({ ...base, bootGraceMs: 10 * MIN });
  g.tick("matched", { lastReboot: 0 });
  assert.equal(g.opened, 0);
  g.tick("matched", { lastReboot: -20 * MIN });
  assert.equal(g.opened, 1);
});

Deno.test("state: offline-only incidents resolve as soon as the device returns", () => {
  const p = new Pair(base, true);
  p.tick("matched");
  p.tick("clear");
  assert.deepEqual(p.resolved, ["device returned"]);
});

Deno.test("state: an operator-suppressed incident re-triggers without actions", () => {
  const p = new Pair({ ...base, cooldownMs: 0 });
  p.tick("matched");
  p.incident = { id: "i1", state: "suppressed" };
  p.tick("clear");
  p.tick("matched");
  assert.equal(p.triggers, 2);
  assert.equal(p.fired, 1);
});

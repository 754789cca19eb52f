import assert from "node:assert/strict";
import { ManualClock } from "../../core/clock.ts";
import { type LiveSource, presenceOf, PresenceService } from "./presence.ts";

const t = { offlineMs: 120_000, overdueMs: 1_800_000 };
const now = Date.UTC(2026, 0, 5, 12);
const ago = (s: number) => now - s * 1000;

Deno.test("presence: online inside the offline threshold, overdue from its own, never heard is offline", () => {
  assert.equal(presenceOf(null, now, t), "offline");
  assert.equal(presenceOf(ago(0), now, t), "online");
  assert.equal(presenceOf(ago(119.999), now, t), "online");
  assert.equal(presenceOf(ago(120), now, t), "offline"); // the threshold itself is offline
  assert.equal(presenceOf(ago(1799), now, t), "offline");
  assert.equal(presenceOf(ago(1800), now, t), "overdue");
  // A device heard from "in the future" (clock skew between instances) is online.
  assert.equal(presenceOf(now + 5000, now, t), "online");
});

Deno.test("presence: the service asks the live source and judges on the injected clock", () => {
  const clock = new ManualClock(now);
  const svc = new PresenceService(clock, t);
  // Without a live source the stored last_seen is the truth.
  assert.equal(svc.state("abc", new Date(ago(200))), "offline");
  const open = new Set(["ABC"]);
  const source: LiveSource = {
    lastHeard: (guid, stored) => (open.has(guid) ? clock.now() : stored),
    sync: () => Promise.resolve(),
    grace: () => null,
  };
  svc.attach(source);
  assert.throws(() => svc.attach(source), /already attached/);
  // An open socket counts as heard from now, whatever the stored column says (GUIDs in
  // any case).
  assert.equal(svc.state("abc", new Date(ago(5000))), "online");
  open.clear();
  assert.equal(svc.state("abc", ago(5000)), "overdue");
  assert.equal(svc.state("abc", null), "offline");
});

import assert from "node:assert/strict";
import { DeviceStatusRule } from "./status.ts";

Deno.test("status rule: online within the window, overdue from its threshold, never seen is offline", () => {
  const rule = new DeviceStatusRule({ onlineSeconds: 300, overdueSeconds: 1800 });
  const now = Date.UTC(2026, 0, 5, 12);
  const ago = (s: number) => now - s * 1000;
  assert.equal(rule.state(null, now), "offline");
  assert.equal(rule.state(ago(0), now), "online");
  assert.equal(rule.state(ago(300), now), "online"); // the boundary is still online
  assert.equal(rule.state(ago(301), now), "offline");
  assert.equal(rule.state(new Date(ago(1799)), now), "offline");
  assert.equal(rule.state(ago(1800), now), "offline"); // overdue only beyond
  assert.equal(rule.state(ago(1801), now), "overdue");
  // An overdue threshold below the online window never makes an online device overdue.
  const odd = new DeviceStatusRule({ onlineSeconds: 600, overdueSeconds: 60 });
  assert.equal(odd.state(ago(300), now), "online");
  assert.equal(odd.state(ago(601), now), "overdue");
});

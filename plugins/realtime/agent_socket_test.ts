import assert from "node:assert/strict";
import { reconnectWindow, shutdownReason } from "./agent_socket.ts";

Deno.test("shutdown: the reconnect window opens after the drain and fits the fleet into the accept rate", () => {
  assert.deepEqual(reconnectWindow(300, 1000, 30_000), { from: 1060, to: 3060 });
  // 19,000 agents at 1,000 accepts/s: ~4.8 s to close them, ~24 s to take them back.
  assert.deepEqual(reconnectWindow(19_000, 1000, 30_000), { from: 4800, to: 28_550 });
  assert.deepEqual(reconnectWindow(19_000, 1000, 10_000), { from: 4800, to: 10_000 });
  assert.deepEqual(reconnectWindow(19_000, 0, 60_000).to, 4800 + 11_875, "limiter off: 2,000/s");
  assert.deepEqual(reconnectWindow(100_000, 1000, 5_000), { from: 5000, to: 5000 });
});

Deno.test("shutdown: each agent's delay is drawn from the window and named in the close reason", () => {
  const w = { from: 2000, to: 4000 };
  assert.equal(shutdownReason(w, () => 0), "engine shutting down; reconnect_after_ms=2000");
  assert.equal(shutdownReason(w, () => 0.999999), "engine shutting down; reconnect_after_ms=3999");
  const seen = new Set(Array.from({ length: 200 }, () => shutdownReason(w)));
  assert.ok(seen.size > 100);
  for (const r of seen) assert.ok(new TextEncoder().encode(r).length <= 123, "fits a close frame");
});

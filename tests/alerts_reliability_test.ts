/**
 * Delivery that holds up when receivers do not: retries with backoff on the injected
 * clock until the dead letter, the receiver's Retry-After, permanent failures, a retry
 * from the API, per-channel rate limits, and a hung endpoint that neither blocks the
 * worker's cycle nor the watchdog evaluation.
 */
import assert from "node:assert/strict";
import { type DeliveryDead, deliveryDead } from "../plugins/alerts/mod.ts";
import { startAlerts } from "../plugins/alerts/testing/harness.ts";
import { watchdogsKey } from "../plugins/watchdogs/mod.ts";

const cpu = { type: "cpu_percent", threshold: 90 };

async function until(pred: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("alerts reliability: retries with backoff, then the dead letter; Retry-After; retry from the API", async () => {
  const h = await startAlerts({
    BOREALIS_ALERTS_MAX_ATTEMPTS: "3",
    BOREALIS_ALERTS_RETRY_BASE_SECONDS: "30",
  });
  try {
    const dead: DeliveryDead[] = [];
    h.t.engine.events.subscribe(deliveryDead, (d) => void dead.push(d));
    const hook = await h.webhook();
    await h.route({ channel_ids: [hook.id] });
    const a = await h.enrolled("flaky-1");
    await h.policy({
      name: "cpu",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [cpu] },
    });
    h.receiver.mode = { kind: "fail", status: 503 };
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.flush();

    await h.deliver();
    assert.equal(h.receiver.received.length, 1);
    let [d] = await h.log();
    assert.equal(d!.status, "queued");
    assert.equal(d!.attempts, 1);
    assert.equal(d!.last_error, "HTTP 503");
    assert.equal(d!.response_status, 503);
    const wait1 = Date.parse(String(d!.next_attempt_at)) - h.t.clock.now();
    assert.ok(wait1 >= 15_000 && wait1 <= 30_000, `first retry in 15–30 s, got ${wait1}`);

    // Not before its time.
    await h.t.clock.advance(wait1 - 1000);
    await h.deliver();
    assert.equal(h.receiver.received.length, 1);
    await h.t.clock.advance(1000);
    await h.deliver();
    assert.equal(h.receiver.received.length, 2);
    [d] = await h.log();
    const wait2 = Date.parse(String(d!.next_attempt_at)) - h.t.clock.now();
    assert.ok(wait2 >= 30_000 && wait2 <= 60_000, `second retry in 30–60 s, got ${wait2}`);

    await h.t.clock.advance(wait2);
    await h.deliver();
    assert.equal(h.receiver.received.length, 3);
    [d] = await h.log();
    assert.equal(d!.status, "dead", "the third attempt was the last");
    assert.equal(d!.attempts, 3);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.delivery_id, d!.id);
    assert.equal(dead[0]!.last_error, "HTTP 503");
    await h.t.clock.advance(600_000);
    await h.deliver();
    assert.equal(h.receiver.received.length, 3, "a dead letter is never tried again by itself");
    // All three attempts carried the same delivery id, so a receiver can de-duplicate.
    assert.equal(new Set(h.receiver.received.map((r) => r.json.delivery_id)).size, 1);

    // An admin puts it back; the receiver recovered.
    h.receiver.mode = { kind: "ok" };
    const retried = await h.op(`/api/alerts/deliveries/${d!.id}/retry`, { method: "POST" });
    assert.equal(retried.status, 200);
    assert.equal((await retried.json()).status, "queued");
    await h.deliver();
    [d] = await h.log();
    assert.equal(d!.status, "delivered");
    assert.equal(d!.attempts, 1);
    const again = await h.op(`/api/alerts/deliveries/${d!.id}/retry`, { method: "POST" });
    assert.equal(again.status, 409);
    assert.equal((await again.json()).error, "not_dead");

    // 429 with Retry-After: wait exactly as long as asked.
    h.receiver.mode = { kind: "fail", status: 429, retryAfter: "120" };
    const ack = await h.incidentsOf(a.guid);
    await (await h.op(`/api/watchdogs/incidents/${ack[0]!.id}/acknowledge`, { method: "POST" }))
      .body?.cancel();
    await h.deliver();
    [d] = await h.log();
    assert.equal(d!.kind, "acknowledged");
    assert.equal(d!.status, "queued");
    assert.equal(Date.parse(String(d!.next_attempt_at)) - h.t.clock.now(), 120_000);

    // A 404 will not fix itself: dead at once.
    h.receiver.mode = { kind: "fail", status: 404, body: "no_service" };
    await h.t.clock.advance(120_000);
    await h.deliver();
    [d] = await h.log();
    assert.equal(d!.status, "dead");
    assert.equal(d!.attempts, 2);
    assert.equal(d!.response_excerpt, "no_service");
    assert.equal(dead.length, 2);
  } finally {
    await h.close();
  }
});

Deno.test("alerts reliability: a channel's rate limit spreads a burst over minutes", async () => {
  const h = await startAlerts();
  try {
    const hook = await h.webhook({ rate_per_minute: 3 });
    await h.route({ channel_ids: [hook.id] });
    const devices = [];
    for (let i = 0; i < 5; i++) devices.push(await h.enrolled(`burst-${i}`));
    await h.policy({
      name: "cpu",
      targets: devices.map((d) => ({ kind: "device", device_guid: d.guid })),
      criteria: { rules: [cpu] },
    });
    for (const d of devices) await h.heartbeat(d, { cpu_percent: 99 });
    await h.flush();
    await h.deliver();
    assert.equal(h.receiver.received.length, 3, "three in the first minute");
    await h.t.clock.advance(30_000);
    await h.deliver();
    assert.equal(h.receiver.received.length, 3, "still the same minute");
    await h.t.clock.advance(31_000);
    await h.deliver();
    assert.equal(h.receiver.received.length, 5);
    const hosts = h.receiver.received.map((r) =>
      (r.json.incident as { hostname: string }).hostname
    );
    assert.deepEqual(hosts.sort(), devices.map((_, i) => `burst-${i}`));
  } finally {
    await h.close();
  }
});

Deno.test("alerts reliability: a hung endpoint holds neither the worker nor the evaluation", async () => {
  const h = await startAlerts({ BOREALIS_ALERTS_TIMEOUT_MS: "1500" });
  try {
    const hook = await h.webhook();
    await h.route({ channel_ids: [hook.id] });
    const a = await h.enrolled("hang-a");
    const b = await h.enrolled("hang-b");
    await h.policy({
      name: "cpu",
      targets: [a, b].map((d) => ({ kind: "device", device_guid: d.guid })),
      criteria: { rules: [cpu] },
    });
    h.receiver.mode = { kind: "hang" };
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.flush();

    // The cycle returns while its send is still waiting for an answer.
    const stats = await h.api.cycle();
    assert.equal(stats.claimed, 1);
    await until(() => h.receiver.hanging === 1);
    assert.equal(h.api.inFlight, 1, "the send is still in flight");

    // An evaluation opening another incident completes, and writes its outbox row, while
    // the endpoint still holds the first request open.
    await h.heartbeat(b, { cpu_percent: 99 });
    const evaluated = await h.t.engine.service(watchdogsKey).service.runFor([b.guid]);
    assert.equal(evaluated.opened, 1);
    assert.equal(h.receiver.hanging, 1, "the first request is still hanging");
    assert.equal(h.api.inFlight, 1);
    const [n] = await h.t.engine.sql<{ n: number }[]>`select count(*)::int as n from alert_events`;
    assert.equal(n!.n, 2);

    // The worker's next cycle sends the new message beside the hung one.
    await h.api.cycle();
    await until(() => h.receiver.received.length === 2);
    assert.equal(h.receiver.hanging, 2);

    // Both time out on their own (real time, bounded by BOREALIS_ALERTS_TIMEOUT_MS) and
    // wait for a retry.
    await h.api.drain();
    const log = await h.log();
    assert.equal(log.length, 2);
    for (const d of log) {
      assert.equal(d.status, "queued");
      assert.equal(d.last_error, "no complete answer within 1500 ms");
    }
    h.receiver.release();
  } finally {
    await h.close();
  }
});

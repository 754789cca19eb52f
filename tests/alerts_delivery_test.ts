/**
 * Alerts end to end against a real webhook receiver: an incident's events (opened,
 * escalated by trigger count and by severity, acknowledged, resolved) go from the
 * watchdogs transaction through the outbox to the receiver, signed; the outbox row
 * exists exactly when the incident change does; the delivery log shows every attempt.
 */
import assert from "node:assert/strict";
import { startAlerts } from "../plugins/alerts/testing/harness.ts";

const cpu = { type: "cpu_percent", threshold: 90 };

Deno.test("alerts: an incident's life reaches a signed webhook, one message per event", async () => {
  const h = await startAlerts();
  try {
    const hook = await h.webhook();
    await h.route({ name: "everything", watchdog_id: null, channel_ids: [hook.id] });
    const a = await h.enrolled("alert-host-1");
    const w = await h.policy({
      name: "hot cpu",
      severity: "warning",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [cpu] },
      auto_resolve_after_seconds: 300,
    });

    await h.heartbeat(a, { cpu_percent: 99 });
    await h.flush();
    const [incident] = await h.incidentsOf(a.guid);
    assert.ok(incident, "an incident opened");
    const events = await h.t.engine.sql<{ kind: string; incident_id: string }[]>`
      select kind, incident_id from alert_events order by id`;
    assert.deepEqual(events.map((e) => [e.kind, e.incident_id]), [["opened", incident.id]]);
    assert.equal(h.receiver.received.length, 0, "nothing is sent by the evaluation itself");

    await h.deliver();
    assert.equal(h.receiver.received.length, 1);
    const opened = h.receiver.received[0]!;
    assert.equal(opened.verified, true, "the HMAC signature checks out");
    assert.equal(opened.headers.get("x-borealis-event"), "incident.opened");
    assert.equal(opened.json.type, "incident.opened");
    assert.equal(opened.json.version, 1);
    assert.equal(opened.json.delivery_id, opened.headers.get("x-borealis-delivery"));
    const inc = opened.json.incident as Record<string, unknown>;
    assert.equal(inc.id, incident.id);
    assert.equal(inc.hostname, "alert-host-1");
    assert.equal(inc.severity, "warning");
    assert.equal(inc.watchdog_name, "hot cpu");
    assert.match(String(inc.url), new RegExp(`/alerts\\?incident=${incident.id}$`));
    assert.match(String(inc.device_url), new RegExp(`/devices/${a.guid}$`));

    // Acknowledged: one message, and a second acknowledgement is not news.
    for (let i = 0; i < 2; i++) {
      const ack = await h.op(`/api/watchdogs/incidents/${incident.id}/acknowledge`, {
        method: "POST",
      });
      assert.equal(ack.status, 200);
    }
    await h.deliver();
    assert.deepEqual(h.receiver.received.map((r) => r.json.type), [
      "incident.opened",
      "incident.acknowledged",
    ]);
    assert.ok(
      ((h.receiver.received[1]!.json.incident as Record<string, unknown>).acknowledged_by as string)
        .startsWith("admin-"),
    );

    // Escalated by trigger count: clear, then match again before the auto-resolve.
    await h.tick(60_000);
    await h.heartbeat(a, { cpu_percent: 10 });
    await h.flush();
    await h.tick(60_000);
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.flush();
    await h.deliver();
    const escalated = h.receiver.received[2]!;
    assert.equal(escalated.json.type, "incident.escalated");
    assert.equal(escalated.json.reason, "trigger_count");
    assert.equal((escalated.json.incident as Record<string, unknown>).trigger_count, 2);

    // Escalated by severity: the policy is raised to error while the incident is open.
    const {
      id: _id,
      last_edited_by: _l,
      created_at: _c,
      updated_at: _u,
      last_evaluated_at: _e,
      ...body
    } = w;
    const put = await h.op(`/api/watchdogs/${w.id}`, {
      method: "PUT",
      json: { ...body, severity: "error" },
    });
    assert.equal(put.status, 200, await put.clone().text());
    await h.deliver();
    const raised = h.receiver.received[3]!;
    assert.equal(raised.json.type, "incident.escalated");
    assert.equal(raised.json.reason, "severity");
    assert.equal(raised.json.previous_severity, "warning");
    assert.equal((raised.json.incident as Record<string, unknown>).severity, "error");

    // Resolved after the clear spell.
    await h.heartbeat(a, { cpu_percent: 5 });
    await h.flush();
    await h.tick(6 * 60_000);
    await h.heartbeat(a, { cpu_percent: 5 });
    await h.flush();
    await h.deliver();
    const resolved = h.receiver.received.at(-1)!;
    assert.equal(resolved.json.type, "incident.resolved");
    assert.equal(resolved.json.reason, "auto_resolved");
    assert.equal(h.receiver.received.length, 5, "one message per event, no more");
    assert.ok(h.receiver.received.every((r) => r.verified === true));

    // The delivery log: five delivered messages, one attempt each.
    const log = await h.log(`&channel_id=${hook.id}`);
    assert.equal(log.length, 5);
    assert.ok(log.every((d) => d.status === "delivered" && d.attempts === 1));
    assert.deepEqual(
      log.map((d) => d.kind).reverse(),
      ["opened", "acknowledged", "escalated", "escalated", "resolved"],
    );
    assert.ok(log.every((d) => d.title === "hot cpu: alert-host-1"));
  } finally {
    await h.close();
  }
});

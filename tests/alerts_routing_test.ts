/**
 * Routing, quiet hours and digests on the injected clock, with real receivers: a
 * watchdog's own route replaces the default routes; default routes filter by severity
 * and site; chat channels (Slack, Discord, Teams) get their own shapes; quiet hours hold
 * messages below the breakthrough severity and release them as one digest; a digest
 * channel sends one message per window.
 */
import assert from "node:assert/strict";
import { startAlerts } from "../plugins/alerts/testing/harness.ts";
import { createOperator } from "./helpers/operators.ts";

const cpu = { type: "cpu_percent", threshold: 90 };
const MIN = 60_000;

Deno.test("alerts routing: own routes, default routes by severity and site, chat shapes", async () => {
  const h = await startAlerts();
  try {
    const hook = await h.webhook();
    const slack = await h.channel({
      kind: "slack",
      name: "slack",
      url: `${h.receiver.url}/slack/T0/B0/xyz`,
    });
    const discord = await h.channel({
      kind: "discord",
      name: "discord",
      url: `${h.receiver.url}/discord/1/abc`,
    });
    const teams = await h.channel({
      kind: "teams",
      name: "teams",
      url: `${h.receiver.url}/teams/wf`,
    });
    assert.equal(slack.signing_secret, null);
    assert.equal(
      (slack.channel.config as { url_hint: string }).url_hint,
      `${h.receiver.url}/…`,
      "the path (a token) is hidden",
    );
    assert.equal(JSON.stringify(slack.channel).includes("xyz"), false);

    const site2 = await h.createSite("Second");
    const a = await h.enrolled("route-a");
    const b = await h.enrolled("route-b", site2.enrollment_code);
    const own = await h.policy({
      name: "own route",
      severity: "warning",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [cpu] },
    });
    await h.policy({
      name: "defaults",
      severity: "error",
      targets: [a, b].map((d) => ({ kind: "device", device_guid: d.guid })),
      criteria: { rules: [{ type: "memory_percent", threshold: 90 }] },
    });
    await h.route({ name: "own", watchdog_id: own.id, channel_ids: [hook.id], events: ["opened"] });
    await h.route({ name: "errors", min_severity: "error", channel_ids: [slack.channel.id] });
    await h.route({
      name: "site 2",
      site_ids: [site2.id],
      channel_ids: [discord.channel.id, teams.channel.id],
    });
    await h.route({
      name: "warnings of site 2 only",
      min_severity: "warning",
      site_ids: [site2.id],
      channel_ids: [teams.channel.id],
    });

    await h.heartbeat(a, { cpu_percent: 99, memory_percent: 99 });
    await h.heartbeat(b, { cpu_percent: 99, memory_percent: 99 });
    await h.flush();
    await h.deliver();
    const by = (path: string) =>
      h.receiver.received.filter((r) => r.path.startsWith(path)).map((r) => r);
    // "own route" (device a) has its own route: only the webhook.
    assert.equal(by("/hook").length, 1);
    assert.equal(
      (by("/hook")[0]!.json.incident as { watchdog_name: string }).watchdog_name,
      "own route",
    );
    // "defaults" on a (site 1): errors → Slack. On b (site 2): Slack, Discord, Teams once.
    assert.equal(by("/slack").length, 2);
    assert.equal(by("/discord").length, 1);
    assert.equal(by("/teams").length, 1, "two routes name Teams; one message");
    assert.equal(h.receiver.received.length, 5);

    const s = by("/slack")[0]!.json as { text: string; blocks: unknown[] };
    assert.match(s.text, /^\[ERROR\] Opened: defaults: route-/);
    const d = by("/discord")[0]!.json as {
      embeds: Array<{ url: string }>;
      allowed_mentions: unknown;
    };
    assert.match(d.embeds[0]!.url, /\/alerts\?incident=/);
    const t = by("/teams")[0]!.json as {
      type: string;
      attachments: Array<{ contentType: string }>;
    };
    assert.equal(t.type, "message");
    assert.equal(t.attachments[0]!.contentType, "application/vnd.microsoft.card.adaptive");
    // Only the generic webhook is signed.
    assert.equal(by("/slack")[0]!.headers.get("x-borealis-signature"), null);
    assert.ok(by("/hook")[0]!.headers.get("x-borealis-signature"));

    // The own route asks for "opened" only: an acknowledgement goes nowhere (the defaults
    // do not step in for a watchdog with its own route).
    const [inc] = (await h.incidentsOf(a.guid)).filter((i) => i.watchdog_id === own.id);
    await (await h.op(`/api/watchdogs/incidents/${inc!.id}/acknowledge`, { method: "POST" })).body
      ?.cancel();
    await h.deliver();
    assert.equal(h.receiver.received.length, 5);

    // Route validation.
    const bad = async (body: Record<string, unknown>, status: number, code?: string) => {
      const res = await h.op("/api/alerts/routes", { json: { name: "x", ...body } });
      assert.equal(res.status, status, JSON.stringify(body));
      const j = await res.json();
      if (code) assert.equal(j.error, code);
    };
    await bad({ channel_ids: [crypto.randomUUID()] }, 400, "unknown_channel");
    await bad({ channel_ids: [hook.id], watchdog_id: crypto.randomUUID() }, 404);
    await bad({ channel_ids: [hook.id], site_ids: [99999] }, 404);
    await bad({ channel_ids: [hook.id], events: ["exploded"] }, 400, "validation_failed");
    await bad({ channel_ids: [] }, 400, "validation_failed");
    const list = await (await h.op(`/api/alerts/routes?watchdog_id=${own.id}`)).json();
    assert.equal(list.items.length, 1);

    // Deleting a channel drops it from routes.
    assert.equal(
      (await h.op(`/api/alerts/channels/${teams.channel.id}`, { method: "DELETE" })).status,
      204,
    );
    const all = await (await h.op("/api/alerts/routes")).json();
    assert.ok(
      all.items.every((r: { channel_ids: string[] }) => !r.channel_ids.includes(teams.channel.id)),
    );

    // Users may not manage alerting.
    const user = await createOperator(h.t, { role: "User", sites: [h.site.id] });
    assert.equal((await h.op("/api/alerts/channels", { as: user })).status, 403);
    assert.equal((await h.op("/api/alerts/deliveries", { as: user })).status, 403);
  } finally {
    await h.close();
  }
});

Deno.test("alerts quiet hours: held below the breakthrough severity, released together as one digest", async () => {
  const h = await startAlerts();
  try {
    // The clock starts at 2026-01-05 12:00 UTC = 13:00 in Berlin: inside 13:00–13:10.
    const hook = await h.webhook({
      quiet_hours: {
        start: "13:00",
        end: "13:10",
        time_zone: "Europe/Berlin",
        breakthrough_severity: "error",
      },
    });
    await h.route({ channel_ids: [hook.id] });
    const [a, b, c] = [
      await h.enrolled("quiet-a"),
      await h.enrolled("quiet-b"),
      await h.enrolled("quiet-c"),
    ];
    await h.policy({
      name: "warn",
      severity: "warning",
      targets: [a, b].map((d) => ({ kind: "device", device_guid: d.guid })),
      criteria: { rules: [cpu] },
    });
    await h.policy({
      name: "page",
      severity: "error",
      targets: [{ kind: "device", device_guid: c.guid }],
      criteria: { rules: [cpu] },
    });
    for (const d of [a, b, c]) await h.heartbeat(d, { cpu_percent: 99 });
    await h.flush();
    await h.deliver();
    assert.equal(h.receiver.received.length, 1, "only the error breaks through");
    assert.equal(
      (h.receiver.received[0]!.json.incident as { hostname: string }).hostname,
      "quiet-c",
    );
    const held = (await h.log()).filter((d) => d.status === "held");
    assert.equal(held.length, 2);
    for (const d of held) {
      assert.equal(d.held_reason, "quiet_hours");
      assert.equal(d.hold_until, "2026-01-05T12:10:00.000Z");
    }

    await h.tick(9 * MIN);
    await h.deliver();
    assert.equal(h.receiver.received.length, 1, "still quiet at 13:09");
    await h.tick(MIN);
    await h.deliver();
    assert.equal(h.receiver.received.length, 2);
    const digest = h.receiver.received[1]!;
    assert.equal(digest.verified, true);
    assert.equal(digest.json.type, "digest");
    assert.equal(digest.json.reason, "quiet_hours");
    assert.equal(digest.json.count, 2);
    const hosts = (digest.json.items as Array<{ incident: { hostname: string } }>).map((i) =>
      i.incident.hostname
    );
    assert.deepEqual(hosts.sort(), ["quiet-a", "quiet-b"]);
    const log = await h.log();
    const dig = log.find((d) => d.kind === "digest")!;
    assert.equal(dig.status, "delivered");
    assert.equal(dig.digest_count, 2);
    assert.equal(log.filter((d) => d.status === "digested" && d.digest_id === dig.id).length, 2);
  } finally {
    await h.close();
  }
});

Deno.test("alerts digest: one message per window per channel", async () => {
  const h = await startAlerts();
  try {
    const hook = await h.webhook({ digest_minutes: 5 });
    await h.route({ channel_ids: [hook.id] });
    const devices = [];
    for (let i = 0; i < 4; i++) devices.push(await h.enrolled(`digest-${i}`));
    await h.policy({
      name: "cpu",
      targets: devices.map((d) => ({ kind: "device", device_guid: d.guid })),
      criteria: { rules: [cpu] },
    });
    for (const d of devices.slice(0, 3)) await h.heartbeat(d, { cpu_percent: 99 });
    await h.flush();
    await h.deliver();
    assert.equal(h.receiver.received.length, 0);
    await h.tick(2 * MIN);
    await h.heartbeat(devices[3]!, { cpu_percent: 99 });
    await h.flush();
    await h.deliver();
    assert.equal(
      h.receiver.received.length,
      0,
      "the window opened by the first event is still open",
    );
    await h.tick(3 * MIN);
    await h.deliver();
    assert.equal(h.receiver.received.length, 1);
    assert.equal(h.receiver.received[0]!.json.type, "digest");
    assert.equal(h.receiver.received[0]!.json.count, 4);

    // A single event in a window goes out as itself.
    const [inc] = await h.incidentsOf(devices[0]!.guid);
    await (await h.op(`/api/watchdogs/incidents/${inc!.id}/acknowledge`, { method: "POST" })).body
      ?.cancel();
    await h.deliver();
    assert.equal(h.receiver.received.length, 1);
    await h.tick(5 * MIN);
    await h.deliver();
    assert.equal(h.receiver.received.length, 2);
    assert.equal(h.receiver.received[1]!.json.type, "incident.acknowledged");
  } finally {
    await h.close();
  }
});

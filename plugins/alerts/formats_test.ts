import assert from "node:assert/strict";
import type { AlertMessage, EventItem } from "./api.ts";
import {
  discordBody,
  emailContent,
  genericBody,
  headline,
  slackBody,
  teamsBody,
} from "./formats.ts";

const item = (
  over: Partial<EventItem["incident"]> = {},
  type: EventItem["type"] = "incident.opened",
): EventItem => ({
  type,
  occurred_at: "2026-01-05T12:00:00.000Z",
  reason: null,
  previous_severity: null,
  incident: {
    id: "7c1a3a39-0f4c-4b8e-9d35-1d6f1b2e2a11",
    url: "https://rmm.example.com/alerts?incident=7c1a3a39-0f4c-4b8e-9d35-1d6f1b2e2a11",
    watchdog_id: "0b0d6c1e-3a3b-4c55-8f0e-2d9c7f6b1a22",
    watchdog_name: "CPU",
    device_guid: "5F0A3E7C-1B2D-4C3E-8F9A-0B1C2D3E4F50",
    device_url: "https://rmm.example.com/devices/5F0A3E7C-1B2D-4C3E-8F9A-0B1C2D3E4F50",
    hostname: "web-01",
    site_id: 3,
    severity: "error",
    state: "open",
    title: "CPU: web-01",
    message: "cpu 97% ≥ 90%",
    trigger_count: 1,
    opened_at: "2026-01-05T12:00:00.000Z",
    resolved_at: null,
    resolution_reason: null,
    acknowledged_at: null,
    acknowledged_by: null,
    ...over,
  },
});
const one = (it: EventItem): AlertMessage => ({
  type: "incident",
  deliveryId: "d-1",
  sentAt: "2026-01-05T12:00:01.000Z",
  item: it,
});

Deno.test("formats: the generic body is the versioned item with delivery id and time", () => {
  const b = genericBody(one(item()));
  assert.equal(b.version, 1);
  assert.equal(b.type, "incident.opened");
  assert.equal(b.delivery_id, "d-1");
  assert.equal(b.sent_at, "2026-01-05T12:00:01.000Z");
  assert.equal((b.incident as { url: string }).url, item().incident.url);
  const digest = genericBody({
    type: "digest",
    deliveryId: "d-2",
    sentAt: "x",
    items: [item(), item({}, "incident.resolved")],
    reason: "quiet_hours",
  });
  assert.equal(digest.type, "digest");
  assert.equal(digest.count, 2);
  assert.equal(digest.reason, "quiet_hours");
});

Deno.test("formats: text from devices is escaped and mentions are disabled", () => {
  const evil = item({ hostname: "<!channel> @everyone", title: "CPU: <!channel> & co" });
  const slack = JSON.stringify(slackBody(one(evil)));
  assert.ok(!slack.includes("<!channel>"), slack);
  assert.ok(slack.includes("&lt;!channel&gt;"));
  assert.ok(slack.includes(`<${evil.incident.url}|`), "the link survives escaping");
  const discord = discordBody(one(evil)) as { allowed_mentions: { parse: unknown[] } };
  assert.deepEqual(discord.allowed_mentions.parse, []);
  const mail = emailContent(one(item({ title: "a\r\nBcc: x@evil.example", message: "<script>" })));
  assert.ok(!/[\r\n]/.test(mail.subject), "no header injection through the subject");
  assert.ok(!mail.html.includes("<script>"));
  assert.ok(mail.html.includes("&lt;script&gt;"));
});

Deno.test("formats: each kind links to the incident and says what happened", () => {
  const resolved = item(
    { resolution_reason: "auto_resolved", state: "resolved" },
    "incident.resolved",
  );
  assert.equal(headline(resolved), "[ERROR] Resolved: CPU: web-01");
  const teams = teamsBody(one(resolved)) as {
    attachments: Array<
      { contentType: string; content: { type: string; actions: Array<{ url: string }> } }
    >;
  };
  assert.equal(teams.attachments[0]!.contentType, "application/vnd.microsoft.card.adaptive");
  assert.equal(teams.attachments[0]!.content.type, "AdaptiveCard");
  assert.equal(teams.attachments[0]!.content.actions[0]!.url, resolved.incident.url);
  const discord = discordBody(one(resolved)) as {
    embeds: Array<{ url: string; color: number; description: string }>;
  };
  assert.equal(discord.embeds[0]!.url, resolved.incident.url);
  assert.equal(discord.embeds[0]!.color, 0x2ecc71);
  assert.match(discord.embeds[0]!.description, /auto_resolved/);
  const escalated: EventItem = {
    ...item({ trigger_count: 4 }, "incident.escalated"),
    reason: "severity",
    previous_severity: "warning",
  };
  assert.match(emailContent(one(escalated)).text, /Severity raised from warning to error/);
  const mail = emailContent(one(item()));
  assert.equal(mail.subject, "[Borealis] [ERROR] Opened: CPU: web-01");
  assert.ok(mail.text.includes(item().incident.url));
});

Deno.test("formats: a digest lists a bounded number of items and counts the rest", () => {
  const items = Array.from({ length: 40 }, (_, i) => item({ title: `CPU: host-${i}` }));
  const m: AlertMessage = { type: "digest", deliveryId: "d", sentAt: "x", items, reason: "digest" };
  const slack = JSON.stringify(slackBody(m));
  assert.ok(slack.includes("host-24") && !slack.includes("host-25|"));
  assert.ok(slack.includes("and 15 more"));
  assert.match(
    String((discordBody(m) as { embeds: Array<{ title: string }> }).embeds[0]!.title),
    /^40 incident events/,
  );
  assert.match(emailContent(m).subject, /40 incident events in this digest/);
});

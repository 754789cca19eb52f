import assert from "node:assert/strict";
import { channelsFor, holdOf, type OutboxEvent, plan, type RoutingConfig } from "./routing.ts";
import type { ChannelRow, RouteRow } from "./store.ts";

const W1 = "11111111-1111-4111-8111-111111111111";
const W2 = "22222222-2222-4222-8222-222222222222";
const ev = (o: Partial<OutboxEvent> = {}): OutboxEvent => ({
  id: "1",
  kind: "opened",
  incident_id: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
  watchdog_id: W1,
  site_id: 1,
  severity: "warning",
  ...o,
});
const route = (o: Partial<RouteRow>): RouteRow => ({
  id: crypto.randomUUID(),
  name: "r",
  enabled: true,
  watchdog_id: null,
  min_severity: "info",
  site_ids: [],
  events: ["opened", "escalated", "acknowledged", "resolved"],
  channel_ids: [],
  created_by: null,
  created_at: new Date(),
  updated_at: new Date(),
  ...o,
});
const channel = (id: string, o: Partial<ChannelRow> = {}): ChannelRow => ({
  id,
  name: id,
  kind: "webhook",
  enabled: true,
  config_json: {},
  secrets_sealed: "aegis:v1:x:y",
  rate_per_minute: 60,
  digest_minutes: 0,
  quiet_hours_json: null,
  operator_mail: false,
  created_by: null,
  created_at: new Date(),
  updated_at: new Date(),
  ...o,
});

Deno.test("routing: a watchdog's own routes replace the defaults; filters by event, severity, site", () => {
  const routes = [
    route({ channel_ids: ["default"] }),
    route({ channel_ids: ["errors"], min_severity: "error" }),
    route({ channel_ids: ["site2"], site_ids: [2] }),
    route({ watchdog_id: W2, channel_ids: ["own"], events: ["opened"] }),
    route({ watchdog_id: W2, channel_ids: ["off"], enabled: false }),
  ];
  assert.deepEqual([...channelsFor(ev(), routes)], ["default"]);
  assert.deepEqual([...channelsFor(ev({ severity: "error" }), routes)].sort(), [
    "default",
    "errors",
  ]);
  assert.deepEqual([...channelsFor(ev({ site_id: 2 }), routes)].sort(), ["default", "site2"]);
  assert.deepEqual([...channelsFor(ev({ site_id: null }), routes)], ["default"]);
  // W2 has its own (enabled) route: defaults do not apply, even for events it skips.
  assert.deepEqual([...channelsFor(ev({ watchdog_id: W2 }), routes)], ["own"]);
  assert.deepEqual([...channelsFor(ev({ watchdog_id: W2, kind: "resolved" }), routes)], []);
  // Only a disabled own route: the defaults apply again.
  const onlyOff = routes.filter((r) => r.channel_ids[0] !== "own");
  assert.deepEqual([...channelsFor(ev({ watchdog_id: W2 }), onlyOff)], ["default"]);
  // One message per channel however many routes name it.
  assert.deepEqual([
    ...channelsFor(ev(), [route({ channel_ids: ["a"] }), route({ channel_ids: ["a"] })]),
  ], ["a"]);
});

Deno.test("routing: operators get mail for sites they see, by their own severity and events", () => {
  const cfg: RoutingConfig = {
    routes: [],
    channels: new Map([["mail", channel("mail", { kind: "email", operator_mail: true })]]),
    recipients: [
      {
        userId: "u-admin",
        email: "a@x.test",
        sites: "all",
        subscription: { min_severity: "info", events: ["opened"] },
      },
      {
        userId: "u-site1",
        email: "b@x.test",
        sites: [1],
        subscription: { min_severity: "error", events: ["opened", "resolved"] },
      },
    ],
    heldUntil: new Map(),
  };
  const now = Date.UTC(2026, 0, 5, 12);
  const who = (e: OutboxEvent) => plan([e], cfg, now).map((d) => d.recipient).sort();
  assert.deepEqual(who(ev()), ["a@x.test"], "warning: below b's threshold");
  assert.deepEqual(who(ev({ severity: "error" })), ["a@x.test", "b@x.test"]);
  assert.deepEqual(who(ev({ severity: "error", site_id: 2 })), ["a@x.test"], "b cannot see site 2");
  assert.deepEqual(who(ev({ severity: "error", site_id: null })), ["a@x.test"]);
  assert.deepEqual(who(ev({ severity: "error", kind: "resolved" })), ["b@x.test"]);
  // Without an operator-mail channel nobody gets personal mail.
  assert.deepEqual(plan([ev()], { ...cfg, channels: new Map() }, now), []);
});

Deno.test("routing: quiet hours hold below the breakthrough severity; digests hold everything", () => {
  const quiet = {
    quiet_hours_json: {
      start: "22:00",
      end: "07:00",
      time_zone: "UTC",
      breakthrough_severity: "error" as const,
    },
    digest_minutes: 0,
  };
  const night = Date.UTC(2026, 0, 5, 23);
  assert.deepEqual(holdOf(quiet, "warning", night, undefined), {
    held_reason: "quiet_hours",
    hold_until: Date.UTC(2026, 0, 6, 7),
  });
  assert.equal(holdOf(quiet, "error", night, undefined), null, "breaks through");
  assert.equal(holdOf(quiet, "warning", Date.UTC(2026, 0, 5, 12), undefined), null, "daytime");
  const digest = { quiet_hours_json: null, digest_minutes: 10 };
  assert.deepEqual(holdOf(digest, "error", night, undefined), {
    held_reason: "digest",
    hold_until: night + 600_000,
  });
  // Joining an open digest window keeps its end.
  assert.equal(
    holdOf(digest, "info", night + 120_000, night + 600_000)!.hold_until,
    night + 600_000,
  );
  // In one batch, later events join the window the first one opened.
  const cfg: RoutingConfig = {
    routes: [route({ channel_ids: ["d"] })],
    channels: new Map([["d", channel("d", { digest_minutes: 10 })]]),
    recipients: [],
    heldUntil: new Map(),
  };
  const planned = plan([ev({ id: "1" }), ev({ id: "2" })], cfg, night);
  assert.deepEqual(planned.map((p) => [p.status, p.hold_until]), [
    ["held", new Date(night + 600_000).toISOString()],
    ["held", new Date(night + 600_000).toISOString()],
  ]);
});

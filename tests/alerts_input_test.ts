/**
 * Bad input on every alerts route (taken from the OpenAPI document, so a new route is
 * covered by itself): random bodies, parameters and queries as an Admin never give a
 * 500.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { startAlerts } from "../plugins/alerts/testing/harness.ts";

Deno.test("alerts bad input: random bodies and parameters on every alerts route never give a 500", async () => {
  const h = await startAlerts();
  try {
    const hook = await h.webhook();
    const doc = await (await h.t.request("/api/openapi.json")).json();
    const routes: Array<[string, string]> = [];
    for (
      const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    ) {
      if (!path.startsWith("/api/alerts") && path !== "/api/auth/email") continue;
      for (const method of Object.keys(ops)) routes.push([method.toUpperCase(), path]);
    }
    assert.ok(routes.length >= 15, `${routes.length} routes`);
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.oneof(fc.string(), fc.integer(), fc.uuid())),
      fc.object({ maxDepth: 1 }),
      fc.constantFrom("webhook", "slack", "email", "teams", "discord", "error", "opened"),
      fc.record({ start: fc.string(), end: fc.string(), time_zone: fc.string() }),
    );
    const json = fc.oneof(
      fc.anything({ maxDepth: 2 }),
      fc.dictionary(
        fc.constantFrom(
          "kind",
          "name",
          "url",
          "host",
          "port",
          "security",
          "username",
          "password",
          "from",
          "to",
          "quiet_hours",
          "digest_minutes",
          "rate_per_minute",
          "watchdog_id",
          "min_severity",
          "site_ids",
          "events",
          "channel_ids",
          "enabled",
          "signing_secret",
          "ca_pem",
          "operator_mail",
          "email",
          "current_password",
        ),
        value,
      ),
    );
    const param = fc.oneof(fc.string(), fc.constant(hook.id), fc.uuid(), fc.integer().map(String));
    const failures: string[] = [];
    for (const [method, template] of routes) {
      for (const [body, p, q] of fc.sample(fc.tuple(json, param, fc.string()), 15)) {
        const e = encodeURIComponent;
        const path = template.replace(/\{[a-z_]+\}/g, e(p) || "x") +
          (method === "GET"
            ? `?limit=${e(q)}&before=${e(q)}&status=${e(q)}&channel_id=${e(p)}&watchdog_id=${e(p)}`
            : "");
        const res = await h.op(path, { method, json: method === "GET" ? undefined : body });
        if (res.status >= 500) {
          failures.push(
            `${method} ${template} ${JSON.stringify(body)} → ${res.status} ${await res.text()}`,
          );
        } else await res.body?.cancel();
      }
    }
    assert.deepEqual(failures, []);
  } finally {
    await h.close();
  }
});

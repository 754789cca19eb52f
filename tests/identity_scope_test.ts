/**
 * Site scope on the approval queue, operator notifications, purge barriers against
 * approvals decided before the purge, containment on the very next request, the legacy
 * install-code routes, and filter regular expressions that could not run in bounded time.
 */
import assert from "node:assert/strict";
import realtime, { operatorEvent } from "../plugins/realtime/mod.ts";
import { createOperator } from "./helpers/operators.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";

Deno.test("approvals: a User sees and decides only approvals of their sites; others are 404", async () => {
  const h = await startIdentity();
  try {
    const east = await h.createSite("East");
    const user = await createOperator(h.t, { role: "User", sites: [east.id] });

    // A device in Main owns "shared"; a request for "shared" arrives with East's code.
    const owner = await h.agent({ hostname: "shared" });
    await owner.requestEnrollment(h.site.enrollment_code);
    await h.approve("shared");
    const ownerGuid = (await owner.poll()).body.guid as string;
    const claimer = await h.agent({ hostname: "shared" });
    await claimer.requestEnrollment(east.enrollment_code);
    const mainOnly = await h.agent({ hostname: "main-only" });
    await mainOnly.requestEnrollment(h.site.enrollment_code);

    const mine = await (await h.op("/api/admin/device-approvals", { as: user })).json();
    assert.deepEqual(
      mine.approvals.map((a: { hostname_claimed: string }) => a.hostname_claimed),
      ["shared"],
    );
    // The conflicting device lives outside the User's sites: nothing about it leaks.
    const conflictRow = mine.approvals[0];
    assert.equal(conflictRow.hostname_conflict.guid, null);
    assert.equal(conflictRow.hostname_conflict.ssl_key_fingerprint, null);
    assert.equal(conflictRow.hostname_conflict.site_id, null);
    assert.equal(conflictRow.conflict_requires_prompt, true);

    const all = await (await h.op("/api/admin/device-approvals")).json();
    const mainRow = all.approvals.find((a: { hostname_claimed: string }) =>
      a.hostname_claimed === "main-only"
    );
    const asUser = (path: string, json: unknown = {}) => h.op(path, { as: user, json });
    assert.equal((await asUser(`/api/admin/device-approvals/${mainRow.id}/approve`)).status, 404);
    assert.equal((await asUser(`/api/admin/device-approvals/${mainRow.id}/deny`)).status, 404);
    // Overwriting, or binding to, a device the User cannot see is 404 as well.
    const ow = await asUser(`/api/admin/device-approvals/${conflictRow.id}/approve`, {
      conflict_resolution: "overwrite",
    });
    assert.equal(ow.status, 404);
    const bind = await asUser(`/api/admin/device-approvals/${conflictRow.id}/approve`, {
      guid: ownerGuid,
      conflict_resolution: "coexist",
    });
    assert.equal(bind.status, 404);
    // Wrong-code attempts are Admin-only.
    assert.equal(
      (await h.op("/api/admin/device-approvals?status=wrong_code", { as: user })).status,
      403,
    );
    // Coexist is within the User's power: a new GUID and hostname in East.
    const co = await asUser(`/api/admin/device-approvals/${conflictRow.id}/approve`, {
      conflict_resolution: "coexist",
    });
    assert.equal(co.status, 200);
    const done = (await claimer.poll()).body;
    assert.equal(done.hostname, "shared-1");
    assert.notEqual(done.guid, ownerGuid);
    const visible = await (await h.op("/api/devices", { as: user })).json();
    assert.deepEqual(visible.devices.map((d: { hostname: string }) => d.hostname), ["shared-1"]);
  } finally {
    await h.close();
  }
});

Deno.test("approvals: operators are notified on the approvals topic when a request waits and when it is decided", async () => {
  const h = await startIdentity({ plugins: [...identityPlugins, realtime] });
  try {
    const seen: Array<{ type: string; topic: string; site_id: unknown; hostname: unknown }> = [];
    h.t.engine.events.subscribe(operatorEvent, (e) => {
      if (e.topic === "approvals") {
        const data = e.data as { hostname?: unknown; status?: unknown };
        seen.push({
          type: `${e.type}${data.status ? `:${data.status}` : ""}`,
          topic: e.topic,
          site_id: e.site_id,
          hostname: data.hostname,
        });
      }
    });
    const a = await h.agent({ hostname: "notify-me" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("notify-me");
    await a.poll();
    assert.deepEqual(seen.map((s) => s.type), [
      "device_approval_pending",
      "device_approval_updated:approved",
      "device_approval_updated:completed",
    ]);
    assert.ok(seen.every((s) => s.site_id === h.site.id && s.hostname === "notify-me"));
  } finally {
    await h.close();
  }
});

Deno.test("purge: an approval decided before the purge goes back to the queue; containment bites on the very next request", async () => {
  const h = await startIdentity();
  try {
    const a = await h.agent({ hostname: "phoenix" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("phoenix");
    const guid = (await a.poll()).body.guid as string;
    const call = () => a.call("POST", "/api/agent/script/request", {}, { retry: false });
    assert.equal((await call()).status, 200);

    // Revoke: the very next request is 403 device_revoked, not a mere 401.
    await h.op(`/api/devices/${guid}/revoke`, { json: {} });
    const revoked = await call();
    assert.equal(revoked.status, 403);
    assert.equal((await revoked.json()).error, "device_revoked");

    // A re-enrollment by the same key is approved (merged into its GUID) but not yet
    // polled when an admin purges the device.
    await a.requestEnrollment(h.site.enrollment_code);
    const merged = await h.approve("phoenix");
    assert.equal((await merged.json()).conflict_resolution, "auto_merge_fingerprint");
    await h.t.clock.advance(1000);
    assert.equal((await h.op(`/api/devices/${guid}/purge`, { json: {} })).status, 200);
    // The purge barrier demands a fresh decision: the poll says pending, not approved.
    assert.deepEqual((await a.poll()).body, { status: "pending", poll_after_ms: 5000 });
    const again = await h.approve("phoenix");
    assert.equal(again.status, 200);
    const fresh = (await a.poll()).body;
    assert.equal(fresh.status, "approved");
    assert.equal(typeof fresh.access_token, "string");
    assert.equal((await call()).status, 200);

    // Purge of an active device: its current token fails on the very next request, and
    // its refresh family is gone.
    const newGuid = fresh.guid as string;
    await h.t.clock.advance(1000);
    assert.equal((await h.op(`/api/devices/${newGuid}/purge`, { json: {} })).status, 200);
    const gone = await call();
    assert.equal(gone.status, 401);
    assert.match(gone.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
    await assert.rejects(a.refresh(), /401 invalid_refresh_token/);
  } finally {
    await h.close();
  }
});

Deno.test("legacy install-code routes list the site codes to admins and answer 410 for create/delete", async () => {
  const h = await startIdentity();
  try {
    const list = await (await h.op("/api/admin/enrollment-codes")).json();
    assert.deepEqual(list.codes, [{
      site_id: h.site.id,
      site_name: "Main",
      code: h.site.enrollment_code,
      status: "active",
    }]);
    assert.deepEqual(
      (await (await h.op("/api/admin/enrollment-codes?status=expired")).json()).codes,
      [],
    );
    const created = await h.op("/api/admin/enrollment-codes", { json: { ttl_hours: 1 } });
    assert.equal(created.status, 410);
    assert.equal((await created.json()).error, "legacy_endpoint_removed_use_sites_api");
    assert.equal(
      (await h.op("/api/admin/enrollment-codes/1", { method: "DELETE" })).status,
      410,
    );
    const user = await createOperator(h.t, { role: "User", sites: [h.site.id] });
    assert.equal((await h.op("/api/admin/enrollment-codes", { as: user })).status, 403);
  } finally {
    await h.close();
  }
});

Deno.test("filters: back-references are refused (no bounded-time guarantee), too-complex patterns are 400", async () => {
  const h = await startIdentity();
  try {
    // One device, so PostgreSQL actually compiles the patterns.
    const a = await h.agent({ hostname: "rx-host" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("rx-host");
    await a.poll();
    const preview = (value: string) =>
      h.op("/api/device_filters/preview", {
        json: {
          basic_criteria: [{ field: "hostname", operator: "contains", value, use_regex: true }],
        },
      });
    for (const value of ["^(.*)(.*)(.*)\\1\\2\\3$", "(a)\\1", "x".repeat(201)]) {
      const res = await preview(value);
      assert.equal(res.status, 400, value);
      assert.equal((await res.json()).error, "filter_invalid_regex");
    }
    // An escaped backslash followed by a digit is a literal, not a back-reference.
    assert.equal((await preview("a\\\\1")).status, 200);
    // Nested bounded repetition that would explode the automaton is refused by PostgreSQL.
    const complex = await preview("((a{1,100}){1,100}){1,100}x");
    assert.equal(complex.status, 400);
    assert.equal((await complex.json()).error, "filter_invalid_regex");
    const saved = await h.op("/api/device_filters", {
      json: {
        name: "bad",
        basic_criteria: [{
          field: "hostname",
          operator: "equals",
          value: "(a)\\1",
          use_regex: true,
        }],
      },
    });
    assert.equal(saved.status, 400);
  } finally {
    await h.close();
  }
});

import assert from "node:assert/strict";
import { createOperator } from "./helpers/operators.ts";
import { startIdentity } from "./agent/harness.ts";

Deno.test("sites: create, list with counts and codes (admins only), rename, rotate, assign, device map, delete", async () => {
  const h = await startIdentity();
  try {
    assert.match(h.site.enrollment_code, /^([0-9A-F]{4}-){7}[0-9A-F]{4}$/);
    const dupe = await h.op("/api/sites", { json: { name: "main" } });
    assert.equal(dupe.status, 409);
    const east = await h.createSite("East");

    const agent = await h.agent({ hostname: "pc-east" });
    // Codes are matched case-insensitively and without dashes.
    await agent.requestEnrollment(east.enrollment_code.toLowerCase().replaceAll("-", " "));
    await h.approve("pc-east");
    await agent.poll();

    const list = await (await h.op("/api/sites")).json();
    const byName = Object.fromEntries(list.sites.map((s: { name: string }) => [s.name, s]));
    assert.equal(byName.East.device_count, 1);
    assert.equal(byName.Main.device_count, 0);
    assert.equal(byName.East.enrollment_code, east.enrollment_code);

    const user = await createOperator(h.t, { role: "User", sites: [east.id] });
    const asUser = await (await h.op("/api/sites", { as: user })).json();
    assert.deepEqual(asUser.sites.map((s: { name: string }) => s.name), ["East"]);
    assert.equal(asUser.sites[0].enrollment_code, null);
    assert.equal((await h.op("/api/sites", { as: user, json: { name: "Nope" } })).status, 403);

    const renamed =
      await (await h.op("/api/sites/rename", { json: { id: east.id, new_name: "East Wing" } }))
        .json();
    assert.equal(renamed.name, "East Wing");

    const rotated = await (await h.op("/api/sites/rotate_code", { json: { site_id: east.id } }))
      .json();
    assert.notEqual(rotated.enrollment_code, east.enrollment_code);
    const stale = await h.agent({ hostname: "late" });
    await assert.rejects(stale.requestEnrollment(east.enrollment_code), /invalid_enrollment_code/);
    assert.equal((await stale.requestEnrollment(rotated.enrollment_code)).status, "pending");
    const stored = await h.t.engine
      .sql`select enrollment_code_hash, enrollment_code_sealed from site_enrollment`;
    assert.ok(!JSON.stringify(stored).includes(rotated.enrollment_code));

    const moved = await (await h.op("/api/sites/assign", {
      json: { site_id: h.site.id, hostnames: ["PC-EAST"] },
    })).json();
    assert.equal(moved.assigned, 1);
    const map = await (await h.op("/api/sites/device_map?hostnames=pc-east,unknown")).json();
    assert.deepEqual(map.mapping, { "pc-east": { site_id: h.site.id, site_name: "Main" } });

    const tooLong = await h.op(`/api/sites/${h.site.id}/auto-approval`, {
      json: { minutes: 100_000 },
    });
    assert.equal(tooLong.status, 400);
    assert.equal(
      (await h.op("/api/sites/99999/auto-approval", { json: { minutes: 5 } })).status,
      404,
    );

    const del = await (await h.op("/api/sites/delete", { json: { ids: [h.site.id] } })).json();
    assert.equal(del.deleted, 1);
    const dev = await (await h.op("/api/devices/search?hostname=pc-east")).json();
    assert.equal(dev.devices[0].site_id, null);
  } finally {
    await h.close();
  }
});

Deno.test("devices: list, search, detail, description; site scope answers 404 outside the user's sites", async () => {
  const h = await startIdentity();
  try {
    const west = await h.createSite("West");
    const a = await h.agent({ hostname: "main-pc" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("main-pc");
    const ga = (await a.poll()).body.guid as string;
    const b = await h.agent({ hostname: "west-pc" });
    await b.requestEnrollment(west.enrollment_code);
    await h.approve("west-pc");
    const gb = (await b.poll()).body.guid as string;

    const all = await (await h.op("/api/devices")).json();
    assert.equal(all.devices.length, 2);
    assert.equal(all.devices[0].status, "Offline");
    assert.equal(all.devices[0].containment_status, "active");

    const user = await createOperator(h.t, { role: "User", sites: [west.id] });
    const mine = await (await h.op("/api/devices", { as: user })).json();
    assert.deepEqual(mine.devices.map((d: { hostname: string }) => d.hostname), ["west-pc"]);
    assert.equal((await h.op(`/api/devices/${ga}`, { as: user })).status, 404);
    assert.equal((await h.op(`/api/devices/${gb}`, { as: user })).status, 200);
    assert.equal((await h.op("/api/device/details/main-pc", { as: user })).status, 404);
    assert.equal((await h.op("/api/device/details/WEST-PC", { as: user })).status, 200);
    const search = await (await h.op("/api/devices/search?hostname=pc", { as: user })).json();
    assert.equal(search.count, 1);
    assert.equal(search.devices[0].agent_guid, gb);
    assert.equal(
      (await h.op("/api/device/description/main-pc", { as: user, json: { description: "x" } }))
        .status,
      404,
    );
    assert.equal(
      (await h.op("/api/device/description/west-pc", { as: user, json: { description: "lab" } }))
        .status,
      200,
    );
    assert.equal((await (await h.op(`/api/devices/${gb}`)).json()).description, "lab");
    // Users may not contain devices, even in scope.
    assert.equal((await h.op(`/api/devices/${gb}/quarantine`, { as: user, json: {} })).status, 403);
    // Unassigned devices are Admin-only.
    await h.op("/api/sites/delete", { json: { ids: [west.id] } });
    assert.equal((await h.op(`/api/devices/${gb}`, { as: user })).status, 404);
    assert.equal((await h.op(`/api/devices/${gb}`)).status, 200);
    assert.equal((await h.op("/api/devices/not-a-guid")).status, 400);
    assert.equal((await h.op("/api/devices")).status, 200);
    const anon = await h.t.request("/api/devices");
    assert.equal(anon.status, 401);
  } finally {
    await h.close();
  }
});

Deno.test("containment: quarantine, unquarantine, revoke, purge take effect on the very next request", async () => {
  const h = await startIdentity();
  try {
    const a = await h.agent({ hostname: "victim" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("victim");
    const guid = (await a.poll()).body.guid as string;
    const call = (retry = false) => a.call("POST", "/api/agent/script/request", {}, { retry });
    assert.equal((await call()).status, 200);

    // Quarantine: the outstanding token dies at once; after a refresh only allowed calls work.
    const q = await (await h.op(`/api/devices/${guid}/quarantine`, { json: {} })).json();
    assert.equal(q.containment_status, "quarantined");
    const dead = await call();
    assert.equal(dead.status, 401);
    assert.match(dead.headers.get("www-authenticate")!, /invalid_token/);
    const poll = await call(true); // refreshes, then polls
    assert.equal(poll.status, 200);
    assert.equal((await poll.json()).status, "quarantined");
    assert.equal((await h.op(`/api/devices/${guid}/quarantine`, { json: {} })).status, 409);

    await h.op(`/api/devices/${guid}/unquarantine`, { json: {} });
    assert.equal((await call()).status, 401);
    const back = await call(true);
    assert.equal((await back.json()).status, "idle");

    // Revoke: 403 on the next request, refresh families ended.
    await h.op(`/api/devices/${guid}/revoke`, { json: {} });
    const revoked = await call(true);
    assert.equal(revoked.status, 403);
    assert.equal((await revoked.json()).error, "device_revoked");
    // Its refresh token says so too, so the agent stops instead of enrolling again.
    await assert.rejects(a.refresh(), /403 device_revoked/);
    const tokens = await h.t.engine
      .sql`select count(*)::int as n from refresh_tokens where guid = ${guid} and revoked_at is null`;
    assert.equal(tokens[0]!.n, 0);

    // Purge: the row goes, a barrier stays; re-enrollment of that key needs a fresh approval
    // even inside an auto-approval window, and starts above every old token_version.
    const before = (await (await h.op(`/api/devices/${guid}`)).json()).token_version;
    assert.equal((await h.op(`/api/devices/${guid}/purge`, { json: {} })).status, 200);
    assert.equal((await h.op(`/api/devices/${guid}`)).status, 404);
    const [barrier] = await h.t.engine
      .sql`select * from device_purge_barriers where guid = ${guid}`;
    assert.equal(barrier!.required_token_version, before + 1);
    await h.op(`/api/sites/${h.site.id}/auto-approval`, { json: { minutes: 30 } });
    const re = await a.requestEnrollment(h.site.enrollment_code);
    assert.equal(re.status, "pending");
    await h.approve("victim");
    const fresh = (await a.poll()).body;
    assert.equal(fresh.status, "approved");
    assert.equal((await call()).status, 200);
    const left = await h.t.engine.sql`select count(*)::int as n from device_purge_barriers`;
    assert.equal(left[0]!.n, 0);
    const audit = await h.t.engine
      .sql`select action from audit_log where action like 'device.%' order by id`;
    assert.deepEqual(audit.map((r) => r.action), [
      "device.quarantine",
      "device.quarantine",
      "device.unquarantine",
      "device.revoke",
      "device.purge",
    ]);
  } finally {
    await h.close();
  }
});

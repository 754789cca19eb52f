/**
 * Site scope with the inventory plugin loaded: assignments and credentials refer to real
 * sites (the `sites` table arrives with inventory, after operators and aegis), Users see
 * only their sites' credentials.
 */
import assert from "node:assert/strict";
import aegis from "../plugins/aegis/mod.ts";
import inventory from "../plugins/inventory/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { createOperator } from "./helpers/operators.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

Deno.test("site scope: assignments and credentials name existing sites; Users see their sites only", async () => {
  const t = await startTestEngine({ plugins: [aegis, operators, inventory] });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const post = (path: string, json: unknown, headers = admin.headers) =>
      t.request(path, { method: "POST", headers, json });
    const site = async (name: string) => {
      const r = await post("/api/sites", { name });
      assert.equal(r.status, 201, await r.clone().text());
      return (await r.json()).id as number;
    };
    const north = await site("North");
    const south = await site("South");
    const ghost = 2_000_000_000;

    // Users: unknown sites are refused and nothing is created.
    let r = await post("/api/users", {
      username: "nora",
      password: "nora's long password",
      site_ids: [north, ghost],
    });
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.error, "unknown_sites");
    assert.deepEqual(body.details.site_ids, [ghost]);
    assert.equal((await t.request("/api/users", { headers: admin.headers })).status, 200);
    r = await post("/api/users", {
      username: "nora",
      password: "nora's long password",
      site_ids: [north],
      mfa_exempt: true,
    });
    assert.equal(r.status, 201);
    r = await post("/api/users", {
      username: "sam",
      password: "sam's long password",
      site_ids: [south],
      mfa_exempt: true,
    });
    assert.equal(r.status, 201);

    // Assign: an unknown site changes nothing.
    r = await post("/api/user_site_assignments/assign", {
      usernames: ["nora"],
      site_ids: [south, ghost],
    });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error, "unknown_sites");
    const sel = await (await post("/api/user_site_assignments/selection", { usernames: ["nora"] }))
      .json();
    assert.deepEqual(sel.selected_site_ids, [north]);

    // Credentials: an unknown site is a 400; Users see only their sites' credentials.
    const cred = (name: string, site_id: number | null) =>
      post("/api/credentials", {
        name,
        site_id,
        credential_type: "machine",
        connection_type: "ssh",
        password: `${name}-secret`,
      });
    r = await cred("nowhere", ghost);
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error, "unknown_site");
    const northCred = await (await cred("north-root", north)).json();
    const southCred = await (await cred("south-root", south)).json();
    await cred("global", null);
    const signIn = async (username: string, password: string) => {
      const res = await post("/api/auth/login", { username, password, bearer: true }, {});
      return { Authorization: `Bearer ${(await res.json()).token}` };
    };
    const nora = await signIn("nora", "nora's long password");
    const names = async (headers: Record<string, string>) =>
      (await (await t.request("/api/credentials", { headers })).json()).credentials
        .map((c: { name: string }) => c.name);
    assert.deepEqual(await names(nora), ["north-root"]);
    assert.deepEqual(await names(admin.headers), ["global", "north-root", "south-root"]);
    assert.equal(
      (await t.request(`/api/credentials/${southCred.id}`, { headers: nora })).status,
      404,
    );
    assert.equal(
      (await t.request(`/api/credentials/${northCred.id}`, { headers: nora })).status,
      200,
    );
    // Reassigning takes effect on the live session at once.
    r = await post("/api/user_site_assignments/assign", { usernames: ["nora"], site_ids: [south] });
    assert.equal(r.status, 200);
    assert.deepEqual(await names(nora), ["south-root"]);
    r = await t.request(`/api/credentials/${northCred.id}`, {
      method: "PUT",
      headers: admin.headers,
      json: { site_id: ghost },
    });
    assert.equal(r.status, 400);

    // Deleting a site removes its assignments and detaches its credentials (foreign keys).
    r = await post("/api/sites/delete", { ids: [south] });
    assert.equal(r.status, 200, await r.clone().text());
    await r.body?.cancel();
    const after =
      await (await post("/api/user_site_assignments/selection", { usernames: ["nora"] }))
        .json();
    assert.deepEqual(after.selected_site_ids, []);
    const [detached] = await t.engine.sql<{ site_id: number | null }[]>`
      select site_id from credentials where id = ${southCred.id}`;
    assert.equal(detached?.site_id, null);
  } finally {
    await t.close();
  }
});

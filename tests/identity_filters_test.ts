import assert from "node:assert/strict";
import { filtersKey } from "../plugins/inventory/mod.ts";
import { createOperator, type TestOperator } from "./helpers/operators.ts";
import { startIdentity } from "./agent/harness.ts";

Deno.test("filters: basic and advanced criteria, regex, numbers, software versions, site modes, scope, CRUD; views", async () => {
  const h = await startIdentity();
  try {
    const lab = await h.createSite("Lab");
    const enroll = async (hostname: string, code: string) => {
      const a = await h.agent({ hostname });
      await a.requestEnrollment(code);
      await h.approve(hostname);
      return (await a.poll()).body.guid as string;
    };
    const web1 = await enroll("web-1", h.site.enrollment_code);
    await enroll("web-2", h.site.enrollment_code);
    const db1 = await enroll("db-1", lab.enrollment_code);
    const sql = h.t.engine.sql;
    const now = new Date(h.t.clock.now());
    await sql`update devices set operating_system = 'Ubuntu Linux 24.04', last_seen = ${now},
      details = ${
      sql.json({
        summary: { total_ram: 17179869184 },
        software: [{ name: "nginx", version: "1.24.0", source: "dpkg" }],
      })
    }
      where lower(hostname) = 'web-1'`;
    await sql`update devices set operating_system = 'Windows Server 2022',
      details = ${
      sql.json({
        summary: { total_ram: 4294967296 },
        software: [{ name: "nginx", version: "1.18.0", source: "dpkg" }],
      })
    }
      where lower(hostname) = 'web-2'`;
    await sql`update devices set operating_system = 'Debian GNU/Linux 12' where lower(hostname) = 'db-1'`;

    const preview = async (def: Record<string, unknown>, as?: TestOperator) => {
      const res = await h.op("/api/device_filters/preview", { json: def, as });
      const body = await res.json();
      return {
        status: res.status,
        body,
        names: (body.devices ?? []).map((d: { hostname: string }) => d.hostname),
      };
    };
    const cond = (
      field: string,
      operator: string,
      value: unknown,
      extra: Record<string, unknown> = {},
    ) => ({ field, operator, value, ...extra });

    assert.deepEqual(
      (await preview({ basic_criteria: [cond("hostname", "begins_with", "WEB")] })).names,
      ["web-1", "web-2"],
    );
    assert.deepEqual(
      (await preview({
        basic_criteria: [
          cond("hostname", "begins_with", "web"),
          cond("operating_system", "contains", "linux"),
        ],
      })).names,
      ["web-1"],
    );
    assert.deepEqual(
      (await preview({ basic_criteria: [cond("operating_system", "does_not_contain", "linux")] }))
        .names,
      ["web-2"],
    );
    assert.deepEqual(
      (await preview({
        basic_criteria: [cond("hostname", "equals", "^web-[12]$", { use_regex: true })],
      })).names,
      ["web-1", "web-2"],
    );
    assert.deepEqual(
      (await preview({ basic_criteria: [cond("hostname", "ends_with", "-1")] })).names,
      ["db-1", "web-1"],
    );
    assert.deepEqual((await preview({ basic_criteria: [cond("total_ram_gb", "gte", 8)] })).names, [
      "web-1",
    ]);
    assert.deepEqual(
      (await preview({ basic_criteria: [cond("last_seen_age_minutes", "lt", 10)] })).names,
      ["web-1"],
    );
    assert.deepEqual(
      (await preview({ basic_criteria: [cond("status", "equals", "Online")] })).names,
      ["web-1"],
    );
    assert.deepEqual(
      (await preview({
        basic_criteria: [
          cond("installed_software", "equals", "nginx", {
            version_operator: "newer_than",
            version_value: "1.20",
          }),
        ],
      })).names,
      ["web-1"],
    );
    assert.deepEqual(
      (await preview({
        basic_criteria: [
          cond("installed_software", "equals", "nginx", {
            version_operator: "older_than",
            version_value: "1.20",
            software_source: "dpkg",
          }),
        ],
      })).names,
      ["web-2"],
    );
    assert.deepEqual(
      (await preview({ basic_criteria: [cond("installed_software", "does_not_contain", "nginx")] }))
        .names,
      ["db-1"],
    );
    assert.deepEqual(
      (await preview({
        criteria_mode: "advanced",
        advanced_criteria: {
          groups: [
            { conditions: [cond("hostname", "equals", "db-1")] },
            {
              conditions: [
                cond("hostname", "begins_with", "web"),
                cond("total_ram_gb", "lt", 8, { join_with: "AND" }),
              ],
            },
          ],
        },
      })).names,
      ["db-1", "web-2"],
    );
    assert.deepEqual((await preview({ site_mode: "specific_sites", site_ids: [lab.id] })).names, [
      "db-1",
    ]);
    assert.deepEqual(
      (await preview({ site_mode: "global_exclusions", site_ids: [lab.id] })).names,
      ["web-1", "web-2"],
    );

    // Bad input is a 400, never a 500.
    const badRegex = await preview({
      basic_criteria: [cond("hostname", "contains", "(", { use_regex: true })],
    });
    assert.equal(badRegex.status, 400);
    assert.equal(badRegex.body.error, "filter_invalid_regex");
    assert.equal(
      (await preview({ basic_criteria: [cond("total_ram_gb", "gt", "lots")] })).status,
      400,
    );
    assert.equal((await preview({ basic_criteria: [cond("hostname", "gt", "x")] })).status, 400);
    assert.equal((await preview({ basic_criteria: [cond("nope", "equals", "x")] })).status, 400);
    assert.equal((await preview({ site_mode: "specific_sites" })).status, 400);

    // Scope: a User of Lab only ever sees Lab devices.
    const user = await createOperator(h.t, { role: "User", sites: [lab.id] });
    assert.deepEqual((await preview({}, user)).names, ["db-1"]);

    // CRUD.
    const created = await h.op("/api/device_filters", {
      json: { name: "Web", basic_criteria: [cond("hostname", "begins_with", "web")] },
    });
    assert.equal(created.status, 201);
    const f = await created.json();
    assert.equal((await h.op("/api/device_filters", { json: { name: "web" } })).status, 409);
    const resolved = await h.t.engine.service(filtersKey).resolveById(f.id, {
      kind: "system",
      id: "test",
      name: "test",
      sites: "all",
    });
    assert.deepEqual(
      resolved.map((d) => d.guid).sort(),
      [web1, resolved.find((d) => d.hostname === "web-2")!.guid].sort(),
    );
    const put = await h.op(`/api/device_filters/${f.id}`, {
      method: "PUT",
      json: { name: "Web 1", basic_criteria: [cond("hostname", "equals", "web-1")] },
    });
    assert.equal((await put.json()).name, "Web 1");
    const cloneRes = await h.op(`/api/device_filters/${f.id}/clone`, { json: {} });
    const clone = await cloneRes.json();
    assert.equal(cloneRes.status, 200, JSON.stringify(clone));
    assert.equal(clone.name, "Web 1 (copy)");
    await h.op(`/api/device_filters/${clone.id}/archive`, { json: {} });
    const listed = await (await h.op("/api/device_filters")).json();
    assert.deepEqual(listed.filters.map((x: { name: string }) => x.name), ["Web 1"]);
    const all = await (await h.op("/api/device_filters?include_archived=true")).json();
    assert.equal(all.filters.length, 2);
    assert.equal(
      (await (await h.op(`/api/device_filters/${clone.id}/unarchive`, { json: {} })).json())
        .archived,
      false,
    );
    assert.deepEqual((await (await h.op(`/api/device_filters/${f.id}/usage`)).json()).usage, []);
    const labOnly = await (await h.op("/api/device_filters", {
      json: { name: "Lab", site_mode: "specific_sites", site_ids: [h.site.id] },
    })).json();
    assert.equal((await h.op(`/api/device_filters/${labOnly.id}`, { as: user })).status, 404);
    assert.equal((await h.op(`/api/device_filters/${f.id}`, { as: user })).status, 200);
    assert.equal((await h.op(`/api/device_filters/${f.id}`, { method: "DELETE" })).status, 200);
    assert.equal((await h.op(`/api/device_filters/${f.id}`)).status, 404);
    const meta = await (await h.op("/api/device_filters/metadata")).json();
    assert.ok(meta.fields.some((x: { field: string }) => x.field === "installed_software"));
    void db1;

    // Saved list views.
    const v = await h.op("/api/device_list_views", {
      json: { name: "Servers", columns: ["hostname", "os"], filters: { os: "Linux" } },
    });
    assert.equal(v.status, 201);
    const { id } = await v.json();
    assert.equal((await h.op("/api/device_list_views", { json: { name: "servers" } })).status, 409);
    const upd = await h.op(`/api/device_list_views/${id}`, {
      method: "PUT",
      json: { name: "Linux servers", columns: ["hostname"] },
    });
    assert.equal((await upd.json()).name, "Linux servers");
    const views = await (await h.op("/api/device_list_views", { as: user })).json();
    assert.equal(views.views.length, 1);
    assert.equal((await h.op(`/api/device_list_views/${id}`, { method: "DELETE" })).status, 200);
    assert.equal((await h.op(`/api/device_list_views/${id}`)).status, 404);
  } finally {
    await h.close();
  }
});

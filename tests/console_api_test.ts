/**
 * The API the console needed and did not have: per-site online / offline / overdue
 * counts from the same presence as each device row, the public base URL for install
 * commands, server-side paging, sorting and filtering of the device list with inventory
 * counts, a device's software list, the age of each details snapshot, and the server time.
 */
import assert from "node:assert/strict";
import assemblies from "../plugins/assemblies/mod.ts";
import realtime, { realtimeInternalsKey } from "../plugins/realtime/mod.ts";
import scheduler from "../plugins/scheduler/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import type { Agent } from "./agent/agent.ts";
import { createOperator } from "./helpers/operators.ts";

type Json = Record<string, unknown>;

Deno.test("console API: site counts, device list paging/sorting/filtering, software, snapshot ages, server time", async () => {
  const h = await startIdentity({
    plugins: [...identityPlugins, realtime, assemblies, scheduler],
    env: {
      BOREALIS_PUBLIC_BASE_URL: "https://rmm.example.com",
      // Short thresholds: the manual clock fires every task timer on the way.
      BOREALIS_AGENT_OFFLINE_SECONDS: "60",
      BOREALIS_AGENT_OVERDUE_SECONDS: "300",
    },
  });
  try {
    const enroll = async (hostname: string): Promise<Agent> => {
      // Proofs name the public URL the engine announces (the request goes in-process).
      const a = await h.agent({ hostname, server: "https://rmm.example.com" });
      await a.requestEnrollment(h.site.enrollment_code);
      const approved = await h.approve(hostname);
      assert.equal(approved.status, 200, await approved.clone().text());
      await a.poll();
      return a;
    };
    const heartbeat = async (a: Agent) => {
      const res = await a.call("POST", "/api/agent/heartbeat", { metrics: { uptime: 5 } });
      assert.equal(res.status, 200, await res.clone().text());
      await res.body?.cancel();
      await h.t.engine.service(realtimeInternalsKey).flush();
    };
    const json = async (path: string, init: Parameters<typeof h.op>[1] = {}) => {
      const res = await h.op(path, init);
      return { status: res.status, body: await res.json() };
    };
    const minutes = (n: number) => h.t.clock.advance(n * 60_000);

    const alpha = await enroll("alpha-01");
    const bravo = await enroll("Bravo-02");
    const charlie = await enroll("charlie-03");
    await enroll("delta-04"); // never heard from
    await heartbeat(charlie);
    await minutes(6); // charlie: overdue (≥ 5 min)
    await heartbeat(bravo);
    await minutes(2); // bravo: offline (> 1 min)
    await heartbeat(alpha); // alpha: online

    const sites = await json("/api/sites");
    assert.equal(sites.status, 200);
    assert.equal(sites.body.public_base_url, "https://rmm.example.com");
    const main = sites.body.sites.find((s: Json) => s.id === h.site.id);
    assert.deepEqual(
      [main.device_count, main.online_count, main.offline_count, main.overdue_count],
      [4, 1, 2, 1],
    );

    // The list's presence filter and each row's presence are the derivation of the counts.
    const byState: Record<string, string[]> = {};
    for (const state of ["online", "offline", "overdue"]) {
      const r = await json(`/api/devices?presence=${state}&site_id=${h.site.id}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.total, r.body.devices.length);
      byState[state] = r.body.devices.map((d: Json) => d.hostname);
      for (const d of r.body.devices) {
        assert.equal(d.presence, state);
        assert.equal(d.status, state === "online" ? "Online" : "Offline");
      }
    }
    assert.deepEqual(byState, {
      online: ["alpha-01"],
      offline: ["Bravo-02", "delta-04"],
      overdue: ["charlie-03"],
    });
    assert.equal(byState.online!.length, main.online_count);
    assert.equal(byState.offline!.length, main.offline_count);
    assert.equal(byState.overdue!.length, main.overdue_count);

    // Paging and sorting on the server; total counts every match.
    const page1 = await json("/api/devices?limit=2&offset=0&sort=hostname");
    const page2 = await json("/api/devices?limit=2&offset=2&sort=hostname");
    assert.equal(page1.body.total, 4);
    assert.deepEqual(
      [...page1.body.devices, ...page2.body.devices].map((d: Json) => d.hostname),
      ["alpha-01", "Bravo-02", "charlie-03", "delta-04"],
    );
    const desc = await json("/api/devices?sort=hostname&order=desc&limit=1");
    assert.deepEqual(desc.body.devices.map((d: Json) => d.hostname), ["delta-04"]);
    assert.equal(desc.body.total, 4);
    const recent = await json("/api/devices?sort=status&order=desc");
    assert.deepEqual(
      recent.body.devices.map((d: Json) => d.hostname),
      ["alpha-01", "Bravo-02", "charlie-03", "delta-04"],
    );

    // Substring filters per column (case-insensitive, % and _ taken literally) and q.
    const described = await h.op("/api/device/description/Bravo-02", {
      json: { description: "Front desk 100%_ready" },
    });
    assert.equal(described.status, 200);
    await described.body?.cancel();
    assert.deepEqual(
      (await json("/api/devices?hostname=RAV")).body.devices.map((d: Json) => d.hostname),
      ["Bravo-02"],
    );
    assert.equal((await json("/api/devices?description=100%25_")).body.total, 1);
    assert.equal((await json("/api/devices?description=100%25x")).body.total, 0);
    assert.equal((await json("/api/devices?q=front%20desk")).body.total, 1);
    assert.equal((await json("/api/devices?site_name=main")).body.total, 4);
    assert.equal((await json("/api/devices?site_name=elsewhere")).body.total, 0);
    const nul = await json("/api/devices?hostname=a%00b");
    assert.equal(nul.status, 400);
    assert.equal(nul.body.error, "validation_failed");
    assert.equal((await json("/api/devices?sort=password")).status, 400);

    // Inventory counts, CPU and agent version come from the details document.
    const details = await alpha.call("POST", "/api/agent/details", {
      details: {
        summary: { agent_version: "2.4.1", operating_system: "Debian 13" },
        memory: [{ slot: "A" }, { slot: "B" }],
        storage: [{ drive: "/" }, { drive: "/home" }, { drive: "/var" }],
        network: [{ adapter: "eth0" }],
        cpu: { name: "AMD EPYC 7763" },
        services: [{ name: "sshd", status: "running" }],
        software: [
          { name: "zsh", version: "5.9" },
          { name: "Bash", version: "5.2" },
          { name: "curl", version: "8.14" },
        ],
      },
    });
    assert.equal(details.status, 200, await details.clone().text());
    await details.body?.cancel();
    const row = (await json("/api/devices?hostname=alpha")).body.devices[0];
    assert.equal(row.agent_version, "2.4.1");
    assert.equal(row.cpu, "AMD EPYC 7763");
    assert.deepEqual(row.inventory_counts, {
      memory_modules: 2,
      volumes: 3,
      network_adapters: 1,
      software_items: 3,
    });
    const empty = (await json("/api/devices?hostname=delta")).body.devices[0];
    assert.deepEqual(empty.inventory_counts, {
      memory_modules: null,
      volumes: null,
      network_adapters: null,
      software_items: null,
    });

    const one = await json(`/api/devices/${row.guid}`);
    const at = new Date(h.t.clock.now()).toISOString();
    assert.equal(one.body.details.collected_at.services, at);
    assert.equal(one.body.details.collected_at.software, at);
    assert.equal(one.body.details.collected_at.processes, undefined);

    const software = await json(`/api/devices/${row.guid}/software`);
    assert.equal(software.status, 200);
    assert.equal(software.body.count, 3);
    assert.deepEqual(software.body.software.map((s: Json) => s.name), ["Bash", "curl", "zsh"]);
    assert.equal(software.body.software[0].captured_at, at);

    // A User of another site sees none of it.
    const other = await h.createSite("Elsewhere");
    const user = await createOperator(h.t, { role: "User", sites: [other.id] });
    const scoped = await json("/api/devices", { as: user });
    assert.deepEqual([scoped.body.total, scoped.body.devices.length], [0, 0]);
    const userSites = await json("/api/sites", { as: user });
    assert.deepEqual(userSites.body.sites.map((s: Json) => s.name), ["Elsewhere"]);
    assert.equal((await json(`/api/devices/${row.guid}/software`, { as: user })).status, 404);

    const time = await json("/api/server/time");
    assert.equal(time.status, 200);
    assert.equal(time.body.epoch_ms, h.t.clock.now());
    assert.equal(time.body.now, new Date(h.t.clock.now()).toISOString());
    assert.equal(typeof time.body.time_zone, "string");
    assert.match(time.body.local, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    const shifted = Date.parse(`${time.body.local}Z`) - time.body.utc_offset_minutes * 60_000;
    assert.equal(shifted, Math.floor(h.t.clock.now() / 1000) * 1000);
    assert.equal((await h.t.request("/api/server/time")).status, 401);
  } finally {
    await h.close();
  }
});

/**
 * One truth for "online": an agent connects, then disconnects, and time passes on the
 * engine's clock. At every step the device list and detail, the list's presence filter,
 * the site's counts, a filter on status and on presence, a watchdog `device_offline`
 * preview, a quick run and the operator socket report the same state — online while the agent was heard from within
 * BOREALIS_AGENT_OFFLINE_SECONDS, then offline, then overdue.
 */
import assert from "node:assert/strict";
import { builtinPlugins } from "../plugins/mod.ts";
import { Agent } from "./agent/agent.ts";
import { AgentSocket } from "./agent/socket.ts";
import { createOperator } from "./helpers/operators.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const OFFLINE_S = 60;
const OVERDUE_S = 600;

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name:
    "presence: after a disconnect, the device list, detail, site counts, filters, watchdogs, quick runs and the operator socket agree at every step",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await startTestEngine({
      plugins: builtinPlugins,
      env: {
        BOREALIS_AGENT_OFFLINE_SECONDS: String(OFFLINE_S),
        BOREALIS_AGENT_OVERDUE_SECONDS: String(OVERDUE_S),
        BOREALIS_AGENT_STATUS_THROTTLE_SECONDS: "0",
      },
    });
    try {
      const { port } = await t.engine.listen();
      const server = `http://127.0.0.1:${port}`;
      const admin = await createOperator(t, { role: "Admin" });
      const op = async (path: string, json?: unknown) => {
        const res = await t.request(path, {
          method: json === undefined ? "GET" : "POST",
          headers: admin.headers,
          json,
        });
        const body = await res.json();
        assert.ok(res.status < 300, `${path}: ${res.status} ${JSON.stringify(body)}`);
        return body;
      };
      const site = await op("/api/sites", { name: "Presence" });
      await op(`/api/sites/${site.id}/auto-approval`, { minutes: 60 });
      const agent = await Agent.open({
        server,
        hostname: "presence-host",
        now: () => t.clock.now(),
        sleep: async () => {},
      });
      await agent.enroll(site.enrollment_code, { timeoutMs: 30_000 });
      const guid = agent.state.guid!;

      // The operator socket, subscribed to device status.
      const frames: Array<{ type: string; data?: { guid?: string; status?: string } }> = [];
      const ws = new (WebSocket as unknown as new (
        u: string,
        o: { headers: Record<string, string> },
      ) => WebSocket)(`${server.replace(/^http/, "ws")}/api/ws`, { headers: admin.headers });
      ws.onmessage = (e) => void frames.push(JSON.parse(String(e.data)));
      await new Promise((r, j) => ((ws.onopen = r), (ws.onerror = j)));
      ws.send(JSON.stringify({ type: "subscribe", data: { topics: ["device_status"] } }));
      await until(() => frames.some((f) => f.type === "subscribe_ack"), "subscribed");
      const announced = () =>
        frames.filter((f) => f.type === "agent_status_changed" && f.data?.guid === guid).at(-1)
          ?.data?.status;

      const socket = new AgentSocket(agent, { server, heartbeat: false, reconnect: false });
      await socket.start();
      // The welcome can arrive before the socket's handler is attached; a ping proves it.
      await socket.waitFor((f) => f.type === "welcome", 1500).catch(() => socket.request("ping"));

      const assembly = (await op("/api/assemblies", {
        domain: "user_created",
        display_name: "presence probe",
        assembly_kind: "script",
        assembly_type: "bash",
        payload: "true\n",
        metadata: {},
      })).assembly_guid as string;

      /** What every surface says about the agent now. */
      const surfaces = async () => {
        const list = (await op(`/api/devices?site_id=${site.id}`)).devices.find((
          d: { guid: string },
        ) => d.guid === guid);
        const detail = await op(`/api/devices/${guid}`);
        const listed = [];
        for (const p of ["online", "offline", "overdue"]) {
          const page = await op(`/api/devices?site_id=${site.id}&presence=${p}`);
          if (page.devices.some((d: { guid: string }) => d.guid === guid)) listed.push(p);
        }
        const counts = (await op("/api/sites")).sites.find((s: { id: number }) => s.id === site.id);
        const counted = ["online", "offline", "overdue"].filter((p) => counts[`${p}_count`] === 1);
        const filterMatches = async (field: string, value: string) =>
          (await op("/api/device_filters/preview", {
            site_mode: "specific_sites",
            site_ids: [site.id],
            basic_criteria: [{ field, operator: "equals", value }],
          })).devices.some((d: { guid: string }) => d.guid === guid);
        const byPresence = [];
        for (const p of ["online", "offline", "overdue"]) {
          if (await filterMatches("presence", p)) byPresence.push(p);
        }
        const watchdog = await op("/api/watchdogs/preview", {
          name: "offline",
          criteria: { rules: [{ type: "device_offline", offline_after_seconds: OFFLINE_S }] },
        });
        const wd = watchdog.devices.find((d: { guid: string }) => d.guid === guid);
        const run = await op("/api/scripts/quick_run", {
          assembly_guid: assembly,
          device_guids: [guid],
        });
        return {
          list: list.presence,
          listStatus: list.status,
          detail: detail.presence,
          listFilter: listed.join(","),
          siteCount: counted.join(","),
          filterPresence: byPresence.join(","),
          filterStatusOnline: await filterMatches("status", "Online"),
          watchdogStatus: wd.status,
          watchdogOffline: wd.matched,
          quickRun: run.results[0].presence,
        };
      };
      const expect = (p: "online" | "offline" | "overdue") => ({
        list: p,
        listStatus: p === "online" ? "Online" : "Offline",
        detail: p,
        listFilter: p,
        siteCount: p,
        filterPresence: p,
        filterStatusOnline: p === "online",
        watchdogStatus: p,
        watchdogOffline: p !== "online",
        quickRun: p,
      });
      const step = async (p: "online" | "offline" | "overdue", when: string) => {
        await t.engine.tasks.idle();
        assert.deepEqual(await surfaces(), expect(p), when);
        if (p !== "online" || announced()) {
          await until(() => announced() === p, `operator socket says ${p} ${when}`);
        }
      };

      await step("online", "while connected");
      socket.stop();
      await until(
        async () =>
          (await op("/api/agents")).agents.every((a: { guid: string }) => a.guid !== guid),
        "socket closed",
      );
      await step("online", "right after the disconnect");
      await t.clock.advance((OFFLINE_S - 5) * 1000);
      await step("online", "just inside the offline threshold");
      await t.clock.advance(10_000);
      await step("offline", "just past the offline threshold");
      await t.clock.advance((OVERDUE_S - OFFLINE_S) * 1000);
      await step("overdue", "past the overdue threshold");
      ws.close();
    } finally {
      await t.close();
    }
  },
});

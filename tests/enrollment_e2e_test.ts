/**
 * End to end with the reference agent CLI in a separate process, over a real listener:
 * pending → operator approves over HTTP → poll → tokens → authenticated call → refresh →
 * reuse of the old refresh token revokes the family.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ManualClock } from "../core/clock.ts";
import { Agent } from "./agent/agent.ts";
import { startIdentity } from "./agent/harness.ts";
import { type AgentEvent, spawnAgent } from "./agent/process.ts";

const runCli = (args: string[], onLine?: (e: AgentEvent) => Promise<void>) =>
  spawnAgent(args, { onLine }).done;

Deno.test({
  name:
    "e2e: the reference agent CLI enrolls, is approved over HTTP, calls, refreshes; reuse revokes",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const h = await startIdentity({ clock: new ManualClock(Date.now()) });
    const state = await Deno.makeTempDir({ prefix: "borealis-agent-" });
    try {
      const { port } = await h.t.engine.listen();
      const server = `http://127.0.0.1:${port}`;
      const http = (path: string, json?: unknown) =>
        fetch(server + path, {
          method: json === undefined ? "GET" : "POST",
          headers: { ...h.admin.headers, "content-type": "application/json" },
          body: json === undefined ? undefined : JSON.stringify(json),
        });

      let approved = false;
      const first = await runCli(
        [
          "--server",
          server,
          "--code",
          h.site.enrollment_code,
          "--state",
          state,
          "--hostname",
          "e2e-host",
          "--once",
        ],
        async (e) => {
          if (e.event === "enrollment" && e.status === "pending" && !approved) {
            approved = true;
            const list = await (await http("/api/admin/device-approvals?status=pending")).json();
            const row = list.approvals.find((a: { hostname_claimed: string }) =>
              a.hostname_claimed === "e2e-host"
            );
            const res = await http(`/api/admin/device-approvals/${row.id}/approve`, {});
            assert.equal(res.status, 200);
            await res.body?.cancel();
          }
        },
      );
      assert.equal(first.code, 0, first.stderr + JSON.stringify(first.events));
      const kinds = first.events.map((e) => e.event);
      assert.deepEqual(kinds.slice(-2), ["enrolled", "script_request"]);
      assert.equal(first.events.at(-1)!.http_status, 200);
      assert.equal(first.events.at(-1)!.status, "idle");

      const saved = JSON.parse(await Deno.readTextFile(join(state, "state.json")));
      const device = await (await http(`/api/devices/${saved.guid}`)).json();
      assert.equal(device.hostname, "e2e-host");
      assert.equal(device.containment_status, "active");

      const oldRefresh = saved.refresh_token;
      const second = await runCli(["--server", server, "--state", state, "--refresh"]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.events.at(-1)!.event, "refreshed");

      // The old (rotated) refresh token, presented with a proof by the right key.
      const replayer = await Agent.open({ server, stateDir: state });
      replayer.state.refresh_token = oldRefresh;
      await assert.rejects(replayer.refresh(), /401 refresh_token_reused/);

      const third = await runCli(["--server", server, "--state", state, "--refresh"]);
      assert.equal(third.code, 1);
      assert.equal((third.events.at(-1)!.body as { error: string }).error, "refresh_token_revoked");

      // With a code, the CLI follows the retry rules: the family is gone, so it forgets its
      // tokens and enrolls again with the same key; the site's auto-approval window admits
      // a same-key re-enrollment into the same GUID.
      const win = await http(`/api/sites/${h.site.id}/auto-approval`, { minutes: 10 });
      assert.equal(win.status, 200);
      await win.body?.cancel();
      const stale = JSON.parse(await Deno.readTextFile(join(state, "state.json")));
      delete stale.access_token; // force a refresh on the next call
      await Deno.writeTextFile(join(state, "state.json"), JSON.stringify(stale));
      const fourth = await runCli([
        "--server",
        server,
        "--code",
        h.site.enrollment_code,
        "--state",
        state,
        "--once",
      ]);
      assert.equal(fourth.code, 0, fourth.stderr + JSON.stringify(fourth.events));
      assert.deepEqual(fourth.events.map((e) => e.event).filter((e) => e !== "enrollment"), [
        "reenrolling",
        "enrolled",
        "script_request",
      ]);
      assert.equal(fourth.events[0]!.reason, "refresh_token_revoked");
      const renewed = JSON.parse(await Deno.readTextFile(join(state, "state.json")));
      assert.equal(renewed.guid, saved.guid);
      assert.equal(fourth.events.at(-1)!.status, "idle");
    } finally {
      await h.close();
      await Deno.remove(state, { recursive: true }).catch(() => {});
    }
  },
});

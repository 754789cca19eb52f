/**
 * What agents report is cleaned, not refused (docs/agent-protocol.md, "Text in what
 * agents send"): a NUL in a registry value or a software name is removed, an unpaired
 * surrogate becomes U+FFFD, and the rest of the report is stored. Everything else an
 * operator or an agent sends with such text is refused with a 400 naming the field.
 */
import assert from "node:assert/strict";
import realtime, { realtimeInternalsKey } from "../plugins/realtime/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { AgentSocket } from "./agent/socket.ts";

Deno.test("telemetry: NUL and unpaired surrogates in what agents report are cleaned and the report is kept", async () => {
  const h = await startIdentity({ plugins: [...identityPlugins, realtime] });
  try {
    const a = await h.agent({ hostname: "nul-host" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("nul-host");
    await a.enroll(h.site.enrollment_code);

    const details = await a.call("POST", "/api/agent/details", {
      details: {
        summary: { operating_system: "Windows\u0000 11", last_user: "CORP\\ann\ud800" },
        software: [
          { name: "Tool\u0000Kit", version: "1.0\u0000", source: "local_installed" },
          { name: "Plain", version: "2" },
        ],
        services: { "Spooler\u0000": { status: "running" } },
        processes: [{ name: "a\udc00b" }],
      },
    });
    assert.equal(details.status, 200, await details.clone().text());
    const heartbeat = await a.call("POST", "/api/agent/heartbeat", {
      metrics: { last_user: "bob\u0000", cpu_percent: 12 },
      agent_role_health: { "role\u0000": "ok" },
    });
    assert.equal(heartbeat.status, 200);
    await heartbeat.body?.cancel();
    const status = await a.call("POST", "/api/agent/status", { status: "up\u0000" });
    assert.equal(status.status, 200);
    await status.body?.cancel();

    // Over the socket too (heartbeat data, and any other frame).
    const { port } = await h.t.engine.listen();
    const s = new AgentSocket(a, { server: `http://127.0.0.1:${port}`, heartbeat: false });
    await s.start();
    await s.waitFor((f) => f.type === "welcome");
    const ack = await s.request("heartbeat", { metrics: { operating_system: "Linux\u0000" } });
    assert.equal(ack.type, "heartbeat_ack");
    const ca = await s.request("connect_agent", { agent_id: "nul-host\u0000_SYSTEM" });
    assert.equal(ca.type, "connect_agent_ack");
    s.stop();

    await h.t.engine.service(realtimeInternalsKey).flush();
    const [row] = await h.t.engine.sql<
      { details: Record<string, unknown>; operating_system: string; last_user: string }[]
    >`select details, operating_system, last_user from devices where hostname = 'nul-host'`;
    assert.equal(row!.operating_system, "Linux");
    assert.equal(row!.last_user, "bob");
    assert.deepEqual(row!.details.services, { Spooler: { status: "running" } });
    assert.deepEqual(row!.details.processes, [{ name: "a\ufffdb" }]);
    assert.deepEqual(row!.details.agent_role_health, { role: "ok" });
    const software = await h.t.engine.sql<{ name: string; version: string }[]>`
      select name, version from device_software_inventory order by name`;
    assert.deepEqual(software.map((r) => [r.name, r.version]), [["Plain", "2"], [
      "ToolKit",
      "1.0",
    ]]);

    // Identity is not telemetry: a NUL in a hostname is refused, naming the field.
    const b = await h.agent({ hostname: "bad\u0000host" });
    await assert.rejects(
      () => b.requestEnrollment(h.site.enrollment_code),
      (e: Error & { body?: { details?: Array<{ field: string }> } }) =>
        /400/.test(e.message) && e.body?.details?.[0]?.field === "hostname",
    );
  } finally {
    await h.close();
  }
});

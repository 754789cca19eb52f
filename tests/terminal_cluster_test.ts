/**
 * Terminal across two engine instances on one PostgreSQL server (like the other cluster
 * tests, skipped on the embedded database, which is single-process): the operator on
 * instance A, the agent on instance B. Keystrokes and output cross the event bus in
 * order; flow control holds across it; the operator's console moves to B after a blip;
 * a file and an action go through A to the agent on B.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { terminalKey } from "../plugins/terminal/mod.ts";
import { startTerminal, terminalPlugins, until } from "../plugins/terminal/testing/harness.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test({
  name:
    "terminal cluster: operator on A, agent on B — echo, resize, bounded flood, move to B, file, action",
  ignore: !serverUrl || Deno.build.os !== "linux",
  async fn() {
    const s = await startTerminal({ env: { BOREALIS_TERMINAL_WINDOW_BYTES: "65536" } });
    const b = await startTestEngine({
      plugins: terminalPlugins,
      db: s.h.t.db,
      clock: s.h.t.clock,
      env: { BOREALIS_TERMINAL_WINDOW_BYTES: "65536" },
    });
    const dir = await Deno.makeTempDir({ prefix: "terminal-cluster-" });
    try {
      const { port: portB } = await b.engine.listen();
      const serverB = `http://127.0.0.1:${portB}`;
      const a = await s.terminalAgent("cluster-term", { server: serverB });
      // A knows where the agent is once its registry has looked (every few seconds).
      await s.h.t.engine.tasks.runNow("realtime.maintain");
      await until("A sees the agent on B", async () => {
        const r = await s.json("/api/agents");
        return r.body.agents.some((x: { guid: string; instance_id: string }) =>
          x.guid === a.guid && x.instance_id !== s.h.t.engine.instanceId
        );
      });
      const op = await s.operator();
      const t = await op.open(a.guid, { cols: 80, rows: 24 });
      t.type("echo across-$((20+1))\n");
      await t.expect(/across-21/);
      t.resize(120, 40);
      t.type("stty size\n");
      await t.expect(/40 120/);

      // Flow control holds across the bus: a console that stops confirming stops the flood.
      t.keepText = 4096;
      t.type("yes | head -c 50000000\n");
      await until("the flood starts", () => t.received > 10_000);
      t.autoAck = false;
      await new Promise((r) => setTimeout(r, 700));
      assert.ok(t.received - t.acked <= 65_536 + 4096, `${t.received - t.acked} unconfirmed`);
      assert.ok(a.terminal.bufferedBytes() <= 65_536 + 4096);
      assert.ok(s.h.t.engine.service(terminalKey).bufferedBytes() <= 65_536);
      t.autoAck = true;
      t.ack();
      t.type("\x03");
      t.type("echo interrupted-$((2*3))\n");
      await t.expect(/interrupted-6/, 30_000);

      // The operator comes back on B (a load balancer's choice after a blip).
      op.close();
      await until(
        "detached",
        async () => (await s.json(`/api/terminal/sessions/${t.id}`)).body.status === "detached",
      );
      const opB = await s.operator(undefined, serverB);
      await t.reattach(opB);
      t.type("echo now-on-b-$((7*7))\n");
      await t.expect(/now-on-b-49/);
      assert.equal(b.engine.service(terminalKey).localSessions, 1);
      await until(
        "A let the session go",
        () => s.h.t.engine.service(terminalKey).localSessions === 0,
      );
      await t.close();

      // A file through A to the agent on B, and back.
      const data = new Uint8Array(randomBytes(300_000));
      const path = join(dir, "via-a.bin");
      const up = await fetch(
        `${s.server}/api/terminal/uploads/${a.guid}?path=${encodeURIComponent(path)}`,
        {
          method: "POST",
          headers: { ...s.h.admin.headers, "X-Checksum-SHA256": sha256(data) },
          body: data,
        },
      );
      assert.equal(up.status, 200, await up.clone().text());
      await up.body?.cancel();
      const down = await fetch(
        `${s.server}/api/terminal/devices/${a.guid}/files?path=${encodeURIComponent(path)}`,
        { headers: s.h.admin.headers },
      );
      assert.equal(down.status, 200);
      assert.equal(sha256(new Uint8Array(await down.arrayBuffer())), sha256(data));

      // An action through A.
      const act = await s.json(`/api/terminal/devices/${a.guid}/actions`, {
        json: { kind: "refresh", parts: ["processes"] },
      });
      assert.equal(act.body.status, "succeeded", JSON.stringify(act.body));
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await b.stop();
      await s.close();
    }
  },
});

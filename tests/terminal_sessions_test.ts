/**
 * Terminal sessions through a real engine: an operator socket, the engine, a reference
 * agent running the production agent's terminal host with a real shell on a real
 * pseudo-terminal.
 */
import assert from "node:assert/strict";
import { startTerminal } from "../plugins/terminal/testing/harness.ts";

Deno.test({
  name: "terminal: open, echo, stty size after a resize, exit code, close",
  ignore: Deno.build.os === "windows",
  async fn() {
    const s = await startTerminal();
    try {
      const a = await s.terminalAgent("term-one");
      const op = await s.operator();
      const t = await op.open(a.guid, { cols: 100, rows: 30 });
      await op.waitFor((f) => f.type === "terminal_opened" && f.data.session_id === t.id);
      t.type("echo hello-$((6*7))\n");
      await t.expect(/hello-42/);
      t.resize(132, 43);
      t.type("stty size\n");
      await t.expect(/43 132/);
      t.type("exit 3\n");
      await op.waitFor((f) => f.type === "terminal_exit" && f.data.session_id === t.id);
      assert.equal(t.exit.code, 3);
    } finally {
      await s.close();
    }
  },
});

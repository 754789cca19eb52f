import assert from "node:assert/strict";
import { TerminalHost } from "./host.ts";
import { fromBase64, toBase64 } from "./offsets.ts";
import { Recorder, testGrants } from "./testing.ts";

const unix = Deno.build.os !== "windows";

function output(rec: Recorder, id: string): string {
  const parts = rec.data("terminal_output").filter((d) => d.session_id === id)
    .sort((a, b) => Number(a.offset) - Number(b.offset));
  let text = "", at = 0;
  for (const p of parts) {
    const bytes = fromBase64(String(p.data));
    const off = Number(p.offset);
    if (off + bytes.length <= at) continue;
    text += new TextDecoder().decode(bytes.subarray(at - off));
    at = off + bytes.length;
  }
  return text;
}

Deno.test({
  name: "terminal host: a real shell; keystrokes by offset, once and in order; output by offset",
  ignore: !unix,
  async fn() {
    const g = await testGrants();
    const rec = new Recorder();
    const host = new TerminalHost({ send: rec.send, grants: g.verifier });
    try {
      const open = await g.grant("terminal", { cols: 90, rows: 30, window: 65536, chunk: 4096 });
      host.onFrame({ type: "terminal_open", data: open });
      const opened = await rec.waitFor((f) => f.type === "terminal_opened");
      assert.equal((opened.data as { mode: string }).mode, "pty");
      const input = (offset: number, text: string) =>
        host.onFrame({
          type: "terminal_input",
          data: { session_id: open.id, offset, data: toBase64(new TextEncoder().encode(text)) },
        });
      // Out of order, with a duplicate: written once, in order.
      const a = "echo one-$((1)) ", b = "two-$((2))\n";
      input(a.length, b);
      input(0, a);
      input(0, a);
      const end = Date.now() + 10_000;
      while (!/one-1 two-2/.test(output(rec, open.id)) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(output(rec, open.id), /one-1 two-2/);
      assert.doesNotMatch(output(rec, open.id), /one-1 one-1/);
      host.onFrame({ type: "terminal_resize", data: { session_id: open.id, cols: 100, rows: 40 } });
      input(a.length + b.length, "stty size\n");
      while (!/40 100/.test(output(rec, open.id)) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(output(rec, open.id), /40 100/);
    } finally {
      await host.closeAll("test");
    }
  },
});

Deno.test({
  name:
    "terminal host: output stops at the window until acknowledged; a reconnect resends the unacknowledged",
  ignore: !unix,
  async fn() {
    const g = await testGrants();
    const rec = new Recorder();
    const host = new TerminalHost({ send: rec.send, grants: g.verifier });
    try {
      const open = await g.grant("terminal", { window: 16384, chunk: 4096 });
      host.onFrame({ type: "terminal_open", data: open });
      await rec.waitFor((f) => f.type === "terminal_opened");
      host.onFrame({
        type: "terminal_input",
        data: { session_id: open.id, offset: 0, data: toBase64(new TextEncoder().encode("yes\n")) },
      });
      const sent = () =>
        Math.max(
          0,
          ...rec.data("terminal_output").map((d) =>
            Number(d.offset) + fromBase64(String(d.data)).length
          ),
        );
      const end = Date.now() + 10_000;
      while (sent() < 16384 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(sent(), 16384, "exactly one window, then it waits");
      assert.equal(host.bufferedBytes(), 16384);
      host.onFrame({ type: "terminal_ack", data: { session_id: open.id, offset: 8192 } });
      while (sent() < 24576 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(sent(), 24576);
      // The socket comes back: where the session stands, then the unacknowledged output again.
      const before = rec.frames.length;
      host.onConnected();
      const after = rec.frames.slice(before);
      assert.equal(after[0]!.type, "terminal_sync");
      assert.deepEqual(
        { offset: (after[0]!.data as { offset: number }).offset },
        { offset: 24576 },
      );
      const resent = after.filter((f) => f.type === "terminal_output");
      assert.equal(Number((resent[0]!.data as { offset: number }).offset), 8192);
      assert.equal(
        resent.reduce(
          (n, f) => n + fromBase64(String((f.data as { data: string }).data)).length,
          0,
        ),
        16384,
      );
      // Ctrl+C through the window: acknowledge everything, interrupt, the prompt comes back.
      host.onFrame({
        type: "terminal_input",
        data: { session_id: open.id, offset: 4, data: toBase64(new Uint8Array([3])) },
      });
      while (Date.now() < end) {
        host.onFrame({ type: "terminal_ack", data: { session_id: open.id, offset: sent() } });
        if (/[#$] $/.test(output(rec, open.id).slice(-20))) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(output(rec, open.id).slice(-20), /[#$] $/);
    } finally {
      await host.closeAll("test");
    }
  },
});

Deno.test({
  name: "terminal host: refusals, idle end, the socket away past the resume window, exit code",
  ignore: !unix,
  async fn() {
    const g = await testGrants();
    const rec = new Recorder();
    let now = Date.now();
    const host = new TerminalHost({
      send: rec.send,
      grants: g.verifier,
      now: () => now,
      maxSessions: 1,
      shell: () =>
        Promise.resolve({
          file: "/bin/sh",
          argv: ["sh"],
          env: { PATH: "/usr/bin:/bin" },
          user: "tester",
        }),
    });
    try {
      host.onFrame({ type: "terminal_open", data: { grant: "{}", signature: "AAAA" } });
      const one = await g.grant("terminal", { idle_seconds: 60, resume_seconds: 30 });
      host.onFrame({ type: "terminal_open", data: one });
      await rec.waitFor((f) => f.type === "terminal_opened");
      const two = await g.grant("terminal");
      host.onFrame({ type: "terminal_open", data: two });
      const refused = await rec.waitFor((f) =>
        f.type === "terminal_exit" && (f.data as { session_id: string }).session_id === two.id
      );
      assert.match(String((refused.data as { reason: string }).reason), /too many/);
      // Idle: the grant's idle time plus a minute of margin for the engine's own check.
      now += 61_000;
      host.tick();
      assert.equal(host.size, 1);
      now += 60_000;
      host.tick();
      const idle = await rec.waitFor((f) =>
        f.type === "terminal_exit" && (f.data as { session_id: string }).session_id === one.id
      );
      assert.equal((idle.data as { reason: string }).reason, "idle");

      // The socket goes away longer than the resume window: the shell ends; its exit is sent on return.
      const three = await g.grant("terminal", { resume_seconds: 30 });
      host.onFrame({ type: "terminal_open", data: three });
      await rec.waitFor((f) =>
        f.type === "terminal_opened" && (f.data as { session_id: string }).session_id === three.id
      );
      rec.open = false;
      host.onDisconnected();
      now += 31_000;
      host.tick();
      await new Promise((r) => setTimeout(r, 1500));
      rec.open = true;
      host.onConnected();
      const gone = await rec.waitFor((f) =>
        f.type === "terminal_exit" && (f.data as { session_id: string }).session_id === three.id
      );
      assert.equal((gone.data as { reason: string }).reason, "engine_unreachable");

      // A shell that exits reports its code.
      const four = await g.grant("terminal");
      host.onFrame({ type: "terminal_open", data: four });
      await rec.waitFor((f) =>
        f.type === "terminal_opened" && (f.data as { session_id: string }).session_id === four.id
      );
      host.onFrame({
        type: "terminal_input",
        data: {
          session_id: four.id,
          offset: 0,
          data: toBase64(new TextEncoder().encode("exit 7\n")),
        },
      });
      const exited = await rec.waitFor((f) =>
        f.type === "terminal_exit" && (f.data as { session_id: string }).session_id === four.id
      );
      assert.deepEqual({
        code: (exited.data as { code: number }).code,
        reason: (exited.data as { reason: string }).reason,
      }, { code: 7, reason: "exited" });
    } finally {
      await host.closeAll("test");
    }
  },
});

/**
 * Terminal sessions through a real engine on a real port: operator sockets, the engine,
 * reference agents running the production agent's terminal host with a real shell on a
 * real pseudo-terminal. Scope, site policy, limits, idle timeout, audit, transcripts,
 * flow control, a blip of either socket, forged grants and containment.
 */
import assert from "node:assert/strict";
import { realtimeKey } from "../plugins/realtime/mod.ts";
import { terminalKey } from "../plugins/terminal/mod.ts";
import { chooseShell } from "../agent/terminal/shell.ts";
import { type Json, startTerminal, until } from "../plugins/terminal/testing/harness.ts";
import { createOperator } from "./helpers/operators.ts";

const unix = Deno.build.os !== "windows";

Deno.test({
  name: "terminal: echo, stty size after a resize, a full-screen program, exit code, audit",
  ignore: !unix,
  async fn() {
    const s = await startTerminal();
    try {
      const a = await s.terminalAgent("term-one");
      const op = await s.operator();
      const t = await op.open(a.guid, { cols: 100, rows: 30 });
      await op.waitFor((f) => f.type === "terminal_opened" && f.data.session_id === t.id);
      t.type("echo hello-$((6*7))\n");
      await t.expect(/hello-42/);
      t.type("stty size\n");
      await t.expect(/30 100/);
      t.resize(132, 43);
      t.type("stty size\n");
      await t.expect(/43 132/);
      // A full-screen program switches to the alternate screen and back.
      t.type("vi -u NONE /tmp/terminal-test-unused.txt\n");
      // deno-lint-ignore no-control-regex
      await t.expect(/\x1b\[\?1049h/);
      t.type("\x1b:q!\r");
      // deno-lint-ignore no-control-regex
      await t.expect(/\x1b\[\?1049l[\s\S]*[#$] $/);
      t.type("exit 3\n");
      await op.waitFor((f) => f.type === "terminal_exit" && f.data.session_id === t.id);
      assert.equal(t.exit.code, 3);

      const row = (await s.json(`/api/terminal/sessions/${t.id}`)).body;
      assert.equal(row.status, "closed");
      assert.equal(row.exit_code, 3);
      assert.equal(row.mode, "pty");
      assert.ok(row.bytes_out > 100 && row.bytes_in > 20, JSON.stringify(row));
      const audit = (await s.json("/api/audit?action=terminal.session.close")).body.entries;
      const closed = audit.find((e: Json) => e.details.session_id === t.id);
      assert.equal(closed.actor_name, s.h.admin.username);
      assert.equal(closed.details.bytes_out, row.bytes_out);
      assert.equal(closed.details.exit_code, 3);
      assert.ok((await s.json("/api/audit?action=terminal.session.open")).body.entries.some((
        e: Json,
      ) => e.details.session_id === t.id));
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "terminal: run as the logged-on user — that user's shell, or the agent's refusal, recorded",
  ignore: !unix,
  async fn() {
    // What this machine offers decides what the session must show: with someone logged
    // on (and the agent as root) their shell, else the reason the agent gives.
    const expected = await chooseShell("user");
    const s = await startTerminal();
    try {
      const a = await s.terminalAgent("term-runas");
      const op = await s.operator();
      const t = await op.open(a.guid, { runAs: "user" });
      if (typeof expected === "string") {
        await op.waitFor((f) => f.type === "terminal_exit" && f.data.session_id === t.id);
        assert.equal(t.exit.reason, expected);
        const row = (await s.json(`/api/terminal/sessions/${t.id}`)).body;
        assert.equal(row.status, "closed");
        assert.equal(row.run_as, "user");
        assert.equal(row.end_reason, expected);
      } else {
        await op.waitFor((f) => f.type === "terminal_opened" && f.data.session_id === t.id);
        assert.equal(t.opened.user, expected.user);
        t.type("id -un\n");
        await t.expect(new RegExp(`^${expected.user}\\r?$`, "m"));
        await t.close();
      }
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name:
    "terminal: a User who lost the device's site while away cannot take the session back; it ends",
  ignore: !unix,
  async fn() {
    const s = await startTerminal();
    try {
      const a = await s.terminalAgent("term-scope-lost");
      const other = await s.h.createSite("Other site");
      const user = await createOperator(s.h.t, { role: "User", sites: [s.h.site.id] });
      const first = await s.operator(user);
      const t = await first.open(a.guid);
      t.type("echo before-$((3*3))\n");
      await t.expect(/before-9/);
      first.close();
      await until(
        "the session is detached",
        async () => (await s.json(`/api/terminal/sessions/${t.id}`)).body.status === "detached",
      );
      const moved = await s.json("/api/user_site_assignments/assign", {
        method: "POST",
        json: { usernames: [user.username], site_ids: [other.id] },
      });
      assert.equal(moved.status, 200);
      const again = await s.operator(user);
      await assert.rejects(t.reattach(again), /not_found/);
      const row = (await s.json(`/api/terminal/sessions/${t.id}`)).body;
      assert.equal(row.status, "closed");
      assert.equal(row.end_reason, "operator_scope_lost");
      await until("the agent ended the shell", () => a.terminal.size === 0);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "terminal: scope, site policy (disabled, reason required), limits and idle timeout",
  ignore: !unix,
  async fn() {
    const s = await startTerminal({
      env: { BOREALIS_TERMINAL_MAX_PER_DEVICE: "2", BOREALIS_TERMINAL_IDLE_SECONDS: "60" },
    });
    try {
      const a = await s.terminalAgent("term-policy");
      const other = await s.h.createSite("Elsewhere");
      const outsider = await createOperator(s.h.t, { role: "User", sites: [other.id] });
      const insider = await createOperator(s.h.t, { role: "User", sites: [s.h.site.id] });
      const out = await s.operator(outsider);
      await assert.rejects(out.open(a.guid), /not_found/);
      const inside = await s.operator(insider);
      const t1 = await inside.open(a.guid);
      t1.type("echo in-scope-$((5*5))\n");
      await t1.expect(/in-scope-25/);

      // A User who loses the site cannot open another one on the same socket.
      const ops = await s.json(`/api/users`);
      assert.equal(ops.status, 200);

      // Policy: reason required, then disabled.
      const put = (body: Json) =>
        s.json(`/api/terminal/site-policies/${s.h.site.id}`, { method: "PUT", json: body });
      const policy = {
        terminal_enabled: true,
        require_reason: true,
        record_transcripts: false,
        files_enabled: true,
      };
      assert.equal((await put(policy)).status, 200);
      const asUser = await s.h.op(`/api/terminal/site-policies/${s.h.site.id}`, {
        method: "PUT",
        json: policy,
        as: insider,
      });
      assert.equal(asUser.status, 403);
      const admin = await s.operator();
      await assert.rejects(admin.open(a.guid), /reason_required/);
      const t2 = await admin.open(a.guid, { reason: "ticket 4711" });
      // The device is at its limit of two.
      await assert.rejects(admin.open(a.guid, { reason: "third" }), /too_many_sessions/);
      assert.equal((await put({ ...policy, terminal_enabled: false })).status, 200);
      await t2.close();
      await assert.rejects(admin.open(a.guid, { reason: "x" }), /terminal_disabled/);
      const denied = (await s.json("/api/audit?action=terminal.session.open")).body.entries
        .filter((e: Json) => e.outcome === "denied").map((e: Json) => e.details.refused);
      assert.deepEqual(denied.sort(), ["reason_required", "terminal_disabled"]);
      const sessions = (await s.json(`/api/terminal/sessions?device_guid=${a.guid}`)).body.sessions;
      assert.equal(sessions.find((x: Json) => x.id === t2.id).reason, "ticket 4711");
      // The outsider sees none of it.
      const theirs = await s.h.op("/api/terminal/sessions", { as: outsider });
      assert.deepEqual((await theirs.json()).sessions, []);

      // Idle: no keystroke for the idle time ends the session (output alone does not count).
      await s.h.t.clock.advance(61_000);
      await s.h.t.engine.service(terminalKey).sweep();
      await inside.waitFor((f) => f.type === "terminal_exit" && f.data.session_id === t1.id);
      assert.equal(t1.exit.reason, "idle");
      await until("the agent ended the shell", () => a.terminal.size === 0);

      // A deleted site's policy goes with the hourly prune (asked of the inventory).
      const other2 = await s.json(`/api/terminal/site-policies/${other.id}`, {
        method: "PUT",
        json: { ...policy, terminal_enabled: false },
      });
      assert.equal(other2.status, 200);
      const del = await s.json("/api/sites/delete", { method: "POST", json: { ids: [other.id] } });
      assert.equal(del.status, 200);
      const policies = () =>
        s.h.t.engine.sql<{ site_id: number }[]>`
          select site_id from terminal_site_policies order by site_id`;
      assert.deepEqual((await policies()).map((r) => r.site_id), [s.h.site.id, other.id]);
      await s.h.t.engine.tasks.runNow("terminal.prune");
      assert.deepEqual((await policies()).map((r) => r.site_id), [s.h.site.id]);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "terminal: flow control — an output flood waits for the console; Ctrl+C still gets through",
  ignore: !unix,
  async fn() {
    const s = await startTerminal({ env: { BOREALIS_TERMINAL_WINDOW_BYTES: "65536" } });
    try {
      const a = await s.terminalAgent("term-flood");
      const op = await s.operator();
      const t = await op.open(a.guid);
      t.keepText = 4096;
      t.type("stty -echoctl; yes | head -c 200000000; echo FLOOD-END\n");
      // A console that stops confirming: output stops at one window.
      await until("the first output", () => t.received > 1000);
      t.autoAck = false;
      const stalled = t.received;
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(t.received - t.acked <= 65_536 + 4096, `${t.received - t.acked} unconfirmed`);
      assert.ok(a.terminal.bufferedBytes() <= 65_536 + 4096, `${a.terminal.bufferedBytes()}`);
      const engineHeld = s.h.t.engine.service(terminalKey).bufferedBytes();
      assert.ok(engineHeld <= 65_536, `engine holds ${engineHeld}`);
      t.autoAck = true;
      t.ack();
      await until("more output after the acknowledgement", () => t.received > stalled + 65_536);
      // Interrupt: the flood stops and the prompt returns.
      t.type("\x03");
      t.type("echo after-interrupt-$((1+1))\n");
      await t.expect(/after-interrupt-2/, 30_000);
      assert.ok(!/FLOOD-END/.test(t.text), "the flood was interrupted, not finished");
      await t.close();
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "terminal: a session survives a blip of the operator's socket and of the agent's socket",
  ignore: !unix,
  async fn() {
    const s = await startTerminal();
    try {
      const a = await s.terminalAgent("term-blip");
      const op = await s.operator();
      const t = await op.open(a.guid);
      t.type("echo before-$((1+1))\n");
      await t.expect(/before-2/);
      // The operator's socket drops while output is produced; a new socket resumes.
      t.type("sleep 1; echo produced-while-away-$((2+2))\n");
      op.close();
      await until(
        "the session detached",
        async () => (await s.json(`/api/terminal/sessions/${t.id}`)).body.status === "detached",
      );
      const op2 = await s.operator();
      const back = await t.reattach(op2);
      assert.equal(back.session_id, t.id);
      await t.expect(/produced-while-away-4/);
      // The agent's socket drops; keystrokes sent meanwhile are held and delivered.
      const guid = a.guid;
      a.socket.stop();
      await until(
        "the engine saw the agent go",
        () => !s.h.t.engine.service(realtimeKey).connected(guid),
      );
      t.type("echo typed-during-agent-blip-$((3+3))\n");
      a.terminal.onDisconnected();
      await a.socket.start();
      await t.expect(/typed-during-agent-blip-6/);
      await t.close();
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name: "terminal: recorded sessions are sealed by the vault and read back as asciicast",
  ignore: !unix,
  async fn() {
    const s = await startTerminal();
    try {
      const a = await s.terminalAgent("term-record");
      const put = await s.json(`/api/terminal/site-policies/${s.h.site.id}`, {
        method: "PUT",
        json: {
          terminal_enabled: true,
          require_reason: false,
          record_transcripts: true,
          files_enabled: true,
        },
      });
      assert.equal(put.status, 200);
      const op = await s.operator();
      const t = await op.open(a.guid, { cols: 90, rows: 20 });
      assert.equal(t.openAck.recording, true);
      t.type("echo recorded-$((40+2))\n");
      await t.expect(/recorded-42/);
      t.resize(100, 30);
      await t.close();
      const rows = await s.h.t.engine.sql<{ sealed: string }[]>`
        select sealed from terminal_transcripts where session_id = ${t.id}`;
      assert.ok(rows.length >= 1);
      for (const r of rows) {
        assert.match(r.sealed, /^aegis:v1:/);
        assert.ok(!r.sealed.includes("recorded"));
      }
      const res = await s.h.op(`/api/terminal/sessions/${t.id}/transcript`);
      assert.equal(res.status, 200);
      const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(
        { version: lines[0].version, width: lines[0].width, height: lines[0].height },
        { version: 2, width: 90, height: 20 },
      );
      const output = lines.slice(1).filter((e: Json) => e[1] === "o").map((e: Json) => e[2])
        .join("");
      assert.match(output, /recorded-42/);
      assert.ok(lines.some((e: Json) => e[1] === "r" && e[2] === "100x30"));
      // Users cannot read transcripts; reading one is audited.
      const user = await createOperator(s.h.t, { role: "User", sites: [s.h.site.id] });
      const denied = await s.h.op(`/api/terminal/sessions/${t.id}/transcript`, { as: user });
      assert.equal(denied.status, 403);
      await denied.body?.cancel();
      const read = (await s.json("/api/audit?action=terminal.transcript.read")).body.entries;
      assert.equal(read.length, 1);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name:
    "terminal: the agent refuses a session without a valid engine grant; containment ends sessions",
  ignore: !unix,
  async fn() {
    const s = await startTerminal();
    try {
      const a = await s.terminalAgent("term-forged");
      const channel = s.h.t.engine.service(realtimeKey);
      const id = crypto.randomUUID();
      const grant = JSON.stringify({
        v: 1,
        purpose: "terminal",
        id,
        guid: a.guid,
        operator: "mallory",
        via: "x",
        iat: Math.floor(s.h.t.clock.now() / 1000),
        exp: Math.floor(s.h.t.clock.now() / 1000) + 60,
      });
      // Not signed by the engine's code-signing key (a key of our own).
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
        "sign",
      ]) as CryptoKeyPair;
      const sig = new Uint8Array(
        await crypto.subtle.sign(
          { name: "Ed25519" },
          pair.privateKey,
          new TextEncoder().encode("borealis-grant-v1\n" + grant),
        ),
      );
      await channel.send(a.guid, {
        type: "terminal_open",
        data: { grant, signature: btoa(String.fromCharCode(...sig)) },
      });
      // No grant at all.
      await channel.send(a.guid, { type: "terminal_open", data: {} });
      await until(
        "both refused",
        () => a.events.filter((e) => e.event === "terminal_refused").length === 2,
      );
      assert.deepEqual(
        a.events.filter((e) => e.event === "terminal_refused").map((e) => e.reason).sort(),
        ["refused: grant_invalid", "refused: grant_missing"],
      );
      assert.equal(a.terminal.size, 0);

      // A real session, then the device is quarantined: the session ends at once.
      const op = await s.operator();
      const t = await op.open(a.guid);
      t.type("echo live-$((9*9))\n");
      await t.expect(/live-81/);
      const q = await s.h.op(`/api/devices/${a.guid}/quarantine`, { method: "POST" });
      assert.equal(q.status, 200, await q.clone().text());
      await op.waitFor((f) => f.type === "terminal_exit" && f.data.session_id === t.id);
      assert.equal(t.exit.reason, "device_quarantine");
      assert.equal((await s.json(`/api/terminal/sessions/${t.id}`)).body.status, "closed");
    } finally {
      await s.close();
    }
  },
});

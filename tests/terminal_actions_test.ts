/**
 * Live device actions and file transfers through a real engine on a real port and an
 * agent running the production agent's hosts on this machine: a process ended (its name
 * checked first), a harmless service of this test restarted and stopped through the
 * machine's own service manager (SysV `service` where systemd is not running, as in
 * containers; a transient systemd unit where it is), the snapshot refreshed, and files
 * round-tripped with SHA-256 checks, refusals and limits.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { systemdRunning } from "../agent/collectors/linux.ts";
import { type Json, startTerminal, until } from "../plugins/terminal/testing/harness.ts";
import { createOperator } from "./helpers/operators.ts";

const linux = Deno.build.os === "linux";
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A harmless service for the test, registered with the machine's service manager. */
async function testService(): Promise<
  { name: string; pid(): Promise<number | null>; remove(): Promise<void> }
> {
  const name = `borealis-test-${crypto.randomUUID().slice(0, 8)}`;
  if (systemdRunning()) {
    const run = await new Deno.Command("systemd-run", {
      args: [`--unit=${name}`, "--property=Type=simple", "sleep", "1000"],
    }).output();
    assert.ok(run.success, new TextDecoder().decode(run.stderr));
    const pid = async () => {
      const out = await new Deno.Command("systemctl", {
        args: ["show", "-p", "MainPID", "--value", `${name}.service`],
        stdout: "piped",
      }).output();
      const n = Number(new TextDecoder().decode(out.stdout).trim());
      return n > 0 ? n : null;
    };
    return {
      name: `${name}.service`,
      pid,
      remove: async () =>
        void await new Deno.Command("systemctl", { args: ["stop", name] }).output(),
    };
  }
  const pidFile = `/tmp/${name}.pid`;
  const script = `#!/bin/sh
### BEGIN INIT INFO
# Provides: ${name}
# Short-Description: a sleeping process for the Borealis terminal test
### END INIT INFO
PIDFILE=${pidFile}
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "$1" in
  start) running || { sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$PIDFILE"; } ;;
  stop) running && kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE" ;;
  restart) "$0" stop; "$0" start ;;
  status) running && { echo "${name} is running"; exit 0; }; echo "${name} is stopped"; exit 3 ;;
  *) echo "usage: $0 start|stop|restart|status"; exit 2 ;;
esac
`;
  const path = `/etc/init.d/${name}`;
  await Deno.writeTextFile(path, script, { mode: 0o755 });
  const start = await new Deno.Command("service", { args: [name, "start"] }).output();
  assert.ok(start.success);
  const pid = async () => {
    try {
      const n = Number((await Deno.readTextFile(pidFile)).trim());
      return n > 0 && await Deno.stat(`/proc/${n}`).then(() => true, () => false) ? n : null;
    } catch {
      return null;
    }
  };
  return {
    name,
    pid,
    remove: async () => {
      await new Deno.Command("service", { args: [name, "stop"] }).output().catch(() => {});
      await Deno.remove(path).catch(() => {});
      await Deno.remove(pidFile).catch(() => {});
    },
  };
}

Deno.test({
  name: "terminal actions: end a process, restart and stop a service, refresh the snapshot",
  ignore: !linux,
  async fn() {
    const s = await startTerminal();
    const sleeper = new Deno.Command("sleep", { args: ["300"] }).spawn();
    const bystander = new Deno.Command("sleep", { args: ["300"] }).spawn();
    let service: Awaited<ReturnType<typeof testService>> | undefined;
    try {
      const a = await s.terminalAgent("act-one");
      const act = (body: Json) => s.json(`/api/terminal/devices/${a.guid}/actions`, { json: body });

      // The name is checked first: a reused pid is not ended.
      const wrong = await act({ kind: "process_kill", pid: bystander.pid, name: "not-sleep" });
      assert.equal(wrong.status, 200);
      assert.equal(wrong.body.status, "failed");
      assert.match(wrong.body.result.error, /reused/);
      const refused = await act({ kind: "process_kill", pid: 1 });
      assert.equal(refused.body.status, "failed");
      assert.match(refused.body.result.error, /refused/);
      const kill = await act({ kind: "process_kill", pid: sleeper.pid, name: "sleep" });
      assert.equal(kill.status, 200, JSON.stringify(kill.body));
      assert.equal(kill.body.status, "succeeded", JSON.stringify(kill.body));
      assert.equal((await sleeper.status).signal, "SIGTERM");

      // Refresh: the snapshot the device page shows is collected now.
      const refresh = await act({ kind: "refresh" });
      assert.equal(refresh.body.status, "succeeded", JSON.stringify(refresh.body));
      assert.ok(refresh.body.result.processes > 3);
      const device = (await s.json(`/api/devices/${a.guid}`)).body;
      assert.ok(device.details.processes.some((p: Json) => p.pid === bystander.pid));
      assert.ok(!device.details.processes.some((p: Json) => p.pid === sleeper.pid));

      if (Deno.uid() === 0) {
        service = await testService();
        const before = await until("the service's process", () => service!.pid());
        const restart = await act({ kind: "service", action: "restart", name: service.name });
        assert.equal(restart.body.status, "succeeded", JSON.stringify(restart.body));
        const after = await until("a new process", async () => {
          const p = await service!.pid();
          return p && p !== before ? p : null;
        });
        assert.notEqual(after, before);
        const listed = await act({ kind: "refresh", parts: ["services"] });
        assert.equal(listed.body.status, "succeeded");
        const services = (await s.json(`/api/devices/${a.guid}`)).body.details.services;
        const mine = services.find((x: Json) => x.name === service!.name.replace(/\.service$/, ""));
        assert.equal(mine?.state, "running", JSON.stringify(services));
        const stop = await act({ kind: "service", action: "stop", name: service.name });
        assert.equal(stop.body.status, "succeeded", JSON.stringify(stop.body));
        await until("the service stopped", async () => (await service!.pid()) === null);
        const bad = await act({ kind: "service", action: "restart", name: "no-such-service-xyz" });
        assert.equal(bad.body.status, "failed");
      } else {
        console.log("not root: the service restart part needs root to register a test service");
      }

      // Validation, scope, history, audit.
      const invalid = await act({ kind: "service", action: "reload", name: "x" });
      assert.equal(invalid.status, 400);
      const evil = await act({ kind: "service", action: "stop", name: "../../bin/sh" });
      assert.equal(evil.status, 400);
      const other = await s.h.createSite("Other");
      const outsider = await createOperator(s.h.t, { role: "User", sites: [other.id] });
      const hidden = await s.h.op(`/api/terminal/devices/${a.guid}/actions`, {
        json: { kind: "refresh" },
        as: outsider,
      });
      assert.equal(hidden.status, 404);
      await hidden.body?.cancel();
      const history = (await s.json(`/api/terminal/devices/${a.guid}/actions`)).body.actions;
      assert.ok(history.length >= 4);
      assert.ok(history.every((h: Json) => h.status !== "pending"));
      const audit = (await s.json("/api/audit?action=terminal.device_action.process_kill")).body;
      assert.equal(audit.entries.length, 3);
    } finally {
      for (const c of [sleeper, bystander]) {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
        await c.status;
      }
      await service?.remove();
      await s.close();
    }
  },
});

Deno.test({
  name: "terminal files: upload and download round trip with SHA-256, refusals, limits and policy",
  ignore: !linux,
  async fn() {
    const s = await startTerminal({ env: { BOREALIS_TERMINAL_FILE_MAX_BYTES: "6000000" } });
    const dir = await Deno.makeTempDir({ prefix: "terminal-files-" });
    try {
      const a = await s.terminalAgent("files-one");
      const auth = s.h.admin.headers;
      const up = (path: string, body: Uint8Array, headers: Record<string, string> = {}, q = "") =>
        fetch(`${s.server}/api/terminal/uploads/${a.guid}?path=${encodeURIComponent(path)}${q}`, {
          method: "POST",
          headers: { ...auth, ...headers },
          body: body as Uint8Array<ArrayBuffer>,
        });
      const down = (path: string) =>
        fetch(`${s.server}/api/terminal/devices/${a.guid}/files?path=${encodeURIComponent(path)}`, {
          headers: auth,
        });
      const data = new Uint8Array(randomBytes(65_536 * 40 + 123));
      const target = join(dir, "payload.bin");
      const res = await up(target, data, { "X-Checksum-SHA256": sha256(data) });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.sha256, sha256(data));
      assert.equal(body.size, data.length);
      assert.deepEqual(await Deno.readFile(target), data);
      assert.equal((await Deno.stat(target)).mode! & 0o777, 0o644);

      const got = await down(target);
      assert.equal(got.status, 200);
      assert.equal(got.headers.get("x-checksum-sha256"), sha256(data));
      const bytes = new Uint8Array(await got.arrayBuffer());
      assert.equal(sha256(bytes), sha256(data));

      // Exists without overwrite; overwrite keeps the mode.
      await Deno.chmod(target, 0o600);
      const exists = await up(target, new Uint8Array([1, 2, 3]));
      assert.equal(exists.status, 409);
      assert.equal((await exists.json()).error, "exists");
      const over = await up(target, new Uint8Array([1, 2, 3]), {}, "&overwrite=true");
      assert.equal(over.status, 200, await over.clone().text());
      await over.body?.cancel();
      assert.deepEqual(await Deno.readFile(target), new Uint8Array([1, 2, 3]));
      assert.equal((await Deno.stat(target)).mode! & 0o777, 0o600);

      // A wrong declared checksum leaves nothing behind.
      const other = join(dir, "other.bin");
      const bad = await up(other, data.subarray(0, 1000), { "X-Checksum-SHA256": "0".repeat(64) });
      assert.equal(bad.status, 422);
      assert.equal((await bad.json()).error, "checksum_mismatch");
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["payload.bin"]);

      // Refusals.
      const missing = await down(join(dir, "nope"));
      assert.equal(missing.status, 404);
      assert.equal((await missing.json()).error, "file_not_found");
      const folder = await down(dir);
      assert.equal(folder.status, 400);
      await folder.body?.cancel();
      const relative = await down("relative/path");
      assert.equal(relative.status, 400);
      await relative.body?.cancel();
      const big = await up(join(dir, "big.bin"), new Uint8Array(6_000_001));
      assert.equal(big.status, 413);
      await big.body?.cancel();
      await Deno.writeFile(join(dir, "big.bin"), new Uint8Array(6_000_001));
      const bigDown = await down(join(dir, "big.bin"));
      assert.equal(bigDown.status, 413);
      await bigDown.body?.cancel();
      const chunked = await fetch(
        `${s.server}/api/terminal/uploads/${a.guid}?path=${encodeURIComponent(other)}`,
        {
          method: "POST",
          headers: auth,
          body: new Blob([data.subarray(0, 10)]).stream(),
        },
      );
      assert.equal(chunked.status, 411);
      await chunked.body?.cancel();

      // Policy: file transfer off for the site.
      const policy = await s.json(`/api/terminal/site-policies/${s.h.site.id}`, {
        method: "PUT",
        json: {
          terminal_enabled: true,
          require_reason: false,
          record_transcripts: false,
          files_enabled: false,
        },
      });
      assert.equal(policy.status, 200);
      const off = await down(target);
      assert.equal(off.status, 403);
      assert.equal((await off.json()).error, "files_disabled");

      const transfers = (await s.json(`/api/terminal/devices/${a.guid}/transfers`)).body.transfers;
      const ok = transfers.filter((t: Json) => t.status === "succeeded");
      assert.equal(ok.length, 3);
      assert.ok(transfers.every((t: Json) => t.status !== "running"));
      const audit = (await s.json("/api/audit?action=terminal.file.upload")).body.entries;
      assert.ok(audit.some((e: Json) => e.details.sha256 === sha256(data)));
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await s.close();
    }
  },
});

/**
 * The production agent end to end on Linux: `deno task agent:package` builds a real
 * package, a real engine process registers and signs it, the site's Linux install command
 * runs exactly as printed (BOREALIS_AGENT_ROOT + BOREALIS_AGENT_FOREGROUND=1), the agent
 * enrolls through the install token, reports this machine's inventory, runs a quick job
 * and a terminal session (the FFI pseudo-terminal on the package's runtime),
 * survives an engine restart (SIGTERM: the socket closes, the agent comes back), updates itself 1.0.0 →
 * 1.0.1, rolls back from a broken 1.0.2, answers `status`, and uninstalls. A revoked
 * install token is refused (expiry and the other refusals: tests/agent_updates_api_test.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { createTestDatabase } from "./helpers/test_db.ts";
import { Agent } from "../agent/protocol/client.ts";
import { OperatorClient } from "../plugins/terminal/testing/harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** Compressed runtimes shared by every build of the suite (and by the next run). */
const PACKAGE_CACHE = join(tmpdir(), "borealis-agent-package-cache");
// deno-lint-ignore no-explicit-any
type Json = any;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

async function packageVersion(dataDir: string, version: string, extra: string[] = []) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "agent:package", "--version", version, "--platforms", "linux-x64", ...extra],
    cwd: ROOT,
    env: { BOREALIS_DATA_DIR: dataDir, NO_COLOR: "1", BOREALIS_AGENT_PACKAGE_CACHE: PACKAGE_CACHE },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, text);
  return text;
}

/** A real engine process (tests/fixtures/agent_engine.ts); resolves once it listens. */
async function startEngine(env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/fixtures/agent_engine.ts"],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = Date.now() + 120_000;
  while (!/^READY /m.test(buf)) {
    const { value, done } = await reader.read();
    if (done || Date.now() > deadline) {
      throw new Error(`engine did not start: ${buf}\n${(await stderr).slice(-3000)}`);
    }
    buf += value;
  }
  const [, port, token] = /^READY (\d+) (\S+)/m.exec(buf)!;
  void (async () => {
    for (;;) if ((await reader.read()).done) break;
  })();
  return {
    port: Number(port),
    token: token!,
    async stop() {
      child.kill("SIGTERM");
      const st = await child.status;
      await stderr;
      return st.code;
    },
  };
}

Deno.test({
  name:
    "agent: install command, enrollment by token, inventory, job, engine restart, update and rollback",
  ignore: Deno.build.os !== "linux" || Deno.build.arch !== "x86_64",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const db = await createTestDatabase();
    const port = freePort();
    const env = {
      BOREALIS_PORT: String(port),
      BOREALIS_PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      BOREALIS_AGENT_HEARTBEAT_SECONDS: "5",
      BOREALIS_LIVENESS_FLUSH_SECONDS: "1",
      BOREALIS_AGENT_PACKAGE_SCAN_SECONDS: "3600",
      BOREALIS_DPOP_MAX_SKEW_SECONDS: "900",
      BOREALIS_SHUTDOWN_GRACE_MS: "2000",
    };
    const root = await Deno.makeTempDir({ prefix: "borealis-agent-root-" });
    let engine: Awaited<ReturnType<typeof startEngine>> | undefined;
    let child: Deno.ChildProcess | undefined;
    const lines: Json[] = [];
    const start = async () => {
      engine = await startEngine({ ...db.env, ...env });
    };
    const op = async (path: string, init: { method?: string; json?: unknown } = {}) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method: init.method ?? (init.json !== undefined ? "POST" : "GET"),
        headers: {
          Authorization: `Bearer ${engine!.token}`,
          ...(init.json !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const t0 = Date.now();
    const mark = (what: string) =>
      console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
    const event = (pred: (e: Json) => boolean, from = 0, ms = 90_000) =>
      until(
        `an agent event (seen: ${lines.slice(-8).map((l) => l.event).join(", ")})`,
        () => Promise.resolve(lines.slice(from).find(pred)),
        ms,
      );
    try {
      await packageVersion(db.dataDir, "1.0.0", ["--channel", "stable"]);
      await start();
      const scan = await op("/api/agent-updates/releases/scan", { json: {} });
      assert.equal(scan.status, 200, JSON.stringify(scan.body));
      assert.deepEqual(scan.body.registered, ["1.0.0"]);
      const site =
        (await op("/api/sites", { json: { name: "Install site", description: "" } })).body;

      const token =
        (await op(`/api/sites/${site.id}/install-tokens`, { json: { note: "e2e" } })).body;
      assert.ok(token.token.startsWith("bit_"), JSON.stringify(token));
      const cmd = token.install_commands.linux as string;
      assert.match(cmd, /--manifest-sha256 '[0-9a-f]{64}'/);
      // The site row shows the same command to admins.
      const row = (await op("/api/sites")).body.sites.find((x: Json) => x.id === site.id);
      assert.equal(row.install_commands.linux, cmd);

      // Run the install command exactly as printed, unprivileged and in the foreground.
      const work = join(root, "cwd");
      await Deno.mkdir(work);
      child = new Deno.Command("sh", {
        args: ["-c", cmd],
        cwd: work,
        env: { BOREALIS_AGENT_ROOT: join(root, "agent"), BOREALIS_AGENT_FOREGROUND: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
      const stderr = new Response(child.stderr).text();
      void (async () => {
        let buf = "";
        for await (const chunk of child!.stdout.pipeThrough(new TextDecoderStream())) {
          buf += chunk;
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            try {
              lines.push(JSON.parse(line));
            } catch {
              lines.push({ event: "text", line });
            }
          }
        }
      })();
      const connected = await event((e) => e.event === "connected").catch(async (err) => {
        throw new Error(
          `${err.message}\n${JSON.stringify(lines.slice(-20))}\n${await Promise.race([
            stderr,
            Promise.resolve(""),
          ])}`,
        );
      });
      mark("installed and connected");
      const guid = String(connected.guid).toUpperCase();
      assert.equal(connected.version, "1.0.0");

      // Real inventory from this machine, and the device list shows the agent version.
      const osRelease = await Deno.readTextFile("/etc/os-release").catch(() => "");
      const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(osRelease)?.[1];
      const device = await until("details", async () => {
        const d = (await op(`/api/devices/${guid}`)).body;
        return d?.details?.summary?.collection_ms ? d : undefined;
      });
      if (pretty) assert.equal(device.details.summary.operating_system, pretty);
      assert.equal(device.site_id, site.id);
      assert.ok(device.details.network.length > 0);
      assert.ok(device.details.storage.length > 0);
      assert.ok(
        device.details.processes.some((p: Json) => p.pid === child!.pid || p.name === "deno"),
      );
      // The installed packages of this machine went to the engine (which keeps software in
      // its own table, not in the details document).
      const sent = await event((e) => e.event === "details_sent");
      assert.equal(sent.http_status, 200);
      if (await Deno.stat("/usr/bin/dpkg-query").catch(() => null)) {
        const dpkg = await new Deno.Command("dpkg-query", {
          args: ["-W", "-f", "${db:Status-Abbrev}\\n"],
          stdout: "piped",
        })
          .output();
        const installed = new TextDecoder().decode(dpkg.stdout).split("\n").filter((l) =>
          l.startsWith("ii")
        ).length;
        assert.equal(sent.software, installed);
      }
      await until("agent version in the device list", async () => {
        const d = (await op("/api/devices")).body.devices.find((x: Json) => x.guid === guid);
        return d?.agent?.version === "1.0.0";
      });

      mark("inventory seen");
      // A quick job runs through the real agent.
      const asm = await op("/api/assemblies", {
        json: {
          domain: "user_created",
          display_name: "whoami",
          assembly_kind: "script",
          assembly_type: "bash",
          payload: "echo ran-by-agent\n",
          metadata: { timeout_seconds: 30 },
        },
      });
      assert.equal(asm.status, 201, JSON.stringify(asm.body));
      const run = await op("/api/scripts/quick_run", {
        json: { assembly_guid: asm.body.assembly_guid, hostnames: [device.hostname] },
      });
      assert.equal(run.status, 200, JSON.stringify(run.body));
      const activity = Number(run.body.results[0].activity_id);
      const job = await until("job result", async () => {
        const r = (await op(`/api/device/activity/job/${activity}`)).body;
        return r && !["Pending", "Running"].includes(r.status) ? r : undefined;
      });
      assert.equal(job.status, "Success", JSON.stringify(job));
      assert.equal(job.stdout, "ran-by-agent\n");

      mark("job done");
      // A terminal through the bundled agent on the package's own runtime: its FFI
      // pseudo-terminal works there (the shell has a tty and the window size).
      const operator = await OperatorClient.connect(`http://127.0.0.1:${port}`, {
        Authorization: `Bearer ${engine!.token}`,
      });
      const term = await operator.open(guid, { cols: 91, rows: 27 });
      term.type("echo tty=$(tty) size=$(stty size)\n");
      await term.expect(/tty=\/dev\/pts\/\d+ size=27 91/);
      assert.equal(term.opened?.mode ?? "pty", "pty");
      await term.close();
      operator.close();
      await event((e) => e.event === "terminal_closed");

      mark("terminal done");
      // The engine restarts; the agent reconnects by itself.
      const before = lines.length;
      assert.equal(await engine!.stop(), 0);
      engine = undefined;
      const dropped = await event((e) => e.event === "disconnected", before);
      // The engine closes every agent socket itself before the listener stops: 4503.
      assert.equal(dropped.code, 4503, JSON.stringify(dropped));
      await start();
      await event((e) => e.event === "connected", before);

      mark("reconnected after the restart");
      // 1.0.0 → 1.0.1 through a rollout.
      await packageVersion(db.dataDir, "1.0.1");
      assert.deepEqual(
        (await op("/api/agent-updates/releases/scan", { json: {} })).body.registered,
        ["1.0.1"],
      );
      const rollout = await op("/api/agent-updates/rollouts", {
        json: { device_guids: [guid], version: "1.0.1", max_concurrency: 1 },
      });
      assert.equal(rollout.status, 201, JSON.stringify(rollout.body));
      await event((e) => e.event === "update_installed" && e.to === "1.0.1");
      await event((e) => e.event === "connected" && e.version === "1.0.1");
      await until("update succeeded", async () => {
        const d = (await op("/api/devices")).body.devices.find((x: Json) => x.guid === guid);
        return d?.agent?.version === "1.0.1" && d.agent.update_state === "succeeded";
      });
      mark("updated to 1.0.1");
      const current = await Deno.realPath(join(root, "agent/program/current"));
      assert.match(current, /versions\/1\.0\.1$/);

      // A broken 1.0.2 is tried, fails and is rolled back to 1.0.1.
      await packageVersion(db.dataDir, "1.0.2", ["--entry", "tests/fixtures/broken_agent.ts"]);
      await op("/api/agent-updates/releases/scan", { json: {} });
      const broken = await op("/api/agent-updates/rollouts", {
        json: { device_guids: [guid], version: "1.0.2" },
      });
      assert.equal(broken.status, 201, JSON.stringify(broken.body));
      const rolled = await event((e) => e.event === "update_rolled_back" && e.to === "1.0.2");
      assert.match(String(rolled.reason), /exited with code 1/);
      await until("rollback reported", async () => {
        const d = (await op("/api/devices")).body.devices.find((x: Json) => x.guid === guid);
        return d?.agent?.version === "1.0.1" && d.agent.update_state === "rolled_back";
      });
      assert.match(await Deno.realPath(join(root, "agent/program/current")), /versions\/1\.0\.1$/);

      mark("rolled back from 1.0.2");
      // The technician's status command.
      const st = await new Deno.Command(join(root, "agent/program/borealis-agent"), {
        args: ["status", "--json"],
        stdout: "piped",
      }).output();
      const status = JSON.parse(new TextDecoder().decode(st.stdout));
      assert.equal(status.running, true);
      assert.equal(status.version, "1.0.1");
      assert.equal(String(status.guid).toUpperCase(), guid);

      mark("status checked");
      // Stop the agent; its install token, once revoked, is refused (expiry and the other
      // refusals are covered in tests/agent_updates_api_test.ts).
      Deno.kill(-child.pid, "SIGTERM");
      await child.status;
      child = undefined;
      mark("agent stopped");
      const probe = await Agent.open({
        server: `http://127.0.0.1:${port}`,
        hostname: "probe-host",
      });
      const rev = await op(`/api/sites/${site.id}/install-tokens/${token.id}/revoke`, { json: {} });
      assert.equal(rev.body.state, "revoked");
      await assert.rejects(
        probe.requestEnrollment({ installToken: token.token }),
        /invalid_install_token/,
      );

      // Uninstall removes program, configuration, state and logs.
      const un = await new Deno.Command(join(root, "agent/program/borealis-agent"), {
        args: ["uninstall"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(un.success, new TextDecoder().decode(un.stderr));
      for (const dir of ["program", "config", "state", "logs"]) {
        await assert.rejects(Deno.stat(join(root, "agent", dir)), dir);
      }
    } finally {
      if (child) {
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await engine?.stop().catch(() => {});
      await db.drop();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});

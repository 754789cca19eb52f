/**
 * `agent.js install` and `agent.js uninstall`.
 *
 * install (run by install.sh / install.ps1 from the folder they downloaded and checked):
 * verifies the manifest signature with the engine's code-signing key and every file
 * against the manifest, copies the version to `<program>/versions/<v>` and points
 * `current` at it, writes agent.json and the install token (state/install.json, 0600,
 * deleted once enrolled), then registers and starts the service — systemd on Linux,
 * launchd on macOS, WinSW on Windows — or, with BOREALIS_AGENT_FOREGROUND=1, runs the
 * agent in the foreground. Under BOREALIS_AGENT_ROOT the service manager is never
 * touched: the service file is written to `<root>/service/` for inspection only.
 *
 * uninstall: stops and unregisters the service and removes the program, configuration,
 * state and logs (`--keep-data` keeps configuration and state, so a reinstall keeps the
 * device's identity).
 *
 * @module
 */
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "./fs.ts";
import { type AgentConfig, writeConfig } from "./config.ts";
import { type AgentPaths, files, LAUNCHD_LABEL, SERVICE_NAME } from "./paths.ts";
import {
  currentPlatform,
  parseManifest,
  platformFiles,
  sha256File,
  verifyManifestSignature,
} from "../updater/manifest.ts";
import { processAlive, switchCurrent } from "../updater/supervisor.ts";

/** Options of {@link install}. */
export interface InstallOptions {
  paths: AgentPaths;
  server: string;
  /** Install token (or a site enrollment code) for the first enrollment. */
  token?: string;
  code?: string;
  hostname?: string;
  /** Folder holding the checked package (agent.js, deno, manifest.txt, manifest.sig). */
  from: string;
  foreground: boolean;
  print: (line: string) => void;
}

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    return { ok: r.success, out: out.trim() };
  } catch (err) {
    return { ok: false, out: err instanceof Error ? err.message : String(err) };
  }
}

/** Fills a service file template with this machine's folders. */
export function renderServiceFile(template: string, paths: AgentPaths): string {
  return template.replaceAll("@PROGRAM@", paths.program).replaceAll("@STATE@", paths.state)
    .replaceAll("@LOGS@", paths.logs);
}

/** The service file this OS uses: [template name in the package, where it goes]. */
export function serviceFileFor(paths: AgentPaths, os = Deno.build.os): [string, string] {
  if (os === "windows") {
    return ["borealis-agent-service.xml", join(paths.program, "borealis-agent-service.xml")];
  }
  if (os === "darwin") {
    return [
      "com.borealis.agent.plist",
      paths.rooted
        ? join(paths.program, "..", "service", `${LAUNCHD_LABEL}.plist`)
        : `/Library/LaunchDaemons/${LAUNCHD_LABEL}.plist`,
    ];
  }
  return [
    "borealis-agent.service",
    paths.rooted
      ? join(paths.program, "..", "service", `${SERVICE_NAME}.service`)
      : `/etc/systemd/system/${SERVICE_NAME}.service`,
  ];
}

async function stopService(paths: AgentPaths): Promise<void> {
  if (paths.rooted) {
    // A foreground or earlier trial under this root: stop its supervisor.
    const st = await readJson<{ supervisor_pid?: number }>(files.status(paths));
    if (st?.supervisor_pid && await processAlive(st.supervisor_pid)) {
      try {
        Deno.kill(st.supervisor_pid, "SIGTERM");
      } catch { /* gone */ }
      for (let i = 0; i < 150 && await processAlive(st.supervisor_pid); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return;
  }
  if (Deno.build.os === "windows") {
    const wrapper = join(paths.program, "borealis-agent-service.exe");
    await sh(wrapper, ["stop"]);
  } else if (Deno.build.os === "darwin") {
    await sh("launchctl", ["bootout", `system/${LAUNCHD_LABEL}`]);
  } else {
    await sh("systemctl", ["stop", SERVICE_NAME]);
  }
}

async function copyVersion(from: string, to: string): Promise<void> {
  const tmp = `${to}.partial`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (!e.isFile) continue;
    await Deno.copyFile(join(from, e.name), join(tmp, e.name));
  }
  await Deno.remove(to, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, to);
}

/** The technician's command: `<program>/borealis-agent status` and friends. */
async function writeLauncher(paths: AgentPaths): Promise<void> {
  if (Deno.build.os === "windows") {
    await Deno.writeTextFile(
      join(paths.program, "borealis-agent.cmd"),
      `@echo off\r\n"%~dp0current\\deno.exe" run --allow-all --no-config --no-lock --quiet "%~dp0current\\agent.js" %*\r\n`,
    );
    return;
  }
  const env = paths.rooted
    ? `BOREALIS_AGENT_ROOT='${
      join(paths.program, "..").replaceAll("'", "'\\''")
    }'\nexport BOREALIS_AGENT_ROOT\n`
    : "";
  await Deno.writeTextFile(
    join(paths.program, "borealis-agent"),
    `#!/bin/sh\n# Borealis Agent command line: status, uninstall, collect, version.\n${env}` +
      `DIR=$(dirname "$0")\nDENO_DIR="\${DENO_DIR:-${paths.state}/deno}" DENO_NO_UPDATE_CHECK=1 ` +
      `exec "$DIR/current/deno" run --allow-all --no-config --no-lock --quiet "$DIR/current/agent.js" "$@"\n`,
    { mode: 0o755 },
  );
}

/** Installs (or reinstalls) the agent; returns the exit code. */
export async function install(o: InstallOptions): Promise<number> {
  const { paths, print } = o;
  if (!paths.rooted && Deno.build.os !== "windows" && Deno.uid() !== 0) {
    print("install: run as root (or set BOREALIS_AGENT_ROOT=<dir> for an unprivileged trial)");
    return 1;
  }
  const server = o.server.replace(/\/+$/, "");
  const manifestBytes = await Deno.readFile(join(o.from, "manifest.txt"));
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  const wanted = platformFiles(manifest, currentPlatform());
  for (const f of wanted) {
    const got = await sha256File(join(o.from, f.name));
    if (got.sha256 !== f.sha256 || got.size !== f.size) {
      print(`install: ${f.name} does not match the manifest`);
      return 1;
    }
  }
  // The engine's code-signing key is the one agents pin at enrollment and check every
  // script and update with; the package must carry its signature.
  const signature = (await Deno.readTextFile(join(o.from, "manifest.sig"))).trim();
  const keyRes = await fetch(`${server}/api/agent/code-signing-key`);
  const key = keyRes.ok ? (await keyRes.json()).signing_key : null;
  if (!key || !(await verifyManifestSignature(manifestBytes, signature, key))) {
    print("install: the package's signature does not verify with the engine's code-signing key");
    return 1;
  }
  print(
    `installing Borealis Agent ${manifest.version} (${currentPlatform()}) into ${paths.program}`,
  );
  await stopService(paths);
  for (const dir of [paths.program, paths.config, paths.state, paths.logs, files.versions(paths)]) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o750 });
  }
  if (Deno.build.os !== "windows") await Deno.chmod(paths.state, 0o700);
  await copyVersion(o.from, files.version(paths, manifest.version));
  await switchCurrent(paths, manifest.version);
  await writeLauncher(paths);

  const previous = await readJson<AgentConfig>(files.config(paths));
  const cfg: AgentConfig = { ...previous, server };
  if (o.hostname) cfg.hostname = o.hostname;
  await writeConfig(files.config(paths), cfg);
  const identity = await readJson<{ refresh_token?: string }>(join(paths.state, "state.json"));
  if (identity?.refresh_token && previous?.server === server) {
    print("already enrolled with this engine: keeping the device's identity");
  } else if (o.token || o.code) {
    await writeJsonAtomic(files.install(paths), {
      ...(o.token ? { install_token: o.token } : { enrollment_code: o.code }),
      installed_at: new Date().toISOString(),
      signing_key: key,
    });
  } else {
    print("install: --token (or --code) is required for a first installation");
    return 2;
  }
  // A reinstall starts from a clean update state.
  await Deno.remove(files.update(paths)).catch(() => {});

  const [template, target] = serviceFileFor(paths);
  const rendered = renderServiceFile(
    await Deno.readTextFile(join(files.version(paths, manifest.version), template)),
    paths,
  );
  await Deno.mkdir(join(target, ".."), { recursive: true });
  await Deno.writeTextFile(target, rendered, { mode: 0o644 });

  if (o.foreground) {
    print("running in the foreground (BOREALIS_AGENT_FOREGROUND=1); stop with Ctrl+C");
    const { runService } = await import("../updater/supervisor.ts");
    return await runService({ paths, foreground: true });
  }
  if (paths.rooted) {
    print(
      `installed under ${
        join(paths.program, "..")
      }; the service file is at ${target} (not registered:`,
    );
    print(`BOREALIS_AGENT_ROOT never touches the service manager). Start it with:`);
    print(`  BOREALIS_AGENT_FOREGROUND=1 ${join(paths.program, "borealis-agent")} service`);
    return 0;
  }
  let started: { ok: boolean; out: string };
  if (Deno.build.os === "windows") {
    const wrapper = join(paths.program, "borealis-agent-service.exe");
    await Deno.copyFile(join(files.version(paths, manifest.version), "winsw.exe"), wrapper);
    await Deno.copyFile(
      join(files.version(paths, manifest.version), "winsw.exe.config"),
      `${wrapper}.config`,
    )
      .catch(() => {});
    await sh(wrapper, ["uninstall"]);
    const inst = await sh(wrapper, ["install"]);
    started = inst.ok ? await sh(wrapper, ["start"]) : inst;
  } else if (Deno.build.os === "darwin") {
    await sh("launchctl", ["bootout", `system/${LAUNCHD_LABEL}`]);
    started = await sh("launchctl", ["bootstrap", "system", target]);
  } else {
    const reload = await sh("systemctl", ["daemon-reload"]);
    started = reload.ok ? await sh("systemctl", ["enable", "--now", SERVICE_NAME]) : reload;
  }
  if (!started.ok) {
    print(`install: the files are in place but the service did not start: ${started.out}`);
    print("run it in the foreground instead with BOREALIS_AGENT_FOREGROUND=1 (docs/agent.md)");
    return 1;
  }
  // Report how far it got within a minute (enrollment may wait for an operator).
  for (let i = 0; i < 60; i++) {
    const st = await readJson<{ state?: string }>(files.status(paths));
    if (st?.state === "connected" || st?.state?.startsWith("enrollment_")) {
      print(`service started: ${st.state}`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  print("service started; it has not connected yet (see the log or `borealis-agent status`)");
  return 0;
}

/** Removes the agent; returns the exit code. */
export async function uninstall(
  paths: AgentPaths,
  opts: { keepData: boolean; print: (line: string) => void },
): Promise<number> {
  await stopService(paths);
  if (!paths.rooted) {
    const [, target] = serviceFileFor(paths);
    if (Deno.build.os === "windows") {
      await sh(join(paths.program, "borealis-agent-service.exe"), ["uninstall"]);
    } else if (Deno.build.os === "darwin") {
      await Deno.remove(target).catch(() => {});
    } else {
      await sh("systemctl", ["disable", SERVICE_NAME]);
      await Deno.remove(target).catch(() => {});
      await sh("systemctl", ["daemon-reload"]);
    }
  } else {
    await Deno.remove(serviceFileFor(paths)[1]).catch(() => {});
  }
  const remove = [paths.logs, ...(opts.keepData ? [] : [paths.state, paths.config])];
  for (const dir of remove) await Deno.remove(dir, { recursive: true }).catch(() => {});
  if (Deno.build.os === "windows") {
    // This very process runs deno.exe from the program folder, which Windows will not
    // delete while it runs: a detached cmd removes it a few seconds after we exit.
    new Deno.Command("cmd.exe", {
      args: ["/d", "/c", `ping -n 5 127.0.0.1 >nul & rmdir /s /q "${paths.program}"`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().unref();
  } else {
    await Deno.remove(paths.program, { recursive: true }).catch(() => {});
  }
  opts.print(`Borealis Agent removed${opts.keepData ? " (configuration and state kept)" : ""}`);
  return 0;
}

/**
 * The supervisor (`agent.js service`): what the service manager (systemd, launchd,
 * WinSW) or a foreground trial runs. It starts the worker from the committed version
 * (`<program>/current`), writes the worker's events to the rotated log and to
 * state/status.json, restarts a crashed worker with backoff, and drives updates:
 *
 * 1. the worker stages version N+1 and exits with 75;
 * 2. the supervisor starts N+1 as a trial and waits up to `update_trial_seconds`
 *    (default 120) for it to report `connected` (authenticated socket to the engine);
 * 3. connected: `current` is switched to N+1 (an atomic symlink rename on Linux and
 *    macOS) and older versions beyond the previous one are removed; not connected in
 *    time, or exited first: N+1 is killed, `current` stays on N, update.json records
 *    `rolled_back` with the reason, and N runs again and tells the engine.
 *
 * Because the supervisor is code from the committed version and the trial runs in a
 * child process, a version that cannot even start cannot prevent its own rollback.
 *
 * @module
 */
import { join } from "node:path";
import { readConfig } from "../service/config.ts";
import { exists, readJson, writeJsonAtomic } from "../service/fs.ts";
import { RotatingLog } from "../service/log.ts";
import { type AgentPaths, files } from "../service/paths.ts";
import { EXIT_UPDATE_STAGED, type UpdateState } from "./updater.ts";

/** Exit code of a revoked worker (see worker.ts). */
const EXIT_REVOKED = 3;

/** Options of {@link runService}. */
export interface ServiceOptions {
  paths: AgentPaths;
  /** Echo the log to stdout (foreground mode). */
  foreground?: boolean;
  /** The bundle this supervisor runs from (fallback when `current` is missing). */
  selfDir?: string;
}

/** The executable and bundle of an installed version folder. */
export function versionCommand(dir: string, args: string[]): { cmd: string; args: string[] } {
  const deno = join(dir, Deno.build.os === "windows" ? "deno.exe" : "deno");
  return {
    cmd: deno,
    args: [
      "run",
      "--allow-all",
      "--no-config",
      "--no-lock",
      "--quiet",
      join(dir, "agent.js"),
      ...args,
    ],
  };
}

/** Points `current` at `versions/<version>` (atomically where the OS allows). */
export async function switchCurrent(paths: AgentPaths, version: string): Promise<void> {
  const current = files.current(paths);
  const target = join("versions", version);
  if (Deno.build.os === "windows") {
    // A junction cannot be renamed over another: remove, then create. The window is a
    // few milliseconds and the supervisor itself keeps running meanwhile.
    await Deno.remove(current).catch(() => {});
    await Deno.symlink(join(paths.program, target), current, { type: "junction" });
    return;
  }
  const tmp = `${current}.${crypto.randomUUID().slice(0, 8)}`;
  await Deno.symlink(target, tmp);
  await Deno.rename(tmp, current);
}

/** The version `current` points at, or null. */
export async function currentVersion(paths: AgentPaths): Promise<string | null> {
  try {
    const real = await Deno.realPath(files.current(paths));
    return real.split(/[\\/]/).pop() ?? null;
  } catch {
    return null;
  }
}

async function pruneVersions(paths: AgentPaths, keep: string[]): Promise<void> {
  try {
    for await (const e of Deno.readDir(files.versions(paths))) {
      if (!keep.includes(e.name)) {
        await Deno.remove(join(files.versions(paths), e.name), { recursive: true }).catch(() => {});
      }
    }
  } catch { /* no versions folder (running from source) */ }
}

/** Is process `pid` alive? */
export async function processAlive(pid: number): Promise<boolean> {
  if (Deno.build.os === "linux") return await exists(`/proc/${pid}`);
  const cmd = Deno.build.os === "windows"
    ? { cmd: "tasklist", args: ["/FI", `PID eq ${pid}`, "/NH"] }
    : { cmd: "ps", args: ["-p", String(pid)] };
  try {
    const out = await new Deno.Command(cmd.cmd, { args: cmd.args, stdout: "piped", stderr: "null" })
      .output();
    return out.success && new TextDecoder().decode(out.stdout).includes(String(pid));
  } catch {
    return false;
  }
}

/** Runs the supervisor until SIGTERM/SIGINT; returns the exit code. */
export async function runService(o: ServiceOptions): Promise<number> {
  const { paths } = o;
  const cfg = await readConfig(files.config(paths));
  const log = new RotatingLog({
    path: files.log(paths),
    maxBytes: cfg.log_max_bytes,
    keep: cfg.log_keep,
    echo: o.foreground ? (l) => console.log(l) : undefined,
  });
  const trialMs = (cfg.update_trial_seconds ?? 120) * 1000;
  const status: Record<string, unknown> = {
    supervisor_pid: Deno.pid,
    started_at: new Date().toISOString(),
    server: cfg.server,
    foreground: !!o.foreground,
    state: "starting",
  };
  const saveStatus = () => writeJsonAtomic(files.status(paths), status).catch(() => {});
  await saveStatus();
  log.event("supervisor_started", { pid: Deno.pid, foreground: !!o.foreground });

  let stopping = false;
  let child: Deno.ChildProcess | undefined;
  let wake: (() => void) | undefined;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log.event("supervisor_stopping");
    try {
      child?.kill("SIGTERM");
    } catch { /* gone */ }
    wake?.();
    // A worker that ignores SIGTERM is killed after 15 s.
    setTimeout(() => {
      try {
        child?.kill("SIGKILL");
      } catch { /* gone */ }
    }, 15_000);
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    try {
      Deno.addSignalListener(sig, stop);
    } catch { /* Windows has no SIGTERM listener */ }
  }
  if (Deno.build.os === "windows") {
    try {
      Deno.addSignalListener("SIGBREAK", stop);
    } catch { /* not a console */ }
  }
  const pause = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      wake = () => {
        clearTimeout(t);
        r();
      };
    });

  let failures = 0;
  while (!stopping) {
    const update = await readJson<UpdateState>(files.update(paths));
    let trial: UpdateState | null = null;
    if (update?.state === "staged") {
      trial = { ...update, state: "trial", at: new Date().toISOString() };
      await writeJsonAtomic(files.update(paths), trial);
    } else if (update?.state === "trial") {
      // The supervisor itself stopped during a trial: the trial did not prove itself.
      await writeJsonAtomic(files.update(paths), {
        ...update,
        state: "rolled_back",
        reason: "the agent restarted during the trial",
        at: new Date().toISOString(),
      });
    }
    const committed = await currentVersion(paths);
    const dir = trial
      ? files.version(paths, trial.to)
      : committed
      ? files.version(paths, committed)
      : o.selfDir;
    if (!dir) {
      log.event("error", { message: "no installed version to run" });
      return 1;
    }
    // An installed version runs with its own runtime; a bundle run by hand (no `current`
    // yet) runs with the runtime running this supervisor.
    const own = versionCommand(dir, ["worker"]);
    const { cmd, args } = await exists(own.cmd) ? own : { cmd: Deno.execPath(), args: own.args };
    const startedAt = Date.now();
    try {
      child = new Deno.Command(cmd, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: {
          DENO_DIR: join(paths.state, "deno"),
          DENO_NO_UPDATE_CHECK: "1",
          NO_COLOR: "1",
          ...(trial ? { BOREALIS_AGENT_TRIAL: "1" } : {}),
        },
      }).spawn();
    } catch (err) {
      log.event("error", {
        message: `cannot start ${cmd}: ${err instanceof Error ? err.message : err}`,
      });
      child = undefined;
    }
    let connected = false;
    let trialTimer: ReturnType<typeof setTimeout> | undefined;
    let trialExpired = false;
    const running = trial?.to ?? committed ?? "source";
    status.version = running;
    status.worker_pid = child?.pid ?? null;
    status.state = trial ? "update_trial" : "starting";
    status.update = trial ?? update ?? null;
    await saveStatus();
    if (trial && child) {
      log.event("update_trial", { from: trial.from, to: trial.to, seconds: trialMs / 1000 });
      const c = child;
      trialTimer = setTimeout(() => {
        if (connected) return;
        trialExpired = true;
        log.event("update_trial_timeout", { to: trial!.to });
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }, trialMs);
    }
    const onEvent = async (e: Record<string, unknown>) => {
      status.last_event = e.event;
      status.last_event_at = new Date().toISOString();
      if (e.event === "connected") {
        status.state = "connected";
        status.guid = e.guid;
        status.connected_at = status.last_event_at;
        failures = 0;
        if (trial && !connected && !trialExpired) {
          connected = true;
          clearTimeout(trialTimer);
          await switchCurrent(paths, trial.to);
          const installed: UpdateState = {
            ...trial,
            state: "installed",
            at: new Date().toISOString(),
          };
          await writeJsonAtomic(files.update(paths), installed);
          status.update = installed;
          log.event("update_installed", { from: trial.from, to: trial.to });
          await pruneVersions(paths, [trial.to, trial.from]);
        }
        connected = true;
      } else if (e.event === "disconnected") {
        status.state = "disconnected";
        status.last_disconnect = { code: e.code, reason: e.reason, at: status.last_event_at };
      } else if (e.event === "enrollment") status.state = `enrollment_${e.status}`;
      else if (e.event === "enrolled") status.guid = e.guid;
      else if (e.event === "job_finished") status.last_job = e;
      else if (e.event === "details_sent") status.last_details = { ...e, at: status.last_event_at };
      else if (e.event === "revoked") status.state = "revoked";
      await saveStatus();
    };
    const pump = async (stream: ReadableStream<Uint8Array>, kind: "stdout" | "stderr") => {
      let buf = "";
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        buf += text;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trimEnd();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          if (kind === "stderr") {
            log.event("worker_stderr", { version: running, line: line.slice(0, 4000) });
            continue;
          }
          let e: Record<string, unknown> | null = null;
          try {
            e = JSON.parse(line);
          } catch { /* not an event */ }
          if (e && typeof e.event === "string") {
            log.line(JSON.stringify({ at: new Date().toISOString(), version: running, ...e }));
            await onEvent(e);
          } else log.event("worker_output", { version: running, line: line.slice(0, 4000) });
        }
      }
    };
    let code = 1;
    if (child) {
      const [, , st] = await Promise.all([
        pump(child.stdout, "stdout").catch(() => {}),
        pump(child.stderr, "stderr").catch(() => {}),
        child.status,
      ]);
      code = st.code;
    }
    clearTimeout(trialTimer);
    child = undefined;
    log.event("worker_exited", { version: running, code });
    if (trial && !connected) {
      const reason = trialExpired
        ? `version ${trial.to} did not connect within ${trialMs / 1000} s`
        : `version ${trial.to} exited with code ${code} before connecting`;
      const rolled: UpdateState = {
        ...trial,
        state: "rolled_back",
        reason,
        at: new Date().toISOString(),
      };
      await writeJsonAtomic(files.update(paths), rolled);
      status.update = rolled;
      log.event("update_rolled_back", { from: trial.from, to: trial.to, reason });
      await Deno.remove(files.version(paths, trial.to), { recursive: true }).catch(() => {});
      await saveStatus();
      continue;
    }
    if (stopping) break;
    if (code === EXIT_UPDATE_STAGED) continue;
    if (code === EXIT_REVOKED) {
      status.state = "revoked";
      await saveStatus();
      log.event("revoked_waiting", {
        message: "revoked, or enrollment lost with no install token left; not restarting",
      });
      while (!stopping) await pause(3_600_000);
      break;
    }
    if (Date.now() - startedAt > 60_000) failures = 0;
    failures++;
    const wait = Math.min(60_000, 1000 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
    status.state = "restarting";
    await saveStatus();
    log.event("worker_restart", { code, wait_ms: Math.round(wait) });
    await pause(wait);
  }
  status.state = "stopped";
  status.worker_pid = null;
  await saveStatus();
  log.event("supervisor_stopped");
  log.close();
  return 0;
}

/**
 * The live agent (`agent.js worker`, started by the supervisor): enrolls with the
 * install token or site code the installer left, keeps the WebSocket open with
 * heartbeats that carry cheap metrics, sends the full inventory at start and on an
 * interval, runs signed scripts at most once (the journal survives restarts), acts on
 * `service_control`, runs terminal sessions, file transfers and device actions the
 * engine grants (terminal/), and checks for updates at start, on the engine's interval
 * and when the engine announces one. Everything it does is printed as one JSON event per line on
 * stdout; the supervisor writes those to the log and watches for `connected`.
 *
 * Exit codes: 0 stopped, 1 error, 3 revoked (do not restart), 75 update staged.
 *
 * @module
 */
import { join } from "node:path";
import { collectDetails, heartbeatMetrics, platformCollectors } from "./collectors/mod.ts";
import { Agent, AgentError, type EnrollCredential } from "./protocol/client.ts";
import { AgentSocket, type Frame, SocketOpenError } from "./protocol/socket.ts";
import { loggedOnUser } from "./runners/run_as.ts";
import { type JobJournal, type JobOutcome, ScriptRunner } from "./runners/runner.ts";
import { type AgentConfig, disabledCollectors, readConfig } from "./service/config.ts";
import { readJson, writeJsonAtomic } from "./service/fs.ts";
import { type AgentPaths, agentPaths, files } from "./service/paths.ts";
import { serviceControl } from "./service/service_control.ts";
import { ActionRunner } from "./terminal/actions.ts";
import { FileHost } from "./terminal/files.ts";
import { GrantVerifier } from "./terminal/grant.ts";
import { TerminalHost } from "./terminal/host.ts";
import { systemNotice } from "./terminal/notice.ts";
import { EXIT_UPDATE_STAGED, Updater } from "./updater/updater.ts";

/** Exit code: the device was revoked; the supervisor does not restart it. */
export const EXIT_REVOKED = 3;

const FAMILY_GONE = new Set([
  "invalid_refresh_token",
  "refresh_token_expired",
  "refresh_token_revoked",
  "refresh_token_reused",
  "device_purged",
]);

/** The machine's name as the engine accepts it (letters, digits, '.', '_', '-'). */
export function safeHostname(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 255);
  return clean || "host";
}

/** Prints one event line. */
export function emit(event: string, data: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...data }));
}

/** The job journal in state/jobs.json (the newest 500 jobs). */
export function fileJournal(path: string): JobJournal {
  let mem: { done: JobOutcome[]; started: string[] } | undefined;
  let writing = Promise.resolve();
  const save = () => {
    const snapshot = JSON.parse(JSON.stringify(mem));
    writing = writing.then(() => writeJsonAtomic(path, snapshot)).catch(() => {});
    return writing;
  };
  return {
    async load() {
      mem ??= (await readJson<{ done: JobOutcome[]; started: string[] }>(path)) ??
        { done: [], started: [] };
      return { done: [...mem.done], started: [...mem.started] };
    },
    async started(id) {
      mem ??= { done: [], started: [] };
      mem.started.push(id);
      mem.started = mem.started.slice(-500);
      await save();
    },
    async finished(o) {
      mem ??= { done: [], started: [] };
      // Outputs are already with the engine: remember the outcome, not megabytes of text.
      mem.done.push({ ...o, stdout: o.stdout.slice(0, 4000), stderr: o.stderr.slice(0, 4000) });
      mem.done = mem.done.slice(-500);
      mem.started = mem.started.filter((s) => s !== o.job_id);
      await save();
    },
  };
}

/** The version of the running bundle: its folder's manifest, or 0.0.0-dev from source. */
export async function runningVersion(): Promise<string> {
  try {
    const text = await Deno.readTextFile(new URL("./manifest.txt", import.meta.url));
    return /^version (\S+)$/m.exec(text)?.[1] ?? "0.0.0-dev";
  } catch {
    return "0.0.0-dev";
  }
}

/** Runs the worker until stopped; returns the exit code. */
export async function runWorker(paths: AgentPaths = agentPaths()): Promise<number> {
  const cfg: AgentConfig = await readConfig(files.config(paths));
  const version = await runningVersion();
  const saved = await readJson<{ hostname?: string }>(join(files.identity(paths), "state.json"));
  const agent = await Agent.open({
    server: cfg.server,
    stateDir: files.identity(paths),
    hostname: cfg.hostname ?? saved?.hostname ?? safeHostname(Deno.hostname()),
  });
  emit("worker_started", { version, pid: Deno.pid, guid: agent.state.guid ?? null });

  let stopping = false;
  let exitCode = 0;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const finish = (code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    resolveDone(code);
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    try {
      Deno.addSignalListener(sig, () => finish(0));
    } catch { /* SIGTERM is not available on Windows */ }
  }
  if (Deno.build.os === "windows") {
    try {
      Deno.addSignalListener("SIGBREAK", () => finish(0));
    } catch { /* not a console */ }
  }

  const credential = async (): Promise<EnrollCredential | null> => {
    const install = await readJson<{ install_token?: string; enrollment_code?: string }>(
      files.install(paths),
    );
    if (install?.install_token) return { installToken: install.install_token };
    if (install?.enrollment_code) return install.enrollment_code;
    return null;
  };
  const enroll = async (): Promise<boolean> => {
    let failures = 0;
    while (!stopping) {
      const cred = await credential();
      if (!cred) {
        emit("error", { message: "not enrolled and no install token or enrollment code is left" });
        return false;
      }
      try {
        const r = await agent.enroll(cred, {
          timeoutMs: 24 * 3_600_000,
          onStatus: (s) => emit("enrollment", { status: s.status }),
        });
        if (r.status === "approved") {
          await Deno.remove(files.install(paths)).catch(() => {});
          emit("enrolled", { guid: agent.state.guid, hostname: r.hostname });
          return true;
        }
        emit("enrollment_failed", { status: r.status });
        return false;
      } catch (err) {
        if (err instanceof AgentError && err.status === 400) {
          // A wrong, revoked or expired token or code: retrying cannot help.
          emit("enrollment_failed", { status: err.status, error: err.body.error });
          await Deno.remove(files.install(paths)).catch(() => {});
          return false;
        }
        failures++;
        const retryAfter = err instanceof AgentError ? Number(err.headers.get("retry-after")) : NaN;
        const wait = Number.isFinite(retryAfter) && retryAfter > 0
          ? retryAfter * 1000
          : Math.random() * Math.min(60_000, 1000 * 2 ** failures);
        emit("enrollment_retry", {
          message: err instanceof Error ? err.message : String(err),
          wait_ms: Math.round(wait),
        });
        await Promise.race([done, new Promise((r) => setTimeout(r, wait))]);
      }
    }
    return false;
  };
  if (!agent.enrolled && !(await enroll())) return stopping ? 0 : 1;

  const collectors = platformCollectors();
  const disabled = disabledCollectors(cfg);
  let known: { operating_system?: string; last_user?: string; domain?: string } = {};
  let lastDetails = 0;
  const detailsEvery = (cfg.details_interval_seconds ?? 21_600) * 1000;
  let metrics: Record<string, unknown> = await heartbeatMetrics(collectors, known);
  const refreshMetrics = async () => {
    metrics = await heartbeatMetrics(collectors, known).catch(() => metrics);
  };

  const sendDetails = async () => {
    try {
      const start = performance.now();
      const details = await collectDetails({
        disabled,
        summary: { agent_version: version, hostname: agent.state.hostname },
      });
      const s = details.summary;
      known = {
        operating_system: typeof s.operating_system === "string" ? s.operating_system : undefined,
        last_user: typeof s.last_user === "string" ? s.last_user : undefined,
        domain: typeof s.domain === "string" ? s.domain : undefined,
      };
      const res = await agent.call("POST", "/api/agent/details", {
        hostname: agent.state.hostname,
        agent_hash: `borealis-agent-${version}`,
        details,
      });
      await res.body?.cancel();
      lastDetails = Date.now();
      emit("details_sent", {
        http_status: res.status,
        ms: Math.round(performance.now() - start),
        software: details.software?.length ?? 0,
        processes: details.processes?.length ?? 0,
      });
    } catch (err) {
      emit("warning", { message: `details: ${err instanceof Error ? err.message : err}` });
    }
  };

  const updater = new Updater({ agent, server: cfg.server, paths, version, emit });
  let updateTimer: ReturnType<typeof setTimeout> | undefined;
  let checking = false;
  const checkUpdates = async () => {
    if (checking || stopping) return;
    checking = true;
    clearTimeout(updateTimer);
    let next = 3_600_000;
    try {
      const r = await updater.check();
      next = r.check_after_ms;
      if (r.update && r.update.version !== version) {
        if (await updater.stage(r.update)) return finish(EXIT_UPDATE_STAGED);
      }
    } catch (err) {
      emit("warning", { message: `update check: ${err instanceof Error ? err.message : err}` });
      next = 300_000;
    } finally {
      checking = false;
    }
    if (!stopping) updateTimer = setTimeout(() => void checkUpdates(), Math.max(10_000, next));
  };

  const pinned = agent.state.signing_key ?? "";
  if (!pinned) emit("warning", { message: "no signing key pinned: every script is refused" });
  const runner = new ScriptRunner({
    signingKey: pinned,
    journal: fileJournal(files.jobs(paths)),
    runAs: () => loggedOnUser(),
  });

  // Terminal sessions, file transfers and device actions: each starts from a grant signed
  // with the pinned key (terminal/grant.ts) and is noted in the system log.
  let socket: AgentSocket | undefined;
  const sendFrame = (f: Frame) => {
    if (!socket?.open) return false;
    socket.send(f);
    return true;
  };
  const grants = new GrantVerifier({ signingKey: pinned, guid: () => agent.state.guid });
  const notice = (message: string) => void systemNotice(message);
  const terminal = new TerminalHost({ send: sendFrame, grants, emit, notice });
  const fileHost = new FileHost({ send: sendFrame, grants, emit, notice });
  const actions = new ActionRunner({
    send: sendFrame,
    grants,
    emit,
    notice,
    refresh: async (parts) => {
      const details = await collectDetails({
        disabled: [
          "hardware",
          "storage",
          "network",
          "software",
          "services",
          "processes",
          "sessions",
        ]
          .filter((c) => !parts.includes(c as "services")) as never,
        summary: { agent_version: version, hostname: agent.state.hostname },
      });
      const doc: Record<string, unknown> = {};
      for (const part of parts) doc[part] = details[part] ?? [];
      const res = await agent.call("POST", "/api/agent/details", {
        hostname: agent.state.hostname,
        agent_hash: `borealis-agent-${version}`,
        details: doc,
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`the engine answered ${res.status} to the snapshot`);
      return Object.fromEntries(parts.map((p) => [p, (doc[p] as unknown[]).length]));
    },
  });
  terminal.start();
  fileHost.start();

  const verdict = (err: unknown): "revoked" | "reenroll" | undefined => {
    if (err instanceof SocketOpenError && err.status === 403) return "revoked";
    if (!(err instanceof AgentError)) return undefined;
    if (err.status === 403 && err.body.error === "device_revoked") return "revoked";
    if (err.status === 401 && FAMILY_GONE.has(String(err.body.error ?? ""))) return "reenroll";
    return undefined;
  };

  const onFrame = async (s: AgentSocket, f: Frame) => {
    if (f.type === "welcome") {
      const w = f.data as { guid: string; heartbeat_interval_ms: number; quarantined: boolean };
      emit("connected", { guid: w.guid, version, quarantined: w.quarantined });
      if (w.quarantined) void terminal.closeAll("device_quarantined");
      else terminal.onConnected();
      s.send({
        type: "connect_agent",
        data: {
          agent_id: `${agent.state.hostname}_${w.guid}_SYSTEM`,
          service_mode: "system",
          hostname: agent.state.hostname,
        },
      });
      if (!w.quarantined) {
        if (Date.now() - lastDetails > detailsEvery) void sendDetails();
        void checkUpdates();
      }
      return;
    }
    if (f.type === "quick_job_status") {
      await runner.onFrame(f);
      return;
    }
    if (f.type === "quick_job_run") {
      const job = f.data as Record<string, unknown>;
      emit("job_started", { job_id: job.job_id, script_type: job.script_type });
      const outcome = await runner.handle(job);
      if (outcome) {
        emit("job_finished", {
          job_id: outcome.job_id,
          status: outcome.status,
          exit_code: outcome.exit_code,
        });
      }
      return;
    }
    if (terminal.onFrame(f) || fileHost.onFrame(f) || actions.onFrame(f)) return;
    if (f.type === "agent_update_available") {
      void checkUpdates();
      return;
    }
    if (f.type === "service_control") {
      const d = f.data as { action?: string; service_name?: string };
      const result = await serviceControl(String(d.action ?? ""), String(d.service_name ?? ""));
      // The engine expects no answer (docs/agent-protocol.md); the outcome goes to the log.
      emit("service_control", { ...d, ...result });
      return;
    }
    if (f.id && !f.type.endsWith("_ack") && !["error", "heartbeat_ack", "pong"].includes(f.type)) {
      s.send({ type: "error", id: f.id, data: { code: "unknown_type", message: f.type } });
    }
  };

  const open = () => {
    const s: AgentSocket = new AgentSocket(agent, {
      server: cfg.server,
      keepFrames: 50,
      heartbeatData: () => {
        void refreshMetrics();
        return {
          hostname: agent.state.hostname,
          agent_build_id: `borealis-agent-${version}`,
          metrics,
        };
      },
      onFrame: (f) => onFrame(s, f),
      onClose: (e) => {
        terminal.onDisconnected();
        emit("disconnected", { code: e.code, reason: e.reason });
        if (e.code === 4409) finish(0);
      },
      onGiveUp: async (err) => {
        const v = verdict(err);
        if (v === "revoked") {
          emit("revoked", { guid: agent.state.guid });
          return finish(EXIT_REVOKED);
        }
        if (v === "reenroll") {
          if (!(await credential())) {
            // The refresh family is gone (purged, expired) and no install token is left:
            // only a new install command helps. Stop instead of retrying forever.
            emit("enrollment_lost", { guid: agent.state.guid, reason: String(err) });
            return finish(EXIT_REVOKED);
          }
          await agent.forget();
          if (await enroll()) return open();
        }
        emit("error", { message: err instanceof Error ? err.message : String(err) });
        finish(1);
      },
    });
    runner.attach(s);
    socket = s;
    void s.start({ keepTrying: true });
  };
  open();

  const code = await done;
  clearTimeout(updateTimer);
  await terminal.closeAll("agent_stopping");
  await fileHost.closeAll();
  socket?.stop();
  await runner.stop();
  emit("stopped", { code: exitCode });
  return code;
}

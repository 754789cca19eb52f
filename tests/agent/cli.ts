/**
 * The reference agent's command line:
 *
 *   deno task agent --server URL --code CODE --state DIR [--hostname NAME]
 *                   [--once | --refresh | --connect]
 *
 * Enrolls when the state folder holds no tokens (request, then poll until an operator
 * or the site's auto-approval window admits it). Then, by default, it polls
 * `script/request` at the engine's hint, refreshing tokens before they expire. `--once`
 * makes one call and exits; `--refresh` forces one token refresh and exits.
 *
 * `--connect` is the live mode: it opens the agent WebSocket (`/api/agent/ws`, DPoP
 * upgrade), sends `connect_agent` and heartbeats at the interval `welcome` announces,
 * runs every `quick_job_run` through {@link ScriptRunner} (the signature checked with the
 * key pinned at enrollment, never the one in the message; bash run for real under the
 * script's timeout, output captured, progress and result sent back), and reconnects with
 * jittered backoff — at once after a refresh on close code 4001, after a refresh on a 401
 * upgrade — as docs/agent-protocol.md prescribes.
 *
 * In both modes: when the refresh family is gone (revoked, reused, expired, or the device
 * purged) and `--code` was given, it forgets its tokens and enrolls again with the same
 * key; `device_revoked` stops it (exit 1); SIGINT/SIGTERM stop it cleanly (exit 0).
 * Progress is printed as one JSON object per line on stdout.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Agent, AgentError } from "./agent.ts";
import { ScriptRunner } from "./runner.ts";
import { AgentSocket, type Frame, SocketOpenError } from "./socket.ts";

/** Refresh failures after which only a new enrollment helps (docs/agent-protocol.md §3.1). */
const FAMILY_GONE = new Set([
  "invalid_refresh_token",
  "refresh_token_expired",
  "refresh_token_revoked",
  "refresh_token_reused",
  "device_purged",
]);

const emit = (event: string, data: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ event, ...data }));

/** What an engine error means here: enroll again, stop for good, or neither. */
function verdict(err: unknown): { reenroll: string } | "revoked" | undefined {
  if (err instanceof SocketOpenError && err.status === 403) return "revoked";
  if (!(err instanceof AgentError)) return undefined;
  const code = String(err.body.error ?? "");
  if (err.status === 401 && FAMILY_GONE.has(code)) return { reenroll: code };
  if (err.status === 403 && code === "device_revoked") return "revoked";
  return undefined;
}

/** What both loops need from `main`. */
interface Loop {
  agent: Agent;
  server: string;
  /** Forgets the tokens and enrolls again; undefined without `--code`. */
  reenroll?: (reason: string) => Promise<boolean>;
  /** Resolves on SIGINT/SIGTERM. */
  stopped: Promise<void>;
}

/** The default mode: poll `script/request` over HTTP. */
async function pollLoop(l: Loop, once: boolean): Promise<number> {
  let stop = false;
  l.stopped.then(() => (stop = true));
  while (!stop) {
    let res: Response;
    try {
      res = await l.agent.call("POST", "/api/agent/script/request", {});
    } catch (err) {
      const v = verdict(err);
      if (v === "revoked") return revoked(l.agent);
      if (v && l.reenroll) {
        if (!await l.reenroll(v.reenroll)) return 1;
        continue;
      }
      throw err;
    }
    const body = await res.json().catch(() => ({}));
    if (res.status === 403 && body.error === "device_revoked") return revoked(l.agent);
    emit("script_request", { http_status: res.status, ...body });
    if (once) return res.status === 200 ? 0 : 1;
    const wait = res.status === 200 ? Number(body.poll_after_ms ?? 30_000) : 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([l.stopped, new Promise((r) => (timer = setTimeout(r, wait)))]);
    clearTimeout(timer);
  }
  return 0;
}

function revoked(agent: Agent): number {
  emit("revoked", { guid: agent.state.guid });
  return 1;
}

/** `--connect`: live over the agent WebSocket until revoked, replaced or stopped. */
function connectLoop(l: Loop): Promise<number> {
  const { agent } = l;
  let socket: AgentSocket | undefined;
  let runner: ScriptRunner | undefined;
  // Ends the loop once: closes the socket, kills running scripts, then prints `last`.
  let finish!: (code: number, last?: () => void) => void;
  const done = new Promise<number>((resolve) => {
    let finishing = false;
    finish = (code, last) => {
      if (finishing) return;
      finishing = true;
      socket?.stop();
      void (runner?.stop() ?? Promise.resolve()).then(() => {
        last?.();
        resolve(code);
      });
    };
  });

  const onFrame = async (s: AgentSocket, r: ScriptRunner, f: Frame) => {
    if (f.type === "welcome") {
      const w = f.data as { guid: string; heartbeat_interval_ms: number; quarantined: boolean };
      emit("connected", {
        guid: w.guid,
        heartbeat_interval_ms: w.heartbeat_interval_ms,
        quarantined: w.quarantined,
      });
      s.send({
        type: "connect_agent",
        data: {
          agent_id: `${agent.state.hostname}_${w.guid}_SYSTEM`,
          service_mode: "system",
          hostname: agent.state.hostname,
        },
      });
      return;
    }
    if (f.type === "quick_job_status") {
      // A reclaiming engine instance asks about a job instead of re-sending the script.
      const answer = r.status(f.data as Record<string, unknown>);
      return emit("job_status_query", { job_id: (f.data as { job_id?: unknown }).job_id, answer });
    }
    if (f.type !== "quick_job_run") return;
    const job = f.data as Record<string, unknown>;
    emit("job_started", {
      job_id: job.job_id,
      script_name: job.script_name,
      script_type: job.script_type,
    });
    const duplicates = r.duplicates;
    const outcome = await r.handle(job);
    if (!outcome) return emit("job_duplicate", { job_id: job.job_id, still_running: true });
    const refused = r.refused.find((x) => x.job_id === outcome.job_id);
    emit("job_finished", {
      job_id: outcome.job_id,
      status: outcome.status,
      exit_code: outcome.exit_code,
      ...(refused ? { refused: refused.reason } : {}),
      ...(r.duplicates > duplicates ? { resent: true } : {}),
    });
  };

  /** The socket stopped for good: enroll again, or end. */
  const giveUp = async (err: unknown) => {
    const v = verdict(err);
    if (v === "revoked") return finish(1, () => revoked(agent));
    if (v && l.reenroll) {
      if (await l.reenroll(v.reenroll)) return open();
      return finish(1);
    }
    finish(1, () => emitError(err));
  };

  const open = () => {
    // The key pinned at enrollment verifies scripts; a new enrollment may have pinned a
    // new one (after a vault reset), so the runner follows the stored state.
    const pinned = agent.state.signing_key ?? "";
    if (!pinned) emit("warning", { message: "no signing key pinned: every script is refused" });
    if (runner?.o.signingKey !== pinned) runner = new ScriptRunner({ signingKey: pinned });
    const r = runner!;
    const s: AgentSocket = new AgentSocket(agent, {
      server: l.server,
      heartbeatData: () => ({
        agent_build_id: "borealis-reference-agent",
        metrics: {
          operating_system: `${Deno.build.os} ${Deno.build.arch}`,
          service_mode: "system",
        },
      }),
      onFrame: (f) => onFrame(s, r, f),
      onClose: (e) => {
        emit("disconnected", { code: e.code, reason: e.reason });
        // A newer socket of this device took over: this process steps aside.
        if (e.code === 4409) finish(0);
      },
      onGiveUp: (err) => void giveUp(err).catch((e) => finish(1, () => emitError(e))),
    });
    r.attach(s);
    socket = s;
    void s.start({ keepTrying: true });
  };

  l.stopped.then(() => finish(0, () => emit("stopped", { guid: agent.state.guid })));
  open();
  return done;
}

function emitError(err: unknown): void {
  if (err instanceof AgentError) emit("error", { status: err.status, body: err.body });
  else emit("error", { message: err instanceof Error ? err.message : String(err) });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      server: { type: "string" },
      code: { type: "string" },
      state: { type: "string" },
      hostname: { type: "string" },
      once: { type: "boolean" },
      refresh: { type: "boolean" },
      connect: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help || !values.server || !values.state) {
    console.error(
      "usage: deno task agent --server URL --code CODE --state DIR [--hostname NAME] " +
        "[--once | --refresh | --connect]",
    );
    return values.help ? 0 : 2;
  }
  const agent = await Agent.open({
    server: values.server,
    stateDir: values.state,
    hostname: values.hostname,
  });
  const enroll = async (): Promise<boolean> => {
    const result = await agent.enroll(values.code!, {
      onStatus: (s) =>
        emit("enrollment", { status: s.status, approval_reference: s.approval_reference }),
    });
    if (result.status !== "approved") {
      emit("enrollment_failed", { status: result.status });
      return false;
    }
    emit("enrolled", { guid: agent.state.guid, hostname: result.hostname });
    return true;
  };
  if (!agent.enrolled) {
    if (!values.code) {
      console.error("not enrolled yet: --code is required");
      return 2;
    }
    if (!await enroll()) return 1;
  }
  if (values.refresh) {
    await agent.refresh();
    emit("refreshed", { guid: agent.state.guid });
    return 0;
  }
  const stopped = new Promise<void>((resolve) => {
    try {
      Deno.addSignalListener("SIGINT", resolve);
      Deno.addSignalListener("SIGTERM", resolve);
    } catch { /* not supported here */ }
  });
  const loop: Loop = {
    agent,
    server: values.server,
    stopped,
    reenroll: values.code
      ? async (reason) => {
        emit("reenrolling", { reason });
        await agent.forget();
        return await enroll();
      }
      : undefined,
  };
  return values.connect ? await connectLoop(loop) : await pollLoop(loop, !!values.once);
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    emitError(err);
    Deno.exit(1);
  }
}

/**
 * The script runner: takes `quick_job_run` frames from an {@link AgentSocket}, verifies
 * the Ed25519 signature over the exact script bytes with the pinned signing key, runs
 * the script with the interpreter its type names (./interpreters.ts: sh/bash,
 * PowerShell, cmd, Python) under the script's timeout, and answers with
 * `quick_job_progress` / `quick_job_result`. A timeout or a stop kills the whole process
 * tree (a process group on Linux and macOS, `taskkill /T` on Windows), so a script's
 * background children cannot outlive it.
 *
 * A job id it has seen before is never run again: a finished one gets its stored
 * result re-sent, a running one is left to finish. An engine instance that reclaimed a
 * run asks with `quick_job_status {job_id}` instead of re-sending the script; the runner
 * answers with the stored `quick_job_result` (finished), `quick_job_progress` with status
 * Running (still running), or `quick_job_unknown` (never seen: the engine then sends the
 * script). With a {@link JobJournal} that memory survives a restart of the agent.
 *
 * @module
 */
import { join } from "node:path";
import { unb64 } from "../protocol/client.ts";
import type { AgentSocket, Frame } from "../protocol/socket.ts";
import { type Interpreter, interpreterFor } from "./interpreters.ts";
import { type RunAs, runAsCommand } from "./run_as.ts";

/** Kills a script and everything it started. */
function killTree(child: Deno.ChildProcess): void {
  if (Deno.build.os === "windows") {
    try {
      new Deno.Command("taskkill", {
        args: ["/PID", String(child.pid), "/T", "/F"],
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch { /* already gone */ }
    return;
  }
  try {
    Deno.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}

/** Reads a stream to the end, keeping at most `max` bytes (the rest is drained). */
async function readCapped(stream: ReadableStream<Uint8Array>, max: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let dropped = 0;
  for await (const chunk of stream) {
    if (kept < max) {
      const part = chunk.subarray(0, max - kept);
      chunks.push(part);
      kept += part.length;
      dropped += chunk.length - part.length;
    } else dropped += chunk.length;
  }
  const all = new Uint8Array(kept);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const text = new TextDecoder().decode(all);
  return dropped ? `${text}\n[${dropped} more bytes not kept]` : text;
}

/**
 * Where a runner remembers jobs across restarts: the production agent keeps it in its
 * state folder, the reference agent in memory.
 */
export interface JobJournal {
  /** Everything remembered (newest last). */
  load(): Promise<{ done: JobOutcome[]; started: string[] }>;
  /** Records that a job is about to run (before the script starts). */
  started(jobId: string): Promise<void>;
  /** Records a finished job's outcome. */
  finished(outcome: JobOutcome): Promise<void>;
}

/** Options of {@link ScriptRunner}. */
export interface RunnerOptions {
  /** Pinned base64 SPKI of the engine's code-signing key. */
  signingKey: string;
  /** Hard cap on a script's timeout (tests keep it short). */
  maxTimeoutMs?: number;
  /** Bytes of output kept per stream. */
  maxOutputBytes?: number;
  /** Remembers jobs across restarts (at-most-once survives an agent restart). */
  journal?: JobJournal;
  /** Who runs `current_user` jobs (defaults to the logged-on user where the OS allows). */
  runAs?: (mode: string) => Promise<RunAs | string>;
  /** Folder for the scripts' temporary folders (default: the system's). */
  tempDir?: string;
}

/** What a finished job reported. */
export interface JobOutcome {
  job_id: string;
  status: "Success" | "Failed";
  stdout: string;
  stderr: string;
  exit_code: number | null;
}

/** Runs scripts pushed to one agent. */
export class ScriptRunner {
  #socket?: AgentSocket;
  #key?: Promise<CryptoKey>;
  readonly #done = new Map<string, JobOutcome>();
  readonly #running = new Set<string>();
  readonly #children = new Set<Deno.ChildProcess>();
  readonly #inflight = new Set<Promise<JobOutcome>>();
  #stopping = false;
  /** Every job this runner executed (a job id appears once). */
  readonly executed: string[] = [];
  /** Jobs refused (bad signature, unsupported type). */
  readonly refused: Array<{ job_id: string; reason: string }> = [];
  /** Duplicate dispatches seen (same job id again). */
  duplicates = 0;
  /** Job id of every `quick_job_run` frame received, in order (duplicates included). */
  readonly received: string[] = [];
  /** Every `quick_job_status` query received and what it was answered. */
  readonly queries: Array<{ job_id: string; answer: "result" | "running" | "unknown" }> = [];

  #loaded?: Promise<void>;

  constructor(readonly o: RunnerOptions) {}

  /** Loads the journal once: jobs finished before a restart, and jobs cut short by it. */
  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      if (!this.o.journal) return;
      const { done, started } = await this.o.journal.load();
      for (const d of done) this.#done.set(d.job_id, d);
      for (const id of started) {
        if (this.#done.has(id)) continue;
        // Started but never finished: the agent stopped mid-run. Never run it again.
        const outcome: JobOutcome = {
          job_id: id,
          status: "Failed",
          stdout: "",
          stderr: "the agent restarted while this job was running; it was not run again",
          exit_code: null,
        };
        this.#done.set(id, outcome);
        await this.o.journal.finished(outcome);
      }
    })();
    return this.#loaded;
  }

  /** Attaches to a socket (again after a reconnect to another engine instance). */
  attach(socket: AgentSocket): void {
    this.#socket = socket;
  }

  /** Feed every frame here (AgentSocket's onFrame). */
  onFrame = async (frame: Frame): Promise<void> => {
    if (frame.type === "quick_job_status") {
      await this.#load();
      this.status(frame.data as Record<string, unknown>);
      return;
    }
    if (frame.type !== "quick_job_run") return;
    await this.handle(frame.data as Record<string, unknown>);
  };

  /**
   * Kills every script still running and waits until their temporary folders are gone
   * (the agent is stopping; the engine times those jobs out).
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const child of this.#children) killTree(child);
    await Promise.allSettled(this.#inflight);
  }

  /** The outcome of a job, once finished. */
  outcome(jobId: string): JobOutcome | undefined {
    return this.#done.get(jobId);
  }

  #send(type: string, data: unknown): void {
    this.#socket?.send({ type, data });
  }

  #verifyKey(): Promise<CryptoKey> {
    this.#key ??= crypto.subtle.importKey(
      "spki",
      unb64(this.o.signingKey) as BufferSource,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return this.#key;
  }

  /** Verifies `signature` over `bytes` with the pinned key. */
  async verify(bytes: Uint8Array, signature: unknown): Promise<boolean> {
    if (typeof signature !== "string" || !signature) return false;
    try {
      return await crypto.subtle.verify(
        { name: "Ed25519" },
        await this.#verifyKey(),
        unb64(signature) as BufferSource,
        bytes as BufferSource,
      );
    } catch {
      return false;
    }
  }

  /** Answers one `quick_job_status` query; returns the answer given. */
  status(query: Record<string, unknown>): "result" | "running" | "unknown" | null {
    const jobId = String(query.job_id ?? "");
    if (!jobId) return null;
    const prior = this.#done.get(jobId);
    const answer = prior ? "result" : this.#running.has(jobId) ? "running" : "unknown";
    this.queries.push({ job_id: jobId, answer });
    if (prior) this.#send("quick_job_result", { ...prior, context: query.context });
    else if (answer === "running") {
      this.#send("quick_job_progress", { job_id: jobId, status: "Running", append_output: "" });
    } else this.#send("quick_job_unknown", { job_id: jobId });
    return answer;
  }

  /** Handles one `quick_job_run` payload. */
  async handle(job: Record<string, unknown>): Promise<JobOutcome | null> {
    const jobId = String(job.job_id ?? "");
    const context = job.context;
    if (!jobId) return null;
    await this.#load();
    this.received.push(jobId);
    const prior = this.#done.get(jobId);
    if (prior) {
      this.duplicates++;
      this.#send("quick_job_result", { ...prior, context });
      return prior;
    }
    if (this.#running.has(jobId)) {
      this.duplicates++;
      return null;
    }
    this.#running.add(jobId);
    const execution = (async () => {
      await this.o.journal?.started(jobId);
      return await this.#execute(jobId, job);
    })();
    this.#inflight.add(execution);
    try {
      const outcome = await execution;
      this.#done.set(jobId, outcome);
      await this.o.journal?.finished(outcome);
      this.#send("quick_job_result", { ...outcome, context });
      return outcome;
    } finally {
      this.#running.delete(jobId);
      this.#inflight.delete(execution);
    }
  }

  async #execute(jobId: string, job: Record<string, unknown>): Promise<JobOutcome> {
    const fail = (reason: string): JobOutcome => {
      this.refused.push({ job_id: jobId, reason });
      return { job_id: jobId, status: "Failed", stdout: "", stderr: reason, exit_code: null };
    };
    if (job.sig_alg !== "ed25519") return fail("refused: unsigned script (no ed25519 signature)");
    let bytes: Uint8Array;
    try {
      bytes = job.script_encoding === "base64"
        ? unb64(String(job.script_content ?? ""))
        : new TextEncoder().encode(String(job.script_content ?? ""));
    } catch {
      return fail("refused: script_content is not valid base64");
    }
    if (!(await this.verify(bytes, job.signature))) {
      return fail("refused: the script signature does not verify with the pinned signing key");
    }
    const interpreter: Interpreter | string = interpreterFor(String(job.script_type ?? ""));
    if (typeof interpreter === "string") return fail(interpreter);
    const mode = String(job.run_mode ?? "system");
    let runAs: RunAs | null = null;
    if (mode === "current_user" || mode === "currentuser") {
      const who = this.o.runAs ? await this.o.runAs(mode) : "unsupported: no run-as provider";
      if (typeof who === "string") return fail(who);
      runAs = who;
    }
    this.executed.push(jobId);
    this.#send("quick_job_progress", { job_id: jobId, status: "Running", append_output: "" });
    const limit = Math.min(
      Number(job.timeout_seconds ?? 3600) * 1000,
      this.o.maxTimeoutMs ?? Infinity,
    );
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries((job.environment ?? {}) as Record<string, unknown>)) {
      env[k] = String(v);
    }
    const dir = await Deno.makeTempDir({ prefix: "borealis-job-", dir: this.o.tempDir });
    try {
      const path = join(dir, `script${interpreter.extension}`);
      await Deno.writeFile(path, bytes, { mode: 0o700 });
      if (runAs) await runAs.prepare?.(dir, path);
      const { command, args } = runAs
        ? runAsCommand(runAs, interpreter, path)
        : { command: interpreter.command, args: [...interpreter.args, path] };
      // Checked with no await before the spawn, so stop() never misses a child.
      if (this.#stopping) return fail("not run: the agent is stopping");
      // Its own process group (detached = setsid), so a timeout or a stop kills whatever
      // the script started too; otherwise a background `sleep` would hold the output pipes
      // open and the run would outlast its timeout.
      const child = new Deno.Command(command, {
        args,
        detached: Deno.build.os !== "windows",
        env,
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      this.#children.add(child);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killTree(child);
      }, limit);
      const max = this.o.maxOutputBytes ?? 1_000_000;
      const [stdout, stderrText, status] = await Promise.all([
        readCapped(child.stdout, max),
        readCapped(child.stderr, max),
        child.status,
      ]).finally(() => {
        clearTimeout(timer);
        this.#children.delete(child);
      });
      const stderr = stderrText +
        (timedOut ? `\nkilled after the ${Math.round(limit / 1000)} s timeout` : "");
      return {
        job_id: jobId,
        status: status.success && !timedOut ? "Success" : "Failed",
        stdout,
        stderr,
        exit_code: timedOut ? null : status.code,
      };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
}

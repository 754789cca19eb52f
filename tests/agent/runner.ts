/**
 * The reference agent's script runner: takes `quick_job_run` frames from an
 * {@link AgentSocket}, verifies the Ed25519 signature over the exact script bytes with
 * the pinned signing key, runs bash scripts for real (`Deno.Command`, the script's
 * timeout, stdout/stderr captured), reports PowerShell and batch as unsupported on this
 * platform, and answers with `quick_job_progress` / `quick_job_result`.
 *
 * A job id it has seen before is never run again: a finished one gets its stored
 * result re-sent, a running one is left to finish. An engine instance that reclaimed a
 * run asks with `quick_job_status {job_id}` instead of re-sending the script; the runner
 * answers with the stored `quick_job_result` (finished), `quick_job_progress` with status
 * Running (still running), or `quick_job_unknown` (never seen: the engine then sends the
 * script).
 *
 * @module
 */
import { unb64 } from "./agent.ts";
import type { AgentSocket, Frame } from "./socket.ts";

/** Kills a script and everything in its process group. */
function killGroup(child: Deno.ChildProcess): void {
  try {
    Deno.kill(-child.pid, "SIGKILL");
  } catch { /* already gone */ }
}

/** Options of {@link ScriptRunner}. */
export interface RunnerOptions {
  /** Pinned base64 SPKI of the engine's code-signing key. */
  signingKey: string;
  /** Hard cap on a script's timeout (tests keep it short). */
  maxTimeoutMs?: number;
  /** Bytes of output kept per stream. */
  maxOutputBytes?: number;
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

  constructor(readonly o: RunnerOptions) {}

  /** Attaches to a socket (again after a reconnect to another engine instance). */
  attach(socket: AgentSocket): void {
    this.#socket = socket;
  }

  /** Feed every frame here (AgentSocket's onFrame). */
  onFrame = async (frame: Frame): Promise<void> => {
    if (frame.type === "quick_job_status") {
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
    for (const child of this.#children) killGroup(child);
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
    const execution = this.#execute(jobId, job);
    this.#inflight.add(execution);
    try {
      const outcome = await execution;
      this.#done.set(jobId, outcome);
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
    const type = String(job.script_type ?? "");
    if (type !== "bash") {
      return fail(`unsupported: ${type || "this"} scripts cannot run on this platform (Linux)`);
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
    const dir = await Deno.makeTempDir({ prefix: "borealis-job-" });
    try {
      const path = `${dir}/script.sh`;
      await Deno.writeFile(path, bytes, { mode: 0o700 });
      // Checked with no await before the spawn, so stop() never misses a child.
      if (this.#stopping) return fail("not run: the agent is stopping");
      // Its own process group (detached = setsid), so a timeout or a stop kills whatever
      // the script started too; otherwise a background `sleep` would hold the output pipes
      // open and the run would outlast its timeout.
      const child = new Deno.Command("bash", {
        args: [path],
        detached: true,
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
        killGroup(child);
      }, limit);
      const out = await child.output().finally(() => this.#children.delete(child));
      clearTimeout(timer);
      const max = this.o.maxOutputBytes ?? 1_000_000;
      const text = (b: Uint8Array) => new TextDecoder().decode(b.subarray(0, max));
      const stderr = text(out.stderr) +
        (timedOut ? `\nkilled after the ${Math.round(limit / 1000)} s timeout` : "");
      return {
        job_id: jobId,
        status: out.success && !timedOut ? "Success" : "Failed",
        stdout: text(out.stdout),
        stderr,
        exit_code: timedOut ? null : out.code,
      };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
}

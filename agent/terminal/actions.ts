/**
 * Live device actions on the agent (`device_action` frames with a verified grant): a
 * service started, stopped or restarted (../service/service_control.ts), a process ended
 * (SIGTERM, or SIGKILL when forced; `taskkill` on Windows), the services and processes
 * snapshot collected and sent now. Every action is answered with
 * `device_action_result {action_id, via, ok, output?, error?, details?}`.
 *
 * @module
 */
import type { Frame } from "../protocol/socket.ts";
import { serviceControl } from "../service/service_control.ts";
import { GrantError, type GrantVerifier } from "./grant.ts";

/** Options of {@link ActionRunner}. */
export interface ActionOptions {
  send: (frame: Frame) => boolean;
  grants: GrantVerifier;
  /** Collects the services and/or processes snapshot and sends it to the engine. */
  refresh: (parts: Array<"services" | "processes">) => Promise<Record<string, number>>;
  emit?: (event: string, data: Record<string, unknown>) => void;
  notice?: (message: string) => void;
}

interface Outcome {
  ok: boolean;
  output?: string;
  error?: string;
  details?: Record<string, unknown>;
}

/** The name of process `pid`, or null when there is none. */
export async function processName(pid: number): Promise<string | null> {
  if (Deno.build.os === "linux") {
    try {
      return (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
    } catch {
      return null;
    }
  }
  const [cmd, args] = Deno.build.os === "windows"
    ? ["tasklist", ["/FI", `PID eq ${pid}`, "/FO", "CSV", "/NH"]]
    : ["ps", ["-p", String(pid), "-o", "comm="]];
  try {
    const out = await new Deno.Command(cmd as string, {
      args: args as string[],
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success || !text || /^INFO:/.test(text)) return null;
    if (Deno.build.os === "windows") return /^"([^"]*)"/.exec(text)?.[1] ?? null;
    return text.split("/").pop() ?? null;
  } catch {
    return null;
  }
}

/** True while `pid` runs (a zombie waiting for its parent counts as ended). */
async function running(pid: number): Promise<boolean> {
  return (await processName(pid)) !== null && !(await zombie(pid));
}

/** Ends process `pid` (SIGTERM, or SIGKILL with `force`), checking its name first if given. */
export async function endProcess(
  pid: number,
  name: string | undefined,
  force: boolean,
): Promise<Outcome> {
  if (!Number.isInteger(pid) || pid <= 1) {
    return { ok: false, error: "refused: not a process id that may be ended" };
  }
  if (pid === Deno.pid) return { ok: false, error: "refused: this is the agent itself" };
  const current = await processName(pid);
  if (current === null) return { ok: false, error: `no process ${pid}` };
  if (name && current.toLowerCase() !== name.toLowerCase()) {
    return {
      ok: false,
      error: `process ${pid} is now ${current}, not ${name} (the id was reused): nothing was done`,
    };
  }
  if (Deno.build.os === "windows") {
    const out = await new Deno.Command("taskkill", {
      args: ["/PID", String(pid), ...(force ? ["/F"] : [])],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return out.success
      ? { ok: true, output: text.trim(), details: { name: current } }
      : { ok: false, error: text.trim() || `taskkill exited with ${out.code}` };
  }
  try {
    Deno.kill(pid, force ? "SIGKILL" : "SIGTERM");
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  for (let i = 0; i < 50 && await running(pid); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const still = await running(pid);
  return still
    ? {
      ok: false,
      error: `process ${pid} (${current}) is still running 5 s after ${
        force ? "SIGKILL" : "SIGTERM"
      }${force ? "" : "; end it with force"}`,
      details: { name: current },
    }
    : { ok: true, output: `process ${pid} (${current}) ended`, details: { name: current } };
}

async function zombie(pid: number): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/** Runs device actions. */
export class ActionRunner {
  constructor(private readonly o: ActionOptions) {}

  /** Handles a `device_action` frame; false when the frame is something else. */
  onFrame(f: Frame): boolean {
    if (f.type !== "device_action") return false;
    void this.#run(f.data);
    return true;
  }

  async #run(data: unknown): Promise<void> {
    let hint: { id?: string; via?: string } = {};
    try {
      hint = JSON.parse(String((data as { grant?: unknown })?.grant ?? "{}"));
    } catch { /* no reply address */ }
    const reply = (via: string, id: string, r: Outcome) =>
      this.o.send({ type: "device_action_result", data: { action_id: id, via, ...r } });
    let g;
    try {
      g = await this.o.grants.verify(data, "device_action");
    } catch (err) {
      const code = err instanceof GrantError ? err.code : "grant_invalid";
      this.o.emit?.("device_action_refused", { action_id: hint.id ?? null, reason: code });
      if (typeof hint.id === "string" && typeof hint.via === "string") {
        reply(hint.via, hint.id, { ok: false, error: `refused: ${code}` });
      }
      return;
    }
    const p = (g.params ?? {}) as Record<string, unknown>;
    let r: Outcome;
    try {
      if (g.kind === "service") {
        const s = await serviceControl(String(p.action), String(p.name));
        r = {
          ok: s.ok,
          output: s.output,
          error: s.error,
          details: s.manager ? { manager: s.manager } : undefined,
        };
      } else if (g.kind === "process_kill") {
        r = await endProcess(
          Number(p.pid),
          typeof p.name === "string" ? p.name : undefined,
          p.force === true,
        );
      } else if (g.kind === "refresh") {
        const parts = (Array.isArray(p.parts) ? p.parts : ["services", "processes"])
          .filter((x): x is "services" | "processes" => x === "services" || x === "processes");
        r = { ok: true, details: await this.o.refresh(parts) };
      } else r = { ok: false, error: `unknown action ${String(g.kind)}` };
    } catch (err) {
      r = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    reply(g.via, g.id, r);
    this.o.emit?.("device_action", {
      action_id: g.id,
      kind: g.kind,
      ...p,
      ok: r.ok,
      error: r.error,
    });
    this.o.notice?.(
      `remote action by ${g.operator}: ${g.kind} ${JSON.stringify(p)} → ${
        r.ok ? "done" : "failed"
      }`,
    );
  }
}

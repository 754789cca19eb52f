/**
 * `agent.js status`: what a technician at the machine needs — is the agent running,
 * connected, enrolled as which device, which version, the last update and the last job.
 *
 * @module
 */
import { join } from "node:path";
import { readJson } from "./fs.ts";
import { type AgentPaths, files } from "./paths.ts";
import { currentVersion, processAlive } from "../updater/supervisor.ts";

/** Collects the status document. */
export async function agentStatus(paths: AgentPaths): Promise<Record<string, unknown>> {
  const st = (await readJson<Record<string, unknown>>(files.status(paths))) ?? {};
  const cfg = await readJson<Record<string, unknown>>(files.config(paths));
  const id = await readJson<Record<string, unknown>>(join(paths.state, "state.json"));
  const pid = typeof st.supervisor_pid === "number" ? st.supervisor_pid : null;
  const running = pid !== null && await processAlive(pid);
  return {
    installed: cfg !== undefined,
    running,
    state: running ? st.state ?? "unknown" : "not running",
    server: cfg?.server ?? null,
    hostname: id?.hostname ?? null,
    guid: id?.guid ?? st.guid ?? null,
    enrolled: !!id?.refresh_token,
    version: await currentVersion(paths),
    running_version: running ? st.version ?? null : null,
    supervisor_pid: running ? pid : null,
    worker_pid: running ? st.worker_pid ?? null : null,
    connected_at: st.connected_at ?? null,
    last_disconnect: st.last_disconnect ?? null,
    last_details: st.last_details ?? null,
    last_job: st.last_job ?? null,
    update: (await readJson(files.update(paths))) ?? null,
    paths: { program: paths.program, config: paths.config, state: paths.state, logs: paths.logs },
  };
}

/** Renders the status for a terminal. */
export function renderStatus(s: Record<string, unknown>): string {
  const line = (k: string, v: unknown) =>
    `${k.padEnd(16)} ${
      v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : v
    }`;
  return [
    line("state", s.state),
    line("server", s.server),
    line("device", s.guid ? `${s.hostname} (${s.guid})` : s.enrolled ? s.hostname : "not enrolled"),
    line("version", s.version),
    line("running version", s.running_version),
    line("pids", s.running ? `supervisor ${s.supervisor_pid}, worker ${s.worker_pid}` : null),
    line("connected at", s.connected_at),
    line("last disconnect", s.last_disconnect),
    line("last details", s.last_details),
    line("last job", s.last_job),
    line("update", s.update),
    line("logs", (s.paths as Record<string, string>).logs),
  ].join("\n");
}

/**
 * Where the agent keeps its files. Conventional places per OS, or everything under
 * `BOREALIS_AGENT_ROOT=<dir>` for tests and unprivileged trials:
 *
 * | what    | Linux                        | macOS                                        | Windows                                  | with BOREALIS_AGENT_ROOT |
 * | ------- | ---------------------------- | -------------------------------------------- | ---------------------------------------- | ------------------------ |
 * | program | /opt/borealis-agent          | /Library/Application Support/Borealis Agent  | %ProgramFiles%\Borealis Agent            | <dir>/program            |
 * | config  | /etc/borealis-agent          | /Library/Application Support/Borealis Agent/config | %ProgramData%\Borealis Agent\config | <dir>/config             |
 * | state   | /var/lib/borealis-agent      | /Library/Application Support/Borealis Agent/state  | %ProgramData%\Borealis Agent\state  | <dir>/state              |
 * | logs    | /var/log/borealis-agent      | /Library/Logs/Borealis Agent                 | %ProgramData%\Borealis Agent\logs        | <dir>/logs               |
 *
 * @module
 */
import { join } from "node:path";

/** The agent's folders and the files in them. */
export interface AgentPaths {
  /** Installed versions (`versions/<v>/`) and the `current` link. */
  program: string;
  config: string;
  state: string;
  logs: string;
  /** True when BOREALIS_AGENT_ROOT chose the folders. */
  rooted: boolean;
}

/** The service's name everywhere (systemd unit, launchd label suffix, Windows service id). */
export const SERVICE_NAME = "borealis-agent";
/** The launchd label. */
export const LAUNCHD_LABEL = "com.borealis.agent";

/** The paths for this machine (or under `root`). */
export function agentPaths(
  root: string | undefined = Deno.env.get("BOREALIS_AGENT_ROOT") || undefined,
  os: typeof Deno.build.os = Deno.build.os,
): AgentPaths {
  if (root) {
    return {
      program: join(root, "program"),
      config: join(root, "config"),
      state: join(root, "state"),
      logs: join(root, "logs"),
      rooted: true,
    };
  }
  if (os === "windows") {
    const pf = Deno.env.get("ProgramFiles") ?? "C:\\Program Files";
    const pd = Deno.env.get("ProgramData") ?? "C:\\ProgramData";
    const data = `${pd}\\Borealis Agent`;
    return {
      program: `${pf}\\Borealis Agent`,
      config: `${data}\\config`,
      state: `${data}\\state`,
      logs: `${data}\\logs`,
      rooted: false,
    };
  }
  if (os === "darwin") {
    const base = "/Library/Application Support/Borealis Agent";
    return {
      program: base,
      config: `${base}/config`,
      state: `${base}/state`,
      logs: "/Library/Logs/Borealis Agent",
      rooted: false,
    };
  }
  return {
    program: "/opt/borealis-agent",
    config: "/etc/borealis-agent",
    state: "/var/lib/borealis-agent",
    logs: "/var/log/borealis-agent",
    rooted: false,
  };
}

/** Files inside the folders. */
export const files = {
  config: (p: AgentPaths) => join(p.config, "agent.json"),
  identity: (p: AgentPaths) => p.state,
  status: (p: AgentPaths) => join(p.state, "status.json"),
  update: (p: AgentPaths) => join(p.state, "update.json"),
  jobs: (p: AgentPaths) => join(p.state, "jobs.json"),
  install: (p: AgentPaths) => join(p.state, "install.json"),
  log: (p: AgentPaths) => join(p.logs, "agent.log"),
  versions: (p: AgentPaths) => join(p.program, "versions"),
  version: (p: AgentPaths, v: string) => join(p.program, "versions", v),
  current: (p: AgentPaths) => join(p.program, "current"),
};

/**
 * Starting, stopping and restarting a service with the OS's own tool, for watchdog
 * remediation (`service_control` frames) and operators' live actions (`device_action`):
 * systemctl where systemd is the running init, else the SysV `service` command (init
 * scripts in /etc/init.d: containers, Devuan and other systems without systemd), else
 * OpenRC's `rc-service`; launchctl (kickstart/kill of a system daemon label) on macOS;
 * PowerShell's service cmdlets on Windows.
 *
 * @module
 */
import { systemdRunning } from "../collectors/linux.ts";
import { which } from "../runners/interpreters.ts";

/** The outcome sent back to the engine. */
export interface ServiceControlResult {
  ok: boolean;
  output?: string;
  error?: string;
  /** The tool that did it (systemctl, service, rc-service, launchctl, powershell). */
  manager?: string;
}

const NAME = /^[A-Za-z0-9@._:+][A-Za-z0-9@._:+ -]{0,255}$/;

/** The command that runs `action` on `name` here. */
export function serviceCommand(
  action: string,
  name: string,
  os: typeof Deno.build.os = Deno.build.os,
): { cmd: string; args: string[]; manager: string } {
  if (os === "windows") {
    const verb = { start: "Start-Service", stop: "Stop-Service", restart: "Restart-Service" }[
      action as "start"
    ];
    const quoted = name.replace(/'/g, "''");
    return {
      cmd: "powershell",
      args: [
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        `${verb} -Name '${quoted}'${action === "start" ? "" : " -Force"} -ErrorAction Stop`,
      ],
      manager: "powershell",
    };
  }
  if (os === "darwin") {
    return {
      cmd: "launchctl",
      args: action === "stop"
        ? ["kill", "SIGTERM", `system/${name}`]
        : ["kickstart", ...(action === "restart" ? ["-k"] : []), `system/${name}`],
      manager: "launchctl",
    };
  }
  if (systemdRunning()) return { cmd: "systemctl", args: [action, name], manager: "systemctl" };
  if (which("service")) return { cmd: "service", args: [name, action], manager: "service" };
  if (which("rc-service")) {
    return { cmd: "rc-service", args: [name, action], manager: "rc-service" };
  }
  return { cmd: `/etc/init.d/${name}`, args: [action], manager: "init.d" };
}

/** Starts, stops or restarts one service. */
export async function serviceControl(action: string, name: string): Promise<ServiceControlResult> {
  if (!["start", "stop", "restart"].includes(action)) {
    return { ok: false, error: `unknown action ${action}` };
  }
  if (!NAME.test(name) || name.includes("..") || name.includes("/")) {
    return { ok: false, error: "invalid service name" };
  }
  const { cmd, args, manager } = serviceCommand(action, name);
  try {
    const out = await runTool(cmd, args, 120_000);
    return out.code === 0
      ? { ok: true, output: out.text.slice(0, 2000), manager }
      : { ok: false, error: out.text.slice(0, 2000) || `${cmd} exited with ${out.code}`, manager };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err), manager };
  }
}

/**
 * Runs a tool and returns its exit code and output. A daemon an init script starts may
 * inherit the output pipes and hold them open for its whole life, so once the tool has
 * exited its output is read for at most half a second more.
 */
export async function runTool(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; text: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  let text = "";
  const readers: ReadableStreamDefaultReader<string>[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    readers.push(reader);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (text.length < 65_536) text += value;
      }
    } catch { /* cancelled */ }
  };
  const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const status = await child.status.finally(() => clearTimeout(timer));
  await Promise.race([reading, new Promise((r) => setTimeout(r, 500))]);
  for (const r of readers) r.cancel().catch(() => {});
  return { code: status.code, text: text.trim() };
}

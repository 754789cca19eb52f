/**
 * `service_control` frames (watchdog remediation): start, stop or restart a service
 * with the OS's own tool — systemctl, launchctl (kickstart/bootout of a system daemon
 * label) or sc.exe/PowerShell on Windows.
 *
 * @module
 */

/** The outcome sent back to the engine. */
export interface ServiceControlResult {
  ok: boolean;
  output?: string;
  error?: string;
}

const NAME = /^[A-Za-z0-9@._:-]{1,256}$/;

/** Starts, stops or restarts one service. */
export async function serviceControl(action: string, name: string): Promise<ServiceControlResult> {
  if (!["start", "stop", "restart"].includes(action)) {
    return { ok: false, error: `unknown action ${action}` };
  }
  if (!NAME.test(name)) return { ok: false, error: "invalid service name" };
  let cmd: string;
  let args: string[];
  if (Deno.build.os === "windows") {
    cmd = "powershell";
    const verb =
      { start: "Start-Service", stop: "Stop-Service", restart: "Restart-Service" }[action];
    args = ["-NoProfile", "-NonInteractive", "-Command", `${verb} -Name '${name}' -Force:$true`];
    if (action === "start") args[3] = `Start-Service -Name '${name}'`;
  } else if (Deno.build.os === "darwin") {
    cmd = "launchctl";
    args = action === "stop"
      ? ["kill", "SIGTERM", `system/${name}`]
      : ["kickstart", ...(action === "restart" ? ["-k"] : []), `system/${name}`];
  } else {
    cmd = "systemctl";
    args = [action, name];
  }
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return out.success
      ? { ok: true, output: text.slice(0, 2000) }
      : { ok: false, error: text.slice(0, 2000) || `exit ${out.code}` };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

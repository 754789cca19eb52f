/**
 * Running a job as the logged-on user (`run_mode: "current_user"`).
 *
 * - Linux: the user of the first graphical or terminal session (`loginctl`, else `who`),
 *   through `runuser -u USER --` (util-linux). Needs the agent to run as root.
 * - macOS: the console owner (`stat -f %Su /dev/console`), through
 *   `launchctl asuser UID sudo -u USER` so the script sees the user's bootstrap context.
 * - Windows: not supported by this agent. Starting a process in another user's session
 *   needs `WTSQueryUserToken` + `CreateProcessAsUser`, which Deno cannot call without FFI;
 *   such jobs fail with a clear reason instead of running as SYSTEM.
 *
 * @module
 */
import type { Interpreter } from "./interpreters.ts";
import { which } from "./interpreters.ts";

/** Who a job runs as, and how to hand them its folder. */
export interface RunAs {
  user: string;
  uid?: number;
  /** Makes the job folder usable by the user (ownership). */
  prepare?: (dir: string, script: string) => Promise<void>;
}

async function output(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : "";
  } catch {
    return "";
  }
}

/** The user of the first interactive, non-root session on Linux, or null. */
export async function linuxLoggedOnUser(): Promise<string | null> {
  const sessions = await output("loginctl", ["list-sessions", "--no-legend"]);
  for (const line of sessions.split("\n")) {
    const cols = line.trim().split(/\s+/);
    // SESSION UID USER SEAT TTY …
    if (cols.length >= 3 && cols[2] && cols[2] !== "root" && Number(cols[1]) >= 1000) {
      return cols[2];
    }
  }
  const who = await output("who", []);
  for (const line of who.split("\n")) {
    const user = line.trim().split(/\s+/)[0];
    if (user && user !== "root") return user;
  }
  return null;
}

/** The provider the production agent uses: the logged-on user where the OS allows. */
export async function loggedOnUser(): Promise<RunAs | string> {
  const os = Deno.build.os;
  if (os === "windows") {
    return "unsupported: running as the logged-on user is not available on Windows in this agent (jobs run as SYSTEM only)";
  }
  if (Deno.uid() !== 0) {
    return "unsupported: running as the logged-on user needs the agent to run as root";
  }
  let user: string | null = null;
  if (os === "darwin") {
    user = (await output("stat", ["-f", "%Su", "/dev/console"])).trim() || null;
    if (user === "root") user = null;
  } else {
    user = await linuxLoggedOnUser();
    if (!which("runuser")) return "unsupported: runuser (util-linux) was not found";
  }
  if (!user) return "no user is logged on: the job was not run";
  const uid = Number((await output("id", ["-u", user])).trim());
  const gid = Number((await output("id", ["-g", user])).trim());
  return {
    user,
    uid: Number.isFinite(uid) ? uid : undefined,
    prepare: async (dir, script) => {
      if (Number.isFinite(uid) && Number.isFinite(gid)) {
        await Deno.chown(dir, uid, gid);
        await Deno.chown(script, uid, gid);
      }
    },
  };
}

/** The command line that runs `script` with `interpreter` as `who`. */
export function runAsCommand(
  who: RunAs,
  interpreter: Interpreter,
  script: string,
): { command: string; args: string[] } {
  if (Deno.build.os === "darwin") {
    return {
      command: "launchctl",
      args: [
        "asuser",
        String(who.uid ?? ""),
        "sudo",
        "-u",
        who.user,
        interpreter.command,
        ...interpreter.args,
        script,
      ],
    };
  }
  return {
    command: which("runuser") ?? "runuser",
    args: ["-u", who.user, "--", interpreter.command, ...interpreter.args, script],
  };
}

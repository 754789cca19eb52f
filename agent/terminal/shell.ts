/**
 * Which shell a terminal session runs, as whom, with what environment.
 *
 * - Linux and macOS, `run_as: "system"`: the agent's own user — root for the installed
 *   service — with that account's login shell from the password database (bash, else
 *   sh), started as a login shell in its home directory.
 * - `run_as: "user"`: the logged-on user where the OS allows, like scripts (see
 *   ../runners/run_as.ts): `runuser -l USER` on Linux, `login -fp USER` on macOS. Both
 *   need the agent to run as root.
 * - Windows: Windows PowerShell as the agent's account (SYSTEM for the service). The
 *   logged-on user is not offered: a process in another user's session needs
 *   `WTSQueryUserToken` + `CreateProcessAsUser`, not done here.
 *
 * @module
 */
import { which } from "../runners/interpreters.ts";
import { linuxLoggedOnUser } from "../runners/run_as.ts";
import type { PtySpawn } from "./pty.ts";

/** The shell to start, or a sentence saying why there is none. */
export type ShellChoice = (Omit<PtySpawn, "cols" | "rows"> & { user: string }) | string;

interface Account {
  name: string;
  home: string;
  shell: string;
}

/** The password-database entry of `name` or `uid` (Linux and macOS keep /etc/passwd for system accounts). */
export async function account(key: { name?: string; uid?: number }): Promise<Account | null> {
  let text = "";
  try {
    text = await Deno.readTextFile("/etc/passwd");
  } catch { /* not there */ }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7) continue;
    if (
      (key.name !== undefined && f[0] === key.name) ||
      (key.uid !== undefined && Number(f[2]) === key.uid)
    ) {
      return { name: f[0]!, home: f[5]!, shell: f[6]!.trim() };
    }
  }
  if (key.uid === 0 || key.name === "root") {
    return { name: "root", home: Deno.build.os === "darwin" ? "/var/root" : "/root", shell: "" };
  }
  return null;
}

function usable(path: string): boolean {
  if (!path.startsWith("/")) return false;
  try {
    return Deno.statSync(path).isFile && !/(nologin|false)$/.test(path);
  } catch {
    return false;
  }
}

/** The environment a session starts with (nothing of the agent's own is passed on). */
function baseEnv(a: Account): Record<string, string> {
  const lang = Deno.env.get("LANG");
  return {
    TERM: "xterm-256color",
    COLORTERM: "truecolor",
    HOME: a.home,
    USER: a.name,
    LOGNAME: a.name,
    PATH: Deno.build.os === "darwin"
      ? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/opt/homebrew/bin"
      : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: lang && /UTF-?8/i.test(lang) ? lang : "C.UTF-8",
  };
}

/** Chooses the shell of a session. */
export async function chooseShell(runAs: "system" | "user"): Promise<ShellChoice> {
  const os = Deno.build.os;
  if (os === "windows") {
    if (runAs === "user") {
      return "unsupported: a terminal as the logged-on user is not available on Windows (SYSTEM only)";
    }
    const root = Deno.env.get("SystemRoot") ?? "C:\\Windows";
    return {
      file: `${root}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`,
      argv: ["powershell.exe", "-NoLogo"],
      env: {},
      user: Deno.env.get("USERNAME") ?? "SYSTEM",
    };
  }
  const uid = Deno.uid() ?? -1;
  if (runAs === "user") {
    if (uid !== 0) {
      return "unsupported: a terminal as the logged-on user needs the agent to run as root";
    }
    let user: string | null = null;
    if (os === "darwin") {
      const out = await new Deno.Command("stat", {
        args: ["-f", "%Su", "/dev/console"],
        stdout: "piped",
        stderr: "null",
      })
        .output().catch(() => null);
      user = out?.success ? new TextDecoder().decode(out.stdout).trim() || null : null;
      if (user === "root") user = null;
    } else user = await linuxLoggedOnUser();
    if (!user) return "no user is logged on";
    const a = await account({ name: user });
    if (!a) return `the logged-on user ${user} is not in the password database`;
    if (os === "darwin") {
      return {
        file: "/usr/bin/login",
        argv: ["login", "-fp", user],
        env: baseEnv(a),
        cwd: a.home,
        user,
      };
    }
    const runuser = which("runuser");
    if (!runuser) return "unsupported: runuser (util-linux) was not found";
    return { file: runuser, argv: ["runuser", "-l", user], env: baseEnv(a), cwd: a.home, user };
  }
  const a = await account({ uid }) ?? {
    name: Deno.env.get("USER") ?? String(uid),
    home: Deno.env.get("HOME") ?? "/",
    shell: "",
  };
  const shell = [a.shell, "/bin/bash", "/bin/zsh", "/bin/sh"].find(usable) ?? "/bin/sh";
  const name = shell.split("/").pop()!;
  return {
    file: shell,
    argv: [`-${name}`],
    env: { ...baseEnv(a), SHELL: shell },
    cwd: a.home,
    user: a.name,
  };
}

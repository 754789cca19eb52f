/**
 * Which program runs a script of a given type on this machine, found on PATH once and
 * remembered. `powershell` means Windows PowerShell on Windows and PowerShell 7 (`pwsh`)
 * elsewhere; `pwsh` asks for PowerShell 7 everywhere; `batch`/`cmd` exist only on
 * Windows; `python` is `python3`, `python` or the `py -3` launcher, whichever is present.
 *
 * @module
 */
import { delimiter, join } from "node:path";

/** How to run one script file. */
export interface Interpreter {
  /** The executable (absolute path when found on PATH). */
  command: string;
  /** Arguments before the script path. */
  args: string[];
  /** Extension the script file must have (Windows picks the handler by it). */
  extension: string;
}

const cache = new Map<string, string | null>();

/** The absolute path of `name` on PATH (with PATHEXT on Windows), or null. */
export function which(name: string, os: typeof Deno.build.os = Deno.build.os): string | null {
  const key = `${os}:${name}`;
  if (cache.has(key)) return cache.get(key)!;
  const dirs = (Deno.env.get("PATH") ?? Deno.env.get("Path") ?? "").split(
    os === "windows" ? ";" : delimiter,
  ).filter(Boolean);
  const exts = os === "windows"
    ? (Deno.env.get("PATHEXT") ?? ".EXE;.CMD;.BAT;.COM").split(";").map((e) => e.toLowerCase())
    : [""];
  let found: string | null = null;
  outer: for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = join(dir, name.toLowerCase().endsWith(ext) ? name : name + ext);
      try {
        const st = Deno.statSync(candidate);
        if (st.isFile && (os === "windows" || ((st.mode ?? 0o111) & 0o111) !== 0)) {
          found = candidate;
          break outer;
        }
      } catch { /* not here */ }
    }
  }
  cache.set(key, found);
  return found;
}

/** Forgets what {@link which} found (a tool installed while the agent runs). */
export function forgetInterpreters(): void {
  cache.clear();
}

/**
 * The interpreter for `scriptType` on `os`, or a sentence saying why there is none
 * (it starts with "unsupported:", which operators see as the job's stderr).
 */
export function interpreterFor(
  scriptType: string,
  os: typeof Deno.build.os = Deno.build.os,
): Interpreter | string {
  const win = os === "windows";
  const find = (...names: string[]) => {
    for (const n of names) {
      const path = which(n, os);
      if (path) return path;
    }
    return null;
  };
  const none = (what: string) => `unsupported: ${what} was not found on this machine (${os})`;
  switch (scriptType) {
    case "bash": {
      const bash = find("bash");
      if (bash) return { command: bash, args: [], extension: ".sh" };
      if (!win) {
        const sh = find("sh");
        if (sh) return { command: sh, args: [], extension: ".sh" };
      }
      return none("bash");
    }
    case "sh": {
      const sh = find("sh", "bash");
      return sh ? { command: sh, args: [], extension: ".sh" } : none("sh");
    }
    case "powershell":
    case "pwsh": {
      const ps = scriptType === "powershell" && win
        ? find("powershell", "pwsh")
        : find("pwsh", ...(win ? ["powershell"] : []));
      if (!ps) {
        return none(
          scriptType === "powershell" && win ? "Windows PowerShell" : "PowerShell 7 (pwsh)",
        );
      }
      const args = ["-NoProfile", "-NonInteractive"];
      if (win) args.push("-ExecutionPolicy", "Bypass");
      return { command: ps, args: [...args, "-File"], extension: ".ps1" };
    }
    case "batch":
    case "cmd": {
      if (!win) return `unsupported: ${scriptType} scripts run only on Windows (this is ${os})`;
      const cmd = find("cmd") ?? "cmd.exe";
      return { command: cmd, args: ["/d", "/c"], extension: ".cmd" };
    }
    case "python": {
      const py = find("python3", "python");
      if (py) return { command: py, args: [], extension: ".py" };
      const launcher = win ? find("py") : null;
      if (launcher) return { command: launcher, args: ["-3"], extension: ".py" };
      return none("Python");
    }
    default:
      return `unsupported: ${scriptType || "this"} scripts cannot run on this platform (${os})`;
  }
}

/**
 * Runs an inventory tool and returns what it printed, or null when the tool is missing,
 * fails or takes too long: a collector must never fail because one tool is absent.
 *
 * @module
 */

/** Options of {@link run}. */
export interface RunOptions {
  /** Kill the tool after this long (ms; default 20 s). */
  timeoutMs?: number;
  /** Accept a non-zero exit code (some tools exit 1 with useful output). */
  anyExit?: boolean;
  env?: Record<string, string>;
}

/** stdout of `cmd args`, or null. */
export async function run(cmd: string, args: string[], o: RunOptions = {}): Promise<string | null> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      env: { LC_ALL: "C", ...o.env },
    }).spawn();
  } catch {
    return null; // not installed
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, o.timeoutMs ?? 20_000);
  try {
    const out = await child.output();
    if (!out.success && !o.anyExit) return null;
    return new TextDecoder().decode(out.stdout);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** A file's text, or null. */
export async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

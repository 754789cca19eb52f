/**
 * Starts a shell on the best terminal this platform offers: a pseudo-terminal on Linux
 * and macOS, ConPTY on Windows 10 1809+, else line mode with pipes.
 *
 * @module
 */
import { LineModeShell } from "./line_mode.ts";
import type { Pty, PtySpawn } from "./pty.ts";
import { UnixPty, unixPtyAvailable } from "./pty_unix.ts";
import { ConPty, conptyAvailable } from "./pty_windows.ts";

/** Starts `o` on a terminal (see the module comment for which). */
export function spawnTerminal(o: PtySpawn): Pty {
  if (Deno.build.os === "windows") {
    return conptyAvailable() ? ConPty.spawn(o) : LineModeShell.spawn(o);
  }
  return unixPtyAvailable() ? UnixPty.spawn(o) : LineModeShell.spawn(o);
}

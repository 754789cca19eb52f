/**
 * What a terminal session runs on: a pseudo-terminal (Linux, macOS: ./pty_unix.ts;
 * Windows ConPTY: ./pty_windows.ts) or, where neither is reachable, a line-mode
 * process with pipes (./line_mode.ts). The session manager only sees this interface.
 *
 * @module
 */

/** A running shell attached to a terminal. */
export interface Pty {
  /** The shell's process id. */
  readonly pid: number;
  /** "pty" (full terminal: resize, colours, full-screen programs) or "line" (pipes). */
  readonly mode: "pty" | "line";
  /**
   * Resolves with the next output bytes (at most `max`), or null at the end (the shell
   * and everything holding the terminal are gone, or {@link close} was called).
   */
  read(max: number): Promise<Uint8Array | null>;
  /** Writes keystrokes; returns how many bytes were taken (the rest is retried later). */
  write(data: Uint8Array): number;
  /** Sets the window size (the foreground program gets SIGWINCH). */
  resize(cols: number, rows: number): void;
  /** Resolves with the exit code (or 128 + signal) once the shell has exited. */
  wait(): Promise<number>;
  /** Ends the shell and everything in its session, then releases the terminal. */
  close(): Promise<void>;
}

/** How to start a shell. */
export interface PtySpawn {
  /** Absolute path of the program. */
  file: string;
  /** argv (argv[0] first; "-bash" makes a login shell). */
  argv: string[];
  /** The complete environment. */
  env: Record<string, string>;
  /** Working directory (ignored where the platform cannot set it). */
  cwd?: string;
  cols: number;
  rows: number;
}

/**
 * What "install commands" offers for a site. With agent packages built
 * (`deno task agent:package`), the engine answers per-platform commands for an install
 * token (`install_commands`: Linux, macOS, Windows). Without packages there is nothing
 * to install, and the console offers the reference agent's command line instead, which
 * enrolls a machine with the site's code from a checkout of this repository.
 *
 * @module
 */
import type { InstallCommands, Site } from "../api/types.ts";

/** One platform's command. */
export interface InstallCommand {
  platform: string;
  label: string;
  command: string;
}

/** The command that builds agent packages (shown when none exist). */
export const PACKAGE_COMMAND = "deno task agent:package --version 1.0.0 --channel stable";

/** Single-quotes a shell argument. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9@%_+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** The engine's per-platform commands as a list (empty without them). */
export function platformCommands(c: InstallCommands | null | undefined): InstallCommand[] {
  if (!c) return [];
  return [
    { platform: "linux", label: "Linux (as root)", command: c.linux },
    { platform: "macos", label: "macOS (as root)", command: c.macos },
    { platform: "windows", label: "Windows (elevated PowerShell)", command: c.windows },
  ];
}

/** The reference agent's command line for a site (code needed: admins only). */
export function referenceAgentCommand(site: Site, serverUrl: string): InstallCommand | null {
  if (!site.enrollment_code) return null;
  const url = serverUrl.replace(/\/+$/, "");
  return {
    platform: "reference-agent",
    label: "Reference agent (from a checkout of the engine)",
    command:
      `deno task agent --server ${shellQuote(url)} --code ${shellQuote(site.enrollment_code)} ` +
      `--state ./borealis-agent --connect`,
  };
}

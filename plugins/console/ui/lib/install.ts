/**
 * What "copy install command" offers for a site: the engine's per-platform commands when
 * it serves them (`install_commands` on the site), and until then the reference agent's
 * command line, which enrolls a machine with the site's code from a checkout of this
 * repository.
 *
 * @module
 */
import type { InstallCommand, Site } from "../api/types.ts";

/** Single-quotes a shell argument. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9@%_+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** The install commands to show for a site (code needed: admins only). */
export function installCommands(site: Site, serverUrl: string): InstallCommand[] {
  if (site.install_commands?.length) return site.install_commands;
  if (!site.enrollment_code) return [];
  const url = serverUrl.replace(/\/+$/, "");
  return [{
    platform: "reference-agent",
    label: "Reference agent (from a checkout of the engine)",
    command:
      `deno task agent --server ${shellQuote(url)} --code ${shellQuote(site.enrollment_code)} ` +
      `--state ./borealis-agent --connect`,
  }];
}

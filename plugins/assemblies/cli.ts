/**
 * `deno task assemblies sync-official`: rebuilds the official domain from the shipped
 * catalog with a progress bar and a summary of what was added, changed, removed and
 * left unchanged.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { PluginCommand } from "../../core/plugin.ts";
import { assembliesService } from "./keys.ts";
import type { SyncSummary } from "./sync.ts";

/** The `assemblies sync-official` command. */
export const syncOfficialCommand: PluginCommand = {
  name: "assemblies sync-official",
  summary: "rebuild the official assembly domain from assemblies/",
  usage: `Usage: deno task assemblies sync-official [--json] [--strict]

Rebuilds the official domain from the catalog folder (BOREALIS_ASSEMBLIES_CATALOG_DIR,
default <root>/assemblies): Scripts/, Workflows/, Ansible_Playbooks/. GUIDs come from
each file's relative path, so running it again changes nothing.

  --json     print the summary as JSON
  --strict   exit 1 when any catalog file was skipped as invalid`,
  async run(ctx) {
    let values: { json?: boolean; strict?: boolean };
    try {
      values = parseArgs({
        args: ctx.args,
        options: { json: { type: "boolean" }, strict: { type: "boolean" } },
        strict: true,
      }).values;
    } catch (err) {
      ctx.print(`error: ${err instanceof Error ? err.message : err}`);
      return 2;
    }
    // The command reports what it did itself, so the engine must not sync at boot first.
    Deno.env.set("BOREALIS_ASSEMBLIES_SYNC_AT_BOOT", "false");
    const engine = await ctx.openEngine();
    try {
      const service = engine.service(assembliesService);
      const bar = progressBar(!values.json && Deno.stderr.isTerminal());
      const summary = await service.syncOfficial(bar.update);
      bar.done();
      ctx.print(values.json ? JSON.stringify(summary, null, 2) : render(summary));
      return values.strict && summary.skipped.length ? 1 : 0;
    } finally {
      await engine.stop();
    }
  },
};

function progressBar(enabled: boolean) {
  const enc = new TextEncoder();
  let drawn = false;
  return {
    update: (done: number, total: number, path: string) => {
      if (!enabled) return;
      const width = 30;
      const filled = total ? Math.round((done / total) * width) : width;
      const line = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${
        path.slice(-40)
      }`;
      Deno.stderr.writeSync(enc.encode(`\r${line.padEnd(90)}`));
      drawn = true;
    },
    done: () => {
      if (drawn) Deno.stderr.writeSync(enc.encode("\n"));
    },
  };
}

/** The human summary. */
export function render(s: SyncSummary): string {
  const lines = [
    `official catalog: ${s.files} file(s)`,
    `  added:     ${s.added.length}`,
    `  changed:   ${s.changed.length}`,
    `  removed:   ${s.removed.length}`,
    `  unchanged: ${s.unchanged}`,
  ];
  if (s.repaired) lines.push(`  repaired payload files: ${s.repaired}`);
  if (s.skipped.length) {
    lines.push(`  skipped:   ${s.skipped.length}`);
    for (const k of s.skipped) lines.push(`    ${k.path}: ${k.reason}`);
  }
  return lines.join("\n");
}

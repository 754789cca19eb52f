/**
 * The example plugin from docs/plugins.md: a tiny note board showing every part of the
 * plugin contract — a migration, a settings section, zod-validated routes that appear
 * in the OpenAPI document, a typed event, a service other plugins can use, a
 * background task, and a shutdown hook. It is laid out as every plugin is and imports the
 * kernel through `borealis/`, as a plugin outside the repository does: load it with
 * `BOREALIS_PLUGINS=all,example`, or from a copy of this folder anywhere with
 * `BOREALIS_PLUGINS=all,/path/to/example/mod.ts`.
 *
 * @module
 */
import { definePlugin } from "borealis/core/plugin.ts";
import { notesService } from "./api.ts";
import { registerNoteRoutes } from "./routes_notes.ts";
import { settings } from "./settings.ts";
import { NoteStore } from "./store.ts";

export * from "./api.ts";

export default definePlugin({
  name: "example",
  description: "Example note board used by the plugin author's guide",
  migrations: new URL("./migrations/", import.meta.url),
  settings,
  setup(ctx) {
    const store = new NoteStore(ctx.sql, ctx.clock);
    registerNoteRoutes(ctx, store);
    ctx.provide(notesService, store);
    ctx.tasks.every("prune", 3_600_000, async () => {
      const count = await store.prune(ctx.settings.retentionDays);
      if (count) ctx.log.info(`pruned ${count} old note(s)`);
    }, { clusterSingleton: true });
    ctx.onStop(() => ctx.log.info("example plugin stopped"));
  },
});

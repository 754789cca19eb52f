/**
 * The `assemblies` plugin: the three-domain script and workflow catalog (`official`,
 * `community`, `user_created`), the payload store under
 * `<data dir>/Assemblies/Payloads`, the in-memory cache with its timed write queue,
 * Dev Mode-guarded writes, legacy JSON import/export and the official catalog sync
 * from the repository's `assemblies/` folder. See docs/assemblies.md.
 *
 * @module
 */
import { join } from "node:path";
import { boolEnv, intEnv, optionalStringEnv, setting } from "../../core/config.ts";
import { definePlugin } from "../../core/plugin.ts";
import { assembliesChanged, assembliesService } from "./keys.ts";
import { AssemblyCache } from "./cache.ts";
import { syncOfficialCommand } from "./cli.ts";
import { PayloadStore } from "./payloads.ts";
import { registerRoutes } from "./routes.ts";
import { AssembliesService } from "./service.ts";
import { catalogFingerprint, recordedFingerprint, scanCatalog, syncOfficial } from "./sync.ts";

export type { AssemblyRecord, Domain, EntryState, Kind } from "./model.ts";
export type { FlushResult, IntegrityProblem, QueueSnapshot } from "./cache.ts";
export type { SyncSummary } from "./sync.ts";
export { AssembliesService } from "./service.ts";

export { assembliesChanged, assembliesService } from "./keys.ts";

/** The plugin's settings. */
export const assembliesSettings = {
  flushSeconds: setting(
    "BOREALIS_ASSEMBLIES_FLUSH_SECONDS",
    intEnv(60, 5, 86_400),
    "seconds, an integer from 5 to 86400",
    "How often staged assembly changes are written to the database.",
    "60",
  ),
  maxBytes: setting(
    "BOREALIS_ASSEMBLIES_MAX_BYTES",
    intEnv(1_048_576, 1024, 950_000_000),
    "bytes, an integer from 1024 to 950000000",
    "Largest payload (plus attached files) an import, create or update may carry.",
    "1048576",
  ),
  catalogDir: setting(
    "BOREALIS_ASSEMBLIES_CATALOG_DIR",
    optionalStringEnv(),
    "a folder path",
    "The shipped official catalog (Scripts/, Workflows/, Ansible_Playbooks/).",
    "<root>/assemblies",
  ),
  syncAtBoot: setting(
    "BOREALIS_ASSEMBLIES_SYNC_AT_BOOT",
    boolEnv(true),
    "true or false",
    "Rebuild the official domain at start when the shipped catalog changed.",
    "true",
  ),
};

export default definePlugin({
  name: "assemblies",
  description: "Script and workflow catalog: three domains, payload store, write queue, Dev Mode",
  requires: ["operators"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: assembliesSettings,
  commands: [syncOfficialCommand],
  async setup(ctx) {
    const s = ctx.settings;
    const payloads = new PayloadStore(join(ctx.core.dataDir, "Assemblies", "Payloads"));
    const catalogDir = s.catalogDir ?? join(ctx.core.root, "assemblies");

    // The shipped catalog is synced before the cache loads, and only when it changed.
    if (s.syncAtBoot) {
      const recorded = await recordedFingerprint(ctx.sql);
      const current = await catalogFingerprint(await scanCatalog(catalogDir));
      if (recorded !== current) {
        await syncOfficial({
          sql: ctx.sql,
          payloads,
          clock: ctx.clock,
          log: ctx.log,
          catalogDir,
          maxPayloadBytes: s.maxBytes,
        });
      }
    }

    const announce = async (changed: string[], deleted: string[]) => {
      try {
        await ctx.events.publish(assembliesChanged, { changed, deleted });
      } catch (err) {
        ctx.log.warn(
          `could not announce assembly changes: ${err instanceof Error ? err.message : err}`,
        );
      }
    };
    const cache = new AssemblyCache({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      payloads,
      flushIntervalMs: s.flushSeconds * 1000,
      onPersisted: announce,
    });
    const loaded = await cache.load();
    ctx.log.info(
      `assembly cache loaded ${loaded.loaded} assemblies` +
        (loaded.problems
          ? `; ${loaded.problems} payload problem(s), see GET /api/assemblies/integrity`
          : ""),
    );

    ctx.events.subscribe(assembliesChanged, async (e, meta) => {
      if (meta.local) return;
      await cache.reload(e.changed, e.deleted);
    });

    const service = new AssembliesService({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      cache,
      payloads,
      catalogDir,
      maxPayloadBytes: s.maxBytes,
      announce,
    });
    ctx.provide(assembliesService, service);

    // Each instance flushes its own cache, so this is not a cluster singleton.
    ctx.tasks.every("flush", s.flushSeconds * 1000, async () => {
      await cache.flush();
    });
    // Payload folders of changes lost before their flush (a crash) are referenced by
    // nothing; they go at start and every hour once well past any flush.
    const orphanGraceMs = Math.max(3_600_000, 10 * s.flushSeconds * 1000);
    const sweep = async () => {
      const removed = await cache.sweepPayloads(orphanGraceMs);
      if (removed.length) {
        ctx.log.info(
          `removed ${removed.length} payload folder(s) no assembly references (changes lost ` +
            `before their flush)`,
        );
      }
    };
    await sweep().catch((err) =>
      ctx.log.warn(`payload sweep failed: ${err instanceof Error ? err.message : err}`)
    );
    ctx.tasks.every("sweep_payloads", 3_600_000, sweep);
    ctx.onStop(async () => {
      const q = cache.queue();
      const r = await cache.flush({ force: true });
      if (q.dirty_count) {
        ctx.log.info(
          `shutdown flush: ${r.persisted} written, ${r.deleted} deleted, ${r.failed} failed`,
        );
      }
    });

    // JSON escaping and base64 make a body larger than the content it carries.
    ctx.bodyLimit("/api/assemblies", Math.min(2 * s.maxBytes + 65_536, 2_000_000_000));
    registerRoutes(ctx, service);
  },
});

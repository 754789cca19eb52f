/**
 * The agent_updates plugin: agent packages per platform (built by
 * `deno task agent:package`, signed with the code-signing key, served to installers and
 * agents), per-site install tokens and install commands, release channels and staged
 * self-updates. See docs/agent.md.
 *
 * @module
 */
import { join } from "node:path";
import { definePlugin } from "../../core/plugin.ts";
import { vaultKey } from "../aegis/mod.ts";
import { enrollmentKey } from "../enrollment/mod.ts";
import { inventoryKey } from "../inventory/mod.ts";
import { realtimeKey } from "../realtime/mod.ts";
import { tokensKey } from "../tokens/mod.ts";
import { agentUpdatesKey } from "./api.ts";
import { registerInstallTokenRoutes } from "./routes_install_tokens.ts";
import { registerPackageRoutes } from "./routes_packages.ts";
import { registerReleaseRoutes } from "./routes_releases.ts";
import { registerRolloutRoutes } from "./routes_rollouts.ts";
import { AgentUpdatesService } from "./service.ts";
import { agentUpdatesSettings } from "./settings.ts";
import { PackageStore } from "./store.ts";

export * from "./api.ts";
export { AgentUpdatesService, compareVersions } from "./service.ts";

export default definePlugin({
  name: "agent_updates",
  description: "Agent packages, install tokens, release channels, staged self-updates",
  requires: ["tokens", "inventory", "enrollment"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: agentUpdatesSettings,
  setup(ctx) {
    const s = ctx.settings;
    const inventory = ctx.use(inventoryKey);
    const tokens = ctx.use(tokensKey);
    const vault = ctx.use(vaultKey);
    const store = new PackageStore(join(ctx.core.dataDir, "agent_packages"));
    const svc = new AgentUpdatesService({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      audit: ctx.audit,
      vault,
      inventory,
      tokens,
      store,
      publicUrl: ctx.core.publicBaseUrl ?? `http://${ctx.core.host}:${ctx.core.port}`,
      checkSeconds: s.checkSeconds,
      updateTimeoutMs: s.updateTimeoutMinutes * 60_000,
      autoMaxConcurrent: s.autoMaxConcurrent,
      tokenDefaultHours: s.tokenDefaultHours,
      // Realtime is optional and may set up after this plugin: look it up when needed.
      nudge: async (guid) => {
        await ctx.tryUse(realtimeKey)?.send(guid, { type: "agent_update_available", data: {} });
      },
    });
    ctx.provide(agentUpdatesKey, svc);
    vault.registerColumn({ table: "agent_install_tokens", column: "token_sealed", idColumn: "id" });
    ctx.use(enrollmentKey).setInstallTokenResolver((token, who) =>
      svc.resolveInstallToken(token, who)
    );

    inventory.addSiteFields(async (rows, p) => {
      const out = new Map<number, Record<string, unknown>>();
      if (!AgentUpdatesService.canSeeInstallCommands(p)) return out;
      for (const { id } of rows) out.set(id, { install_commands: await svc.installCommands(id) });
      return out;
    });
    inventory.addDeviceFields(async (rows) => {
      const info = await svc.deviceInfo(
        rows.map((r) => r.id),
        new Map(rows.map((r) => [r.id, r.site_id] as const)),
      );
      return new Map([...info].map(([g, a]) => [g, { agent: a }]));
    });

    registerInstallTokenRoutes(ctx.http, svc, inventory, ctx.audit);
    registerReleaseRoutes(ctx.http, svc, ctx.audit);
    registerRolloutRoutes(ctx.http, svc, inventory, ctx.audit);
    registerPackageRoutes(ctx.http, svc, store, tokens);

    ctx.tasks.every("scan_packages", s.scanSeconds * 1000, async () => void await svc.scan(), {
      clusterSingleton: true,
    });
  },
});

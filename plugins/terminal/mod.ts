/**
 * The terminal plugin: interactive shells on devices and live device actions, relayed
 * over the operator socket and the agent socket, across engine instances. Sessions
 * (./sessions.ts) with end-to-end flow control and resume after a blip, per-site policy,
 * limits, audit and sealed transcripts; device actions (./actions.ts); file transfers
 * (./transfers.ts). Everything the agent does starts from a grant signed with the
 * code-signing key (./grant.ts). See docs/terminal.md.
 *
 * @module
 */
import { definePlugin } from "../../core/plugin.ts";
import { vaultKey } from "../aegis/mod.ts";
import { inventoryKey } from "../inventory/mod.ts";
import { operatorsKey } from "../operators/mod.ts";
import { realtimeKey } from "../realtime/mod.ts";
import { tokensKey } from "../tokens/mod.ts";
import { DeviceActions } from "./actions.ts";
import { terminalKey } from "./api.ts";
import { GrantSigner } from "./grant.ts";
import { registerFrames } from "./frames.ts";
import { Relay } from "./relay.ts";
import { installActionRoutes } from "./routes_actions.ts";
import { installFileRoutes, UPLOAD_PREFIX } from "./routes_files.ts";
import { installSessionRoutes } from "./routes_sessions.ts";
import { installPolicyRoutes } from "./routes_site_policies.ts";
import { TerminalSessions } from "./sessions.ts";
import { terminalSettings } from "./settings.ts";
import { TerminalStore } from "./store.ts";
import { FileTransfers } from "./transfers.ts";

export * from "./api.ts";

export default definePlugin({
  name: "terminal",
  description:
    "Remote terminal sessions, live device actions and file transfer over the agent socket",
  requires: ["realtime", "operators", "inventory", "aegis", "tokens"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: terminalSettings,
  setup(ctx) {
    const s = ctx.settings;
    const channel = ctx.use(realtimeKey);
    const inventory = ctx.use(inventoryKey);
    const vault = ctx.use(vaultKey);
    const tokens = ctx.use(tokensKey);
    const store = new TerminalStore(ctx.sql, ctx.clock);
    const relay = new Relay(ctx.events, ctx.instanceId, ctx.log);
    const grants = new GrantSigner(() => tokens.codeSigner());
    const common = { store, channel, inventory, grants, relay, clock: ctx.clock, log: ctx.log };
    const sessions = new TerminalSessions({
      ...common,
      operators: ctx.use(operatorsKey),
      vault,
      events: ctx.events,
      audit: ctx.audit,
      instanceId: ctx.instanceId,
      settings: {
        maxPerDevice: s.maxPerDevice,
        maxPerOperator: s.maxPerOperator,
        idleMs: s.idleSeconds * 1000,
        resumeMs: s.resumeSeconds * 1000,
        openTimeoutMs: s.openTimeoutSeconds * 1000,
        windowBytes: s.windowBytes,
      },
    });
    const actions = new DeviceActions({
      ...common,
      audit: ctx.audit,
      instanceId: ctx.instanceId,
      timeoutMs: s.actionTimeoutSeconds * 1000,
    });
    const transfers = new FileTransfers({
      ...common,
      audit: ctx.audit,
      instanceId: ctx.instanceId,
      maxBytes: s.fileMaxBytes,
      windowBytes: s.fileWindowBytes,
      stallMs: 60_000,
    });

    // A force-reset of the vault destroys the transcripts (there is no way to open them).
    vault.registerColumn({
      table: "terminal_transcripts",
      column: "sealed",
      idColumn: "id",
      onReset: async (sql) => {
        await sql`delete from terminal_transcripts`;
      },
    });

    registerFrames(channel, relay, sessions);
    ctx.bodyLimit(UPLOAD_PREFIX, s.fileMaxBytes, { streamed: true });
    installSessionRoutes(ctx.http, { store, sessions, vault, audit: ctx.audit });
    installPolicyRoutes(ctx.http, { store, inventory, audit: ctx.audit });
    installActionRoutes(ctx.http, { actions, store, inventory });
    installFileRoutes(ctx.http, { transfers, store, inventory });

    // Quarantine, revocation and purge end the device's sessions wherever they are owned.
    inventory.onContainment((guid, action) =>
      action === "unquarantine" ? Promise.resolve() : sessions.closeDevice(guid, `device_${action}`)
    );

    ctx.provide(terminalKey, {
      get localSessions() {
        return sessions.size;
      },
      bufferedBytes: () => sessions.bufferedBytes(),
      sweep: () => sessions.sweep(),
    });

    // Site ids are never reused, so a deleted site's policy only takes room; the sites
    // themselves are the inventory's (asked through its service, not its tables).
    async function pruneDeletedSites(): Promise<void> {
      const gone: number[] = [];
      for (const id of await store.policySites()) {
        if (!await inventory.site(id, false)) gone.push(id);
      }
      await store.deletePolicies(gone);
    }

    ctx.tasks.every("sweep", 5000, () => sessions.sweep());
    ctx.tasks.every("reap", 30_000, async () => void await sessions.reapOrphans(), {
      clusterSingleton: true,
    });
    ctx.tasks.every("prune", 3_600_000, async () => {
      const n = await store.pruneTranscripts(
        new Date(ctx.clock.now() - s.transcriptDays * 86_400_000),
      );
      if (n) ctx.log.info(`terminal: pruned ${n} transcript chunks past retention`);
      await store.failStaleTransfers(new Date(ctx.clock.now() - 86_400_000));
      await pruneDeletedSites();
    }, { clusterSingleton: true });
    ctx.onStop(() => sessions.stop());
  },
});

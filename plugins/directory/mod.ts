/**
 * Directory: LDAP and Active Directory providers for operator sign-in. Admins configure
 * providers (test before enable), map groups to roles and sites; the operators login
 * route hands directory accounts and unknown names to this plugin, which binds as the
 * user, reads groups (nested where enabled), creates or refreshes the account just in
 * time, and returns it to the same MFA step local users take. A periodic sync disables
 * accounts the directory disabled, removed or unmapped, revoking their sessions.
 *
 * @module
 */
import { intEnv, setting } from "../../core/config.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";
import { vaultKey } from "../aegis/mod.ts";
import { type ExternalLoginResult, operatorsKey } from "../operators/mod.ts";
import { sitesKey } from "../sites/mod.ts";
import { DirectoryAccounts } from "./accounts.ts";
import { acceptableUsername, DirectoryReader } from "./directory.ts";
import { ServerPool } from "./ldap.ts";
import { ProviderStore } from "./providers.ts";
import { registerDirectoryRoutes } from "./routes.ts";

export {
  adNestedGroupsFilter,
  escapeDnValue,
  escapeFilterValue,
  normalizeDn,
  renderFilter,
} from "./escape.ts";
export type { DirectoryEntry } from "./directory.ts";
export type { SyncResult } from "./accounts.ts";

/** What other plugins (and tests) may do with directory accounts. */
export interface DirectoryService {
  /** Re-reads every account of a provider from the directory. */
  sync(providerId: string): Promise<import("./accounts.ts").SyncResult>;
  /** The login check the operators plugin runs for directory accounts and unknown names. */
  authenticate(username: string, password: string): Promise<ExternalLoginResult>;
}

/** `ctx.use(directoryKey)` in a plugin that requires "directory". */
export const directoryKey = serviceKey<DirectoryService>("directory.accounts");

export default definePlugin({
  name: "directory",
  description: "LDAP / Active Directory sign-in with group-to-role and group-to-site mapping",
  requires: ["operators", "aegis", "sites"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    syncIntervalSeconds: setting(
      "BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS",
      intEnv(3600, 0, 604_800),
      "seconds, an integer from 0 (off) to 604800",
      "How often every enabled provider's accounts are synced from the directory.",
      "3600",
    ),
  },
  setup(ctx) {
    const vault = ctx.use(vaultKey);
    const operators = ctx.use(operatorsKey);
    const store = new ProviderStore(ctx.sql, ctx.clock, vault, (ids) => operators.usernames(ids));
    const reader = new DirectoryReader(new ServerPool(ctx.clock));
    const accounts = new DirectoryAccounts({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      audit: ctx.audit,
      store,
      reader,
      operators,
      sites: ctx.use(sitesKey),
    });

    vault.registerColumn({
      table: "directory_providers",
      column: "bind_password_encrypted",
      idColumn: "id",
      // Without its bind password a provider cannot search; disable it until re-entered.
      onReset: async (sql) => {
        await sql`update directory_providers set bind_password_encrypted = null,
                    enabled = false, tested_version = null
                  where bind_password_encrypted is not null`;
      },
    });

    operators.setExternalAuthenticator(accounts);
    registerDirectoryRoutes({ ctx, store, reader, accounts, operators });
    ctx.provide(directoryKey, {
      sync: (id) => accounts.sync(id),
      async authenticate(username, password) {
        if (!acceptableUsername(username)) return { status: "invalid", reason: "bad_username" };
        const user = await operators.userByName(username);
        if (user?.auth_source === "local") return { status: "skip" };
        return await accounts.authenticate({ username, password, user, ip: null });
      },
    });

    const every = (ctx.settings as { syncIntervalSeconds: number }).syncIntervalSeconds;
    if (every > 0) {
      ctx.tasks.every("sync", every * 1000, async () => {
        for (const p of await store.enabled()) {
          try {
            await accounts.sync(p.id);
          } catch (e) {
            ctx.log.warn(`directory sync of "${p.name}" failed: ${(e as Error).message}`);
          }
        }
      }, { clusterSingleton: true });
    }
  },
});

/**
 * Aegis, the vault: seals secrets (credentials, TOTP seeds, bind passwords, …) with
 * AES-256-GCM under keys derived by scrypt, binding each value to its place. Two modes:
 * passphrase (starts locked; an operator unlocks it) and key file (unlocked at start;
 * a zero-config start creates `<data dir>/aegis.key`). Other plugins use {@link vaultKey}.
 *
 * @module
 */
import { join } from "node:path";
import { z } from "zod";
import { intEnv, optionalStringEnv, setting } from "../../core/config.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";
import { registerAegisRoutes } from "./routes.ts";
import { registerCredentialRoutes } from "./credentials.ts";
import { AegisVault, type Vault } from "./vault.ts";
import { sitesKey } from "../sites/mod.ts";

export type {
  ForceResetResult,
  RotationProgress,
  SealedColumn,
  SealPlace,
  Vault,
  VaultMode,
  VaultState,
  VaultStatus,
} from "./vault.ts";
export { lockedError, notConfiguredError } from "./vault.ts";
export type { CredentialSecrets, CredentialService } from "./credentials.ts";

/** The vault service: `ctx.use(vaultKey)` in a plugin that requires "aegis". */
export const vaultKey = serviceKey<Vault>("aegis.vault");

/** Opens credentials for in-process consumers (the scheduler); never exposed over HTTP. */
export const credentialsKey = serviceKey<import("./credentials.ts").CredentialService>(
  "aegis.credentials",
);

const modeEnv = z.enum(["auto", "keyfile", "passphrase"]).optional().transform((v) => v ?? "auto");

export default definePlugin({
  name: "aegis",
  description: "The vault: sealed secrets (scrypt + AES-256-GCM), key rotation, credentials",
  requires: ["sites"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    mode: setting(
      "BOREALIS_AEGIS_MODE",
      modeEnv,
      "auto, keyfile or passphrase",
      "Vault mode. auto: key-file mode unless the vault was set up with a passphrase. " +
        "passphrase: the engine starts locked and an operator unlocks it.",
      "auto",
    ),
    keyFile: setting(
      "BOREALIS_AEGIS_KEY_FILE",
      optionalStringEnv(),
      "a file path (the file must be mode 0600)",
      "Key file for key-file mode; created with mode 0600 when missing.",
      "<data dir>/aegis.key",
    ),
    rotateBatch: setting(
      "BOREALIS_AEGIS_ROTATE_BATCH",
      intEnv(200, 1, 100_000),
      "an integer from 1 to 100000",
      "Sealed values re-encrypted per batch during a key rotation.",
      "200",
    ),
  },
  async setup(ctx) {
    const vault = new AegisVault({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      mode: ctx.settings.mode,
      keyFile: ctx.settings.keyFile ?? join(ctx.core.dataDir, "aegis.key"),
      batchSize: ctx.settings.rotateBatch,
    });
    await vault.init();
    ctx.provide(vaultKey, vault);
    const driver = registerAegisRoutes(ctx, vault);
    ctx.provide(credentialsKey, registerCredentialRoutes(ctx, vault, ctx.use(sitesKey)));
    // A rotation interrupted by a stop resumes when the vault is next unlocked here.
    driver.resumeIfPending();
    ctx.onStop(() => driver.stop());
  },
});

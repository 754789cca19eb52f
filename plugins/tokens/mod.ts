/**
 * The tokens plugin: engine signing keys, EdDSA access JWTs bound to the agent's DPoP
 * key, rotating refresh tokens, RFC 9449 proof checks with a cross-instance replay
 * cache, and the device authentication every agent route uses.
 *
 * @module
 */
import { boolEnv, intEnv, setting } from "../../core/config.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";
import { vaultKey } from "../aegis/mod.ts";
import { devicesKey, inventoryKey } from "../inventory/mod.ts";
import { AccessTokens } from "./access.ts";
import { DeviceAuth } from "./device_auth.ts";
import { KeyRing } from "./keys.ts";
import { NonceService } from "./nonce.ts";
import { RateLimiter } from "./rate_limit.ts";
import { RefreshTokens } from "./refresh.ts";
import { SharedReplayCache } from "./replay.ts";
import { registerAgentRoutes } from "./routes_agent.ts";
import { TokenService } from "./service.ts";

export type { AccessClaims } from "./access.ts";
export { AccessTokenError } from "./access.ts";
export type { DeviceGuardOptions, DeviceIdentity } from "./device_auth.ts";
export { DeviceAuth, dpopChallenge } from "./device_auth.ts";
export {
  accessTokenHash,
  b64urlDecode,
  b64urlEncode,
  DPOP_ALGS,
  DpopError,
  verifyDpopProof,
} from "./dpop.ts";
export type { ReplayCache, VerifiedProof } from "./dpop.ts";
export { RateLimiter } from "./rate_limit.ts";
export { TokenService } from "./service.ts";
export type { CodeSignFunction } from "./service.ts";

/** Service key: `ctx.use(tokensKey)` in plugins that require "tokens". */
export const tokensKey = serviceKey<TokenService>("tokens.service");

/** Audience of device access tokens. */
export const ACCESS_TOKEN_AUDIENCE = "urn:borealis:agent-api";

export default definePlugin({
  name: "tokens",
  description: "Engine signing keys, access and refresh tokens, DPoP, device authentication",
  requires: ["inventory", "aegis"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    accessTtlSeconds: setting(
      "BOREALIS_ACCESS_TOKEN_TTL_SECONDS",
      intEnv(900, 60, 3600),
      "seconds, an integer from 60 to 3600",
      "Lifetime of device access tokens.",
      "900",
    ),
    refreshIdleDays: setting(
      "BOREALIS_REFRESH_TOKEN_IDLE_DAYS",
      intEnv(90, 1, 365),
      "days, an integer from 1 to 365",
      "Sliding expiry: a refresh token unused this long expires.",
      "90",
    ),
    refreshMaxDays: setting(
      "BOREALIS_REFRESH_TOKEN_MAX_DAYS",
      intEnv(365, 1, 3650),
      "days, an integer from 1 to 3650",
      "Absolute expiry of a refresh token family (from enrollment); the agent then re-enrolls.",
      "365",
    ),
    dpopSkewSeconds: setting(
      "BOREALIS_DPOP_MAX_SKEW_SECONDS",
      intEnv(300, 5, 900),
      "seconds, an integer from 5 to 900",
      "Accepted difference between a DPoP proof's iat and the engine clock.",
      "300",
    ),
    dpopRequireNonce: setting(
      "BOREALIS_DPOP_REQUIRE_NONCE",
      boolEnv(false),
      "true or false",
      "Require server-issued DPoP nonces (DPoP-Nonce header, use_dpop_nonce error).",
      "false",
    ),
    deviceRatePerMinute: setting(
      "BOREALIS_DEVICE_RATE_LIMIT_PER_MINUTE",
      intEnv(600, 0, 1_000_000),
      "an integer from 0 (off) to 1000000",
      "Authenticated agent requests per device per minute (per engine instance).",
      "600",
    ),
  },
  commands: [{
    name: "keys rotate",
    summary: "make a new token signing key (the old one verifies until its tokens expire)",
    usage: "deno task start keys rotate",
    async run(cmd) {
      const engine = await cmd.openEngine();
      try {
        const kid = await engine.service(tokensKey).keys.rotate();
        cmd.print(`new signing key ${kid}`);
        return 0;
      } finally {
        await engine.stop();
      }
    },
  }],
  async setup(ctx) {
    const s = ctx.settings;
    const inv = ctx.use(inventoryKey);
    const keys = new KeyRing(
      ctx.sql,
      ctx.clock,
      ctx.use(vaultKey),
      ctx.log,
      (s.accessTtlSeconds + s.dpopSkewSeconds) * 1000,
    );
    await keys.start();
    const issuer = ctx.core.publicBaseUrl ?? "urn:borealis:engine";
    const access = new AccessTokens(
      keys,
      ctx.clock,
      issuer,
      ACCESS_TOKEN_AUDIENCE,
      s.accessTtlSeconds,
    );
    const refresh = new RefreshTokens(
      ctx.sql,
      ctx.clock,
      s.refreshIdleDays * 86_400_000,
      s.refreshMaxDays * 86_400_000,
      async ({ guid, family_id }) => {
        ctx.log.warn(`refresh token reuse for device ${guid}: family revoked`);
        await ctx.audit(null, {
          action: "token.refresh_reuse",
          target: `device:${guid}`,
          outcome: "denied",
          details: { family_id },
          actor: { kind: "device", id: guid, name: guid, sites: [] },
        });
      },
    );
    const replay = new SharedReplayCache(ctx.sql, ctx.clock);
    const nonce = new NonceService(
      ctx.sql,
      ctx.clock,
      s.dpopRequireNonce,
      s.dpopSkewSeconds * 1000,
    );
    const devices = ctx.use(devicesKey);
    const auth = new DeviceAuth({
      identities: (guids) => devices.identities(guids),
      clock: ctx.clock,
      access,
      replay,
      nonce,
      maxSkewSeconds: s.dpopSkewSeconds,
      limiter: new RateLimiter(
        ctx.clock,
        s.deviceRatePerMinute,
        60_000,
        "device rate limit exceeded",
      ),
      publicBaseUrl: ctx.core.publicBaseUrl,
    });
    const service = new TokenService(keys, access, refresh, auth, replay, nonce);
    ctx.provide(tokensKey, service);
    ctx.auth.install("device-dpop", auth.authenticator);

    // Revoke ends every refresh family at once (purge deletes them with the device row).
    inv.onContainment(async (guid, action) => {
      // Every containment action moves the device's token version on: its verified
      // tokens are void here at once (other instances drop them at the device check).
      access.verified.forgetDevice(guid);
      if (action === "revoke") await refresh.revokeDevice(guid, "device_revoked");
    });

    registerAgentRoutes(ctx.http, service, inv);

    ctx.tasks.every("prune_replay", 60_000, async () => void await replay.prune(), {
      clusterSingleton: true,
    });
    ctx.tasks.every("prune_refresh", 3_600_000, async () => void await refresh.prune(), {
      clusterSingleton: true,
    });
    ctx.tasks.every("reload_keys", 60_000, () => keys.reload());
  },
});

/**
 * The tokens service other plugins use: issue tokens (enrollment), guard agent routes,
 * and publish the script-signing key once a plugin provides it.
 *
 * @module
 */
import type { AccessTokens } from "./access.ts";
import type { DeviceAuth } from "./device_auth.ts";
import type { KeyRing } from "./keys.ts";
import type { NonceService } from "./nonce.ts";
import type { RefreshTokens } from "./refresh.ts";
import type { SharedReplayCache } from "./replay.ts";

/** Supplies the base64 SPKI of the script-signing key (the scheduler's). */
export type SigningKeyProvider = () => Promise<string | null>;

/** What the tokens plugin offers. */
export class TokenService {
  #signingKey: SigningKeyProvider = () => Promise.resolve(null);

  constructor(
    readonly keys: KeyRing,
    readonly access: AccessTokens,
    readonly refresh: RefreshTokens,
    readonly auth: DeviceAuth,
    readonly replay: SharedReplayCache,
    readonly nonce: NonceService,
  ) {}

  /** Lets the plugin that signs scripts publish its public key to agents. */
  setScriptSigningKeyProvider(p: SigningKeyProvider): void {
    this.#signingKey = p;
  }

  /** The script-signing public key (base64 SPKI), or null while none is configured. */
  scriptSigningKey(): Promise<string | null> {
    return this.#signingKey();
  }
}

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

/** Signs bytes with the code-signing key: base64 Ed25519 signature, key id, base64 SPKI. */
export type CodeSignFunction = (
  bytes: Uint8Array,
) => Promise<{ signature: string; kid: string; spki: string }>;

/** What the tokens plugin offers. */
export class TokenService {
  #signingKey: SigningKeyProvider = () => Promise.resolve(null);
  #codeSign?: CodeSignFunction;

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

  /**
   * Lets the plugin holding the code-signing key sign other artifacts agents verify with
   * the same pinned key (agent package manifests).
   */
  setCodeSigner(fn: CodeSignFunction): void {
    this.#codeSign = fn;
  }

  /** Signs with the code-signing key; null when no plugin provides one. */
  codeSigner(): CodeSignFunction | null {
    return this.#codeSign ?? null;
  }
}

/**
 * Grants: every privileged request the engine relays to an agent (open a shell, read or
 * write a file, control a service, end a process, refresh a snapshot) carries a small
 * JSON document signed with the engine's code-signing key — the key agents pinned at
 * enrollment and already use to check scripts. The agent acts only on a grant that
 * verifies under that key, names its own GUID, has not expired and was not seen before.
 * So a frame that reached the agent's socket any other way (a row written into the
 * held-message table, a bug in another plugin) cannot open a shell.
 *
 * The signature covers `borealis-grant-v1\n` followed by the grant's exact JSON text;
 * the prefix keeps a grant from ever being the bytes of something else the same key
 * signs for another purpose.
 *
 * @module
 */
import { GRANT_PREFIX, type GrantPurpose } from "../../agent/terminal/grant.ts";
import { HttpError } from "../../core/errors.ts";
import type { CodeSignFunction } from "../tokens/mod.ts";

export { GRANT_PREFIX, type GrantPurpose };

/** The fields every grant has; purposes add their own. */
export interface GrantBase {
  v: 1;
  purpose: GrantPurpose;
  /** Session, transfer or action id (the agent refuses an id it has seen). */
  id: string;
  /** The device (upper case). */
  guid: string;
  /** The operator's name, for the agent's local notice and log. */
  operator: string;
  /** The engine instance the agent addresses its answers to. */
  via: string;
  /** Issued and expiry times, Unix seconds. */
  iat: number;
  exp: number;
}

/** How long a grant may wait to be used. */
export const GRANT_TTL_SECONDS = 120;

/** A signed grant as it travels in a frame's data. */
export interface SignedGrant {
  grant: string;
  signature: string;
}

/** Signs grants; null signer (no code-signing key in this configuration) refuses. */
export class GrantSigner {
  constructor(private readonly signer: () => CodeSignFunction | null) {}

  /** Signs `fields` as a grant issued now. */
  async sign<T extends Record<string, unknown>>(
    nowMs: number,
    base: Omit<GrantBase, "v" | "iat" | "exp">,
    fields: T,
  ): Promise<SignedGrant> {
    const sign = this.signer();
    if (!sign) {
      throw new HttpError(
        503,
        "signing_unavailable",
        "no code-signing key is available (the scheduler plugin is not loaded)",
      );
    }
    const iat = Math.floor(nowMs / 1000);
    const grant = JSON.stringify({ ...fields, ...base, v: 1, iat, exp: iat + GRANT_TTL_SECONDS });
    const bytes = new TextEncoder().encode(GRANT_PREFIX + grant);
    const { signature } = await sign(bytes);
    return { grant, signature };
  }
}

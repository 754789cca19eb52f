/**
 * The agent's side of grants (see docs/terminal.md, "Grants"): a terminal session, a file
 * transfer or a device action starts only from a grant signed by the engine's
 * code-signing key — the key pinned at enrollment, never one sent along — that names
 * this device, is within its validity (a few minutes of clock skew allowed) and was not
 * used before. The engine's signer lives in plugins/terminal/grant.ts.
 *
 * @module
 */
import { unb64 } from "../protocol/client.ts";

/** Prepended to the grant text before signing and verifying. */
export const GRANT_PREFIX = "borealis-grant-v1\n";

/** What a grant authorises. */
export type GrantPurpose = "terminal" | "file_download" | "file_upload" | "device_action";

/** Fields every grant carries. */
export interface Grant {
  v: 1;
  purpose: GrantPurpose;
  id: string;
  guid: string;
  operator: string;
  via: string;
  iat: number;
  exp: number;
  [key: string]: unknown;
}

/** A refused grant; `code` goes back to the engine. */
export class GrantError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "GrantError";
  }
}

/** Options of {@link GrantVerifier}. */
export interface GrantVerifierOptions {
  /** Pinned base64 SPKI of the engine's code-signing key. */
  signingKey: string;
  /** This device's GUID. */
  guid: () => string | undefined;
  /** Wall clock (ms); tests pass their own. */
  now?: () => number;
  /** Clock difference tolerated between engine and agent (seconds, default 300). */
  skewSeconds?: number;
}

/** Verifies grants and remembers the ids it accepted until they expire. */
export class GrantVerifier {
  #key?: Promise<CryptoKey>;
  readonly #seen = new Map<string, number>();

  constructor(private readonly o: GrantVerifierOptions) {}

  #importKey(): Promise<CryptoKey> {
    this.#key ??= crypto.subtle.importKey(
      "spki",
      unb64(this.o.signingKey) as BufferSource,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return this.#key;
  }

  /** Checks `data` (`{grant, signature}`) for `purpose`; returns the grant or throws a GrantError. */
  async verify(data: unknown, purpose: GrantPurpose): Promise<Grant> {
    if (!this.o.signingKey) {
      throw new GrantError("no_signing_key", "no engine signing key is pinned: refused");
    }
    const d = data as { grant?: unknown; signature?: unknown } | null;
    if (typeof d?.grant !== "string" || typeof d.signature !== "string") {
      throw new GrantError("grant_missing", "the request carries no signed grant");
    }
    let ok = false;
    try {
      ok = await crypto.subtle.verify(
        { name: "Ed25519" },
        await this.#importKey(),
        unb64(d.signature) as BufferSource,
        new TextEncoder().encode(GRANT_PREFIX + d.grant),
      );
    } catch {
      ok = false;
    }
    if (!ok) throw new GrantError("grant_invalid", "the grant's signature does not verify");
    let g: Grant;
    try {
      g = JSON.parse(d.grant);
    } catch {
      throw new GrantError("grant_invalid", "the grant is not JSON");
    }
    if (g.v !== 1 || g.purpose !== purpose) {
      throw new GrantError("grant_invalid", `the grant is not for ${purpose}`);
    }
    const me = this.o.guid()?.toUpperCase();
    if (!me || String(g.guid).toUpperCase() !== me) {
      throw new GrantError("grant_wrong_device", "the grant names another device");
    }
    const now = Math.floor((this.o.now?.() ?? Date.now()) / 1000);
    const skew = this.o.skewSeconds ?? 300;
    if (typeof g.exp !== "number" || now > g.exp + skew || g.iat > now + skew) {
      throw new GrantError("grant_expired", "the grant has expired (or the clocks differ)");
    }
    for (const [id, exp] of this.#seen) if (exp + skew < now) this.#seen.delete(id);
    if (typeof g.id !== "string" || this.#seen.has(g.id)) {
      throw new GrantError("grant_replayed", "this grant was used before");
    }
    this.#seen.set(g.id, g.exp);
    return g;
  }
}

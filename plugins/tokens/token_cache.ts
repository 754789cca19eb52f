/**
 * Verified access tokens, so a token's signature is checked once rather than on every
 * request an agent makes with it for fifteen minutes. Keyed by the token's SHA-256
 * (its `ath`, which the proof check needs anyway), not by its text, so the cache holds
 * 43-character keys instead of kilobyte tokens. Bounded: at capacity the oldest entry
 * goes. A hit is still checked against the clock (`exp`, `nbf`), and every request
 * still reads the device row (status, `token_version`, key), so a hit never outlives a
 * revocation or a rekey; {@link VerifiedTokenCache.forgetDevice} drops a device's
 * entries as soon as the engine learns its tokens are void.
 *
 * @module
 */
import type { AccessClaims } from "./access.ts";

/** One verified token. */
export interface VerifiedToken {
  claims: AccessClaims;
  /** base64url(SHA-256(token)). */
  ath: string;
}

/** A bounded map of verified tokens by hash, indexed by device. */
export class VerifiedTokenCache {
  readonly #entries = new Map<string, VerifiedToken>();
  readonly #byDevice = new Map<string, string[]>();
  #hits = 0;
  #misses = 0;

  /** @param capacity most tokens held at once. */
  constructor(readonly capacity = 100_000) {}

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Lookups answered from the cache and lookups that were not (for metrics). */
  get stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  /**
   * The verified token with hash `ath`, if held and still within its validity at
   * `nowS` (seconds). An expired entry is dropped and reported as absent.
   */
  get(ath: string, nowS: number): VerifiedToken | undefined {
    const hit = this.#entries.get(ath);
    if (!hit) {
      this.#misses++;
      return undefined;
    }
    if (hit.claims.exp <= nowS) {
      this.#delete(ath, hit);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    return hit;
  }

  /** Holds a token that has just passed full verification. */
  set(entry: VerifiedToken): void {
    if (this.#entries.has(entry.ath)) return;
    while (this.#entries.size >= this.capacity) {
      // Map iteration is insertion order: the first entry is the oldest.
      const [oldest, value] = this.#entries.entries().next().value!;
      this.#delete(oldest, value);
    }
    this.#entries.set(entry.ath, entry);
    const guid = entry.claims.guid.toUpperCase();
    const list = this.#byDevice.get(guid);
    if (list) list.push(entry.ath);
    else this.#byDevice.set(guid, [entry.ath]);
  }

  /** Drops every token of a device (revoked, rekeyed, token version moved on). */
  forgetDevice(guid: string): void {
    const key = guid.toUpperCase();
    const list = this.#byDevice.get(key);
    if (!list) return;
    this.#byDevice.delete(key);
    for (const ath of list) this.#entries.delete(ath);
  }

  /** Drops everything (key rotation tests, shutdown). */
  clear(): void {
    this.#entries.clear();
    this.#byDevice.clear();
  }

  #delete(ath: string, entry: VerifiedToken): void {
    this.#entries.delete(ath);
    const guid = entry.claims.guid.toUpperCase();
    const list = this.#byDevice.get(guid);
    if (!list) return;
    const i = list.indexOf(ath);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) this.#byDevice.delete(guid);
  }
}

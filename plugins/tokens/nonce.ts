/**
 * Stateless DPoP server nonces (RFC 9449 §8): `base64url(issued-at ‖ HMAC)`, valid for a
 * window, under a secret every instance reads from the database.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { b64urlDecode, b64urlEncode, type NonceChecker } from "./dpop.ts";

/** Issues and checks nonces. */
export class NonceService implements NonceChecker {
  #key?: CryptoKey;

  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    readonly required: boolean,
    private readonly lifetimeMs = 300_000,
  ) {}

  async #hmacKey(): Promise<CryptoKey> {
    if (this.#key) return this.#key;
    const fresh = b64urlEncode(crypto.getRandomValues(new Uint8Array(32)));
    await this.sql`
      insert into dpop_nonce_secret (id, secret, created_at) values (1, ${fresh}, ${new Date(
      this.clock.now(),
    )})
      on conflict (id) do nothing`;
    const [row] = await this.sql<
      { secret: string }[]
    >`select secret from dpop_nonce_secret where id = 1`;
    this.#key = await crypto.subtle.importKey(
      "raw",
      b64urlDecode(row!.secret) as BufferSource,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return this.#key;
  }

  /** A fresh nonce for the `DPoP-Nonce` header. */
  async issue(): Promise<string> {
    const t = new Uint8Array(8);
    new DataView(t.buffer).setBigUint64(0, BigInt(Math.floor(this.clock.now())));
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await this.#hmacKey(), t));
    const out = new Uint8Array(24);
    out.set(t, 0);
    out.set(mac.subarray(0, 16), 8);
    return b64urlEncode(out);
  }

  async valid(nonce: string): Promise<boolean> {
    let raw: Uint8Array;
    try {
      raw = b64urlDecode(nonce);
    } catch {
      return false;
    }
    if (raw.length !== 24) return false;
    const t = raw.subarray(0, 8);
    const issued = Number(new DataView(t.buffer, t.byteOffset, 8).getBigUint64(0));
    const age = this.clock.now() - issued;
    if (age < -5_000 || age > this.lifetimeMs) return false;
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await this.#hmacKey(), t.slice()));
    let diff = 0;
    for (let i = 0; i < 16; i++) diff |= mac[i]! ^ raw[8 + i]!;
    return diff === 0;
  }
}

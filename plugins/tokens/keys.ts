/**
 * The engine's token signing keys: Ed25519, `kid` = the first 16 hex digits of
 * SHA-256(SPKI DER) (upstream §3.3), the private key sealed by the Aegis vault at rest.
 * Rotation retires the signing key but keeps it verifying until every token it signed
 * has expired. Instances pick up keys made by other instances from the database.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { Logger } from "../../core/log.ts";
import type { Vault } from "../aegis/mod.ts";
import { b64urlDecode, b64urlEncode } from "./dpop.ts";

interface KeyRow {
  kid: string;
  public_jwk: JsonWebKey;
  private_sealed: string;
  created_at: Date;
  retired_at: Date | null;
}

interface LoadedKey {
  kid: string;
  publicJwk: JsonWebKey;
  publicKey: CryptoKey;
  sealed: string;
  createdAt: number;
  retiredAt: number | null;
  privateKey?: CryptoKey;
}

const LOCK = 0x746f6b656e6b6579n; // "tokenkey"

async function hex16(bytes: ArrayBuffer): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The set of signing keys this engine knows. */
export class KeyRing {
  #keys = new Map<string, LoadedKey>();
  #lastReload = 0;

  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly vault: Vault,
    private readonly log: Logger,
    /** How long a retired key keeps verifying (access token lifetime plus skew), ms. */
    private readonly verifyGraceMs: number,
  ) {}

  /** Loads keys; creates the first one when there is none and the vault can seal. */
  async start(): Promise<void> {
    await this.reload();
    if (!this.#active() && this.vault.state() === "unlocked") await this.#create(false);
  }

  /** Re-reads keys from the database (rotations by other instances). */
  async reload(): Promise<void> {
    this.#lastReload = this.clock.now();
    const rows = await this.sql<KeyRow[]>`
      select kid, public_jwk, private_sealed, created_at, retired_at from engine_signing_keys`;
    for (const r of rows) {
      const have = this.#keys.get(r.kid);
      if (have) {
        have.retiredAt = r.retired_at?.getTime() ?? null;
        continue;
      }
      const publicKey = await crypto.subtle.importKey(
        "jwk",
        r.public_jwk,
        { name: "Ed25519" },
        true,
        [
          "verify",
        ],
      );
      this.#keys.set(r.kid, {
        kid: r.kid,
        publicJwk: r.public_jwk,
        publicKey,
        sealed: r.private_sealed,
        createdAt: r.created_at.getTime(),
        retiredAt: r.retired_at?.getTime() ?? null,
      });
    }
  }

  #active(): LoadedKey | undefined {
    let best: LoadedKey | undefined;
    for (const k of this.#keys.values()) {
      if (k.retiredAt === null && (!best || k.createdAt > best.createdAt)) best = k;
    }
    return best;
  }

  async #create(rotate: boolean): Promise<string> {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const spki = await crypto.subtle.exportKey("spki", pair.publicKey);
    const kid = await hex16(spki);
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
    const sealed = await this.vault.seal(b64urlEncode(pkcs8), {
      table: "engine_signing_keys",
      column: "private_sealed",
      row: kid,
    });
    const now = new Date(this.clock.now());
    await this.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOCK.toString()}::bigint)`;
      if (rotate) {
        await tx`update engine_signing_keys set retired_at = ${now} where retired_at is null`;
      } else {
        const [live] = await tx`select 1 from engine_signing_keys where retired_at is null`;
        if (live) return; // another instance made the first key meanwhile
      }
      await tx`
        insert into engine_signing_keys (kid, alg, public_jwk, private_sealed, created_at)
        values (${kid}, 'EdDSA', ${tx.json(publicJwk as never)}, ${sealed}, ${now})`;
    });
    await this.reload();
    this.log.info(`${rotate ? "rotated to" : "created"} engine signing key ${this.#active()?.kid}`);
    return this.#active()!.kid;
  }

  /** Makes a new signing key; the old one keeps verifying its tokens until they expire. */
  rotate(): Promise<string> {
    return this.#create(true);
  }

  /** The key to sign with now (unsealed on first use; needs the vault unlocked). */
  async signer(): Promise<{ kid: string; key: CryptoKey }> {
    if (this.clock.now() - this.#lastReload > 60_000) await this.reload();
    let k = this.#active();
    if (!k) {
      await this.#create(false);
      k = this.#active()!;
    }
    if (!k.privateKey) {
      const pkcs8 = await this.vault.open(k.sealed, {
        table: "engine_signing_keys",
        column: "private_sealed",
        row: k.kid,
      });
      k.privateKey = await crypto.subtle.importKey(
        "pkcs8",
        b64urlDecode(pkcs8) as BufferSource,
        {
          name: "Ed25519",
        },
        false,
        ["sign"],
      );
    }
    return { kid: k.kid, key: k.privateKey };
  }

  /** The public key for `kid` while it may still verify, else null. */
  async verifier(kid: string): Promise<CryptoKey | null> {
    let k = this.#keys.get(kid);
    if (!k && this.clock.now() - this.#lastReload > 2_000) {
      await this.reload();
      k = this.#keys.get(kid);
    }
    if (!k) return null;
    if (k.retiredAt !== null && this.clock.now() > k.retiredAt + this.verifyGraceMs) return null;
    return k.publicKey;
  }

  /**
   * The JWKS of keys that still verify. The keys carry no `alg`: an OKP Ed25519 key
   * verifies tokens whose header says `EdDSA` (what the engine writes) or RFC 9864's
   * `Ed25519`, and a JWK naming one of the two would make JOSE libraries refuse the other.
   */
  jwks(): { keys: Array<JsonWebKey & { kid: string; use: string }> } {
    const now = this.clock.now();
    return {
      keys: [...this.#keys.values()]
        .filter((k) => k.retiredAt === null || now <= k.retiredAt + this.verifyGraceMs)
        // The signing key first, then retired keys, newest first.
        .sort((a, b) =>
          Number(a.retiredAt !== null) - Number(b.retiredAt !== null) ||
          (b.retiredAt ?? 0) - (a.retiredAt ?? 0) || b.createdAt - a.createdAt
        )
        .map((k) => ({ ...k.publicJwk, kid: k.kid, use: "sig" })),
    };
  }
}

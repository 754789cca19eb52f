/**
 * The code-signing key: an Ed25519 pair separate from the token key. The private key is
 * sealed by Aegis in `scheduler_signing_keys`; the public key (base64 SPKI) is handed to
 * agents at enrollment, in `script/request` and on `GET /api/scripts/signing_key`.
 * Every dispatched script is signed over its exact UTF-8 bytes.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { Logger } from "../../core/log.ts";
import type { Vault } from "../aegis/mod.ts";

/** Advisory lock id serialising key creation across instances. */
const LOCK = 0x5c4ed51;

const b64 = (bytes: Uint8Array): string => {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
};
const unb64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

async function kidOf(spki: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", spki as BufferSource));
  return Array.from(d.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

interface KeyRow {
  kid: string;
  public_spki: string;
  private_sealed: string | null;
}

/** Signs scripts; one per engine instance, all instances share the key through the database. */
export class CodeSigner {
  #active?: { kid: string; spki: string; sealed: string; key?: CryptoKey };
  #creating?: Promise<void>;

  constructor(
    private readonly sql: Sql,
    private readonly vault: Vault,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Column registration for vault rotation and force-reset. */
  static sealedColumn() {
    return {
      table: "scheduler_signing_keys",
      column: "private_sealed",
      idColumn: "kid",
      // Without its private half the key is useless: retire it; a new one is made on next use.
      onReset: async (sql: Sql) => {
        await sql`update scheduler_signing_keys set private_sealed = null,
          retired_at = coalesce(retired_at, now()) where private_sealed is not null`;
      },
    };
  }

  async #load(): Promise<void> {
    const [row] = await this.sql<KeyRow[]>`
      select kid, public_spki, private_sealed from scheduler_signing_keys
      where retired_at is null and private_sealed is not null order by created_at desc limit 1`;
    if (row && row.kid !== this.#active?.kid) {
      this.#active = { kid: row.kid, spki: row.public_spki, sealed: row.private_sealed! };
    } else if (!row) this.#active = undefined;
  }

  async #create(): Promise<void> {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const kid = await kidOf(spki);
    const sealed = await this.vault.seal(b64(pkcs8), {
      table: "scheduler_signing_keys",
      column: "private_sealed",
      row: kid,
    });
    const now = new Date(this.clock.now());
    const made = await this.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOCK.toString()}::bigint)`;
      const [live] = await tx`
        select 1 from scheduler_signing_keys where retired_at is null and private_sealed is not null`;
      if (live) return false; // another instance won
      await tx`insert into scheduler_signing_keys (kid, public_spki, private_sealed, created_at)
        values (${kid}, ${b64(spki)}, ${sealed}, ${now})`;
      return true;
    });
    if (made) this.log.info(`created code-signing key ${kid}`);
  }

  /** Ensures a key exists (creating one needs the vault unlocked). */
  async ensure(): Promise<{ kid: string; spki: string }> {
    if (!this.#active) await this.#load();
    if (!this.#active) {
      this.#creating ??= this.#create().finally(() => (this.#creating = undefined));
      await this.#creating;
      await this.#load();
    }
    return { kid: this.#active!.kid, spki: this.#active!.spki };
  }

  /** The public key (base64 SPKI) or null when none exists and none can be made now. */
  async publicKey(): Promise<string | null> {
    try {
      return (await this.ensure()).spki;
    } catch {
      return null;
    }
  }

  /** Signs bytes: base64 Ed25519 signature and the key id. Needs the vault unlocked once. */
  async sign(bytes: Uint8Array): Promise<{ signature: string; kid: string; spki: string }> {
    await this.ensure();
    const k = this.#active!;
    if (!k.key) {
      const pkcs8 = await this.vault.open(k.sealed, {
        table: "scheduler_signing_keys",
        column: "private_sealed",
        row: k.kid,
      });
      k.key = await crypto.subtle.importKey(
        "pkcs8",
        unb64(pkcs8) as BufferSource,
        { name: "Ed25519" },
        false,
        ["sign"],
      );
    }
    const sig = new Uint8Array(
      await crypto.subtle.sign({ name: "Ed25519" }, k.key, bytes as BufferSource),
    );
    return { signature: b64(sig), kid: k.kid, spki: k.spki };
  }

  /** Forgets the cached key (after a vault reset). */
  reset(): void {
    this.#active = undefined;
  }
}

export { b64, unb64 };

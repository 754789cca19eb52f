/**
 * Refresh tokens: 256 random bits, stored only as SHA-256, bound to the agent's DPoP
 * key, rotated on every use. Presenting a token that was already rotated means two
 * parties hold it, so the whole family is revoked (RFC 9700 §4.14.2).
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { HttpError } from "../../core/errors.ts";
import { sha256Hex } from "../inventory/mod.ts";
import { b64urlEncode } from "./dpop.ts";

interface TokenRow {
  id: string;
  family_id: string;
  guid: string;
  dpop_jkt: string;
  expires_at: Date;
  absolute_expires_at: Date;
  rotated_at: Date | null;
  revoked_at: Date | null;
  revoke_reason: string | null;
}

const invalid = (code: string, message: string) =>
  new HttpError(401, code, message, undefined, {
    "WWW-Authenticate": `DPoP error="invalid_grant", error_description="${message}"`,
  });

const isUuid = (s: string) =>
  /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s);

/** Hash under which a refresh token is stored. */
export const hashRefreshToken = (token: string): Promise<string> =>
  sha256Hex(`borealis-refresh:${token}`);

/** Called when a family is revoked because a rotated token came back. */
export type ReuseListener = (info: { guid: string; family_id: string }) => Promise<void>;

/** Refresh token store. */
export class RefreshTokens {
  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly idleMs: number,
    private readonly absoluteMs: number,
    private readonly onReuse: ReuseListener,
  ) {}

  /** Starts a new family for a device (enrollment). Pass `tx` to write inside a transaction. */
  async issue(guid: string, jkt: string, tx: Sql = this.sql): Promise<string> {
    const token = b64urlEncode(crypto.getRandomValues(new Uint8Array(32)));
    const now = this.clock.now();
    await tx`
      insert into refresh_tokens (id, family_id, guid, token_hash, dpop_jkt, created_at, expires_at,
        absolute_expires_at)
      values (${crypto.randomUUID()}, ${crypto.randomUUID()}, ${guid}, ${await hashRefreshToken(
      token,
    )},
        ${jkt}, ${new Date(now)}, ${new Date(now + this.idleMs)}, ${new Date(
      now + this.absoluteMs,
    )})`;
    return token;
  }

  /**
   * Exchanges a token for its successor. `proofJkt` is the thumbprint of the key that
   * signed the request's DPoP proof; it must be the key the family is bound to.
   */
  async rotate(
    guid: string | undefined,
    token: string,
    proofJkt: string,
  ): Promise<{ guid: string; token: string }> {
    const sql = this.sql;
    const hash = await hashRefreshToken(token);
    const now = this.clock.now();
    const at = new Date(now);
    const next = b64urlEncode(crypto.getRandomValues(new Uint8Array(32)));
    const nextHash = await hashRefreshToken(next);
    // The common case in one statement: only the request that flips rotated_at of a live,
    // correctly bound token gets a successor. Anything else is diagnosed below.
    const [won] = await sql<{ guid: string }[]>`
      with old as (
        update refresh_tokens set rotated_at = ${at}, last_used_at = ${at}
        where token_hash = ${hash} and rotated_at is null and revoked_at is null
          and dpop_jkt = ${proofJkt} and expires_at > ${at} and absolute_expires_at > ${at}
          ${guid !== undefined && isUuid(guid) ? sql`and guid = ${guid}` : sql``}
        returning family_id, guid, dpop_jkt, absolute_expires_at)
      insert into refresh_tokens (id, family_id, guid, token_hash, dpop_jkt, created_at, expires_at,
        absolute_expires_at)
      select ${crypto.randomUUID()}, family_id, guid, ${nextHash}, dpop_jkt, ${at},
        least(${new Date(now + this.idleMs)}::timestamptz, absolute_expires_at), absolute_expires_at
      from old
      returning guid`;
    if (won) return { guid: won.guid, token: next };

    const [row] = await sql<TokenRow[]>`
      select id, family_id, guid, dpop_jkt, expires_at, absolute_expires_at, rotated_at, revoked_at,
             revoke_reason
      from refresh_tokens where token_hash = ${hash}`;
    if (!row || (guid !== undefined && row.guid.toLowerCase() !== guid.toLowerCase())) {
      throw invalid("invalid_refresh_token", "refresh token not recognised");
    }
    if (row.dpop_jkt !== proofJkt) {
      throw new HttpError(
        400,
        "invalid_dpop_proof",
        "the DPoP proof key is not the key this refresh token is bound to",
        undefined,
        {
          "WWW-Authenticate":
            `DPoP error="invalid_dpop_proof", error_description="proof key does not match the refresh token binding"`,
        },
      );
    }
    if (row.revoked_at) {
      // Revoked because the device was: tell the agent to stop rather than to enroll again
      // (the proof above showed it holds the bound key, so this reveals nothing new).
      if (row.revoke_reason === "device_revoked") {
        throw new HttpError(403, "device_revoked", "this device has been revoked");
      }
      throw invalid("refresh_token_revoked", "refresh token revoked");
    }
    if (row.rotated_at) {
      // Rotated already: either replayed by someone else or raced by a concurrent use.
      await this.#reused(row);
      throw invalid(
        "refresh_token_reused",
        "refresh token was already used; its family is revoked",
      );
    }
    if (row.expires_at.getTime() <= now || row.absolute_expires_at.getTime() <= now) {
      throw invalid("refresh_token_expired", "refresh token expired");
    }
    throw invalid("invalid_refresh_token", "refresh token not recognised");
  }

  async #reused(row: TokenRow): Promise<void> {
    await this.revokeFamily(row.family_id, "reuse_detected");
    await this.onReuse({ guid: row.guid.toUpperCase(), family_id: row.family_id });
  }

  /** Revokes one family. */
  async revokeFamily(familyId: string, reason: string): Promise<number> {
    const r = await this.sql`
      update refresh_tokens set revoked_at = ${new Date(
      this.clock.now(),
    )}, revoke_reason = ${reason}
      where family_id = ${familyId} and revoked_at is null`;
    return r.count;
  }

  /** Revokes every token of a device. Pass `tx` to write inside a transaction. */
  async revokeDevice(guid: string, reason: string, tx: Sql = this.sql): Promise<number> {
    const r = await tx`
      update refresh_tokens set revoked_at = ${new Date(
      this.clock.now(),
    )}, revoke_reason = ${reason}
      where guid = ${guid} and revoked_at is null`;
    return r.count;
  }

  /** Deletes tokens past their absolute expiry or revoked/rotated long ago (task). */
  async prune(keepMs = 7 * 86_400_000): Promise<number> {
    const now = this.clock.now();
    const r = await this.sql`
      delete from refresh_tokens
      where absolute_expires_at < ${new Date(now)}
         or (coalesce(revoked_at, rotated_at) is not null
             and coalesce(revoked_at, rotated_at) < ${new Date(now - keepMs)})`;
    return r.count;
  }
}

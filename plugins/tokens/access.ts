/**
 * Device access tokens: EdDSA JWTs (`typ: at+jwt`, RFC 9068) signed by the engine key
 * ring, bound to the agent's DPoP key through `cnf.jkt`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { Clock } from "../../core/clock.ts";
import type { KeyRing } from "./keys.ts";
import { type VerifiedToken, VerifiedTokenCache } from "./token_cache.ts";

/** Claims of a device access token. */
export interface AccessClaims {
  sub: string;
  guid: string;
  ssl_key_fingerprint: string;
  token_version: number;
  cnf: { jkt: string };
  iat: number;
  nbf: number;
  exp: number;
  iss: string;
  aud: string;
  jti: string;
}

/** A token that failed verification, with a reason safe to show. */
export class AccessTokenError extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
    this.name = "AccessTokenError";
  }
}

/** What a token is issued for. */
export interface TokenSubject {
  guid: string;
  ssl_key_fingerprint: string;
  token_version: number;
  jkt: string;
}

/** Issues and verifies access tokens. */
export class AccessTokens {
  /**
   * Verified tokens by hash: an agent presents the same token for its whole life, so
   * the signature is checked once; expiry is still checked on every use.
   */
  readonly verified: VerifiedTokenCache;

  constructor(
    private readonly keys: KeyRing,
    private readonly clock: Clock,
    readonly issuer: string,
    readonly audience: string,
    readonly ttlSeconds: number,
    cacheCapacity = 100_000,
  ) {
    this.verified = new VerifiedTokenCache(cacheCapacity);
  }

  /** Signs a token for a device. */
  async issue(s: TokenSubject): Promise<{ token: string; expiresIn: number }> {
    const { kid, key } = await this.keys.signer();
    const now = Math.floor(this.clock.now() / 1000);
    const guid = s.guid.toUpperCase();
    const token = await new SignJWT({
      guid,
      ssl_key_fingerprint: s.ssl_key_fingerprint,
      token_version: s.token_version,
      cnf: { jkt: s.jkt },
    })
      .setProtectedHeader({ alg: "EdDSA", kid, typ: "at+jwt" })
      .setSubject(`device:${guid}`)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + this.ttlSeconds)
      .setJti(crypto.randomUUID())
      .sign(key);
    return { token, expiresIn: this.ttlSeconds };
  }

  /**
   * Verifies a token, or finds it verified before (by its SHA-256), and returns its
   * claims and `ath`. A cached token is held to its `exp` and `nbf` like a fresh one.
   */
  async verifyCached(token: string): Promise<VerifiedToken> {
    const ath = createHash("sha256").update(token).digest("base64url");
    const nowS = this.clock.now() / 1000;
    const hit = this.verified.get(ath, nowS);
    if (hit) {
      if (hit.claims.nbf > nowS + 60) {
        throw new AccessTokenError("invalid_token", "access token not yet valid");
      }
      return hit;
    }
    const entry = { claims: await this.verify(token), ath };
    this.verified.set(entry);
    return entry;
  }

  /** Verifies signature, type, issuer, audience, time and claim shapes. */
  async verify(token: string): Promise<AccessClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, async (header) => {
        const key = typeof header.kid === "string" ? await this.keys.verifier(header.kid) : null;
        if (!key) throw new AccessTokenError("unknown_key", "token signed by an unknown key");
        return key;
      }, {
        // The engine signs with "EdDSA"; "Ed25519" (RFC 9864) names the same signature.
        algorithms: ["EdDSA", "Ed25519"],
        typ: "at+jwt",
        issuer: this.issuer,
        audience: this.audience,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ["sub", "iat", "nbf", "exp", "jti"],
      }));
    } catch (err) {
      if (err instanceof AccessTokenError) throw err;
      if (err instanceof joseErrors.JWTExpired) {
        throw new AccessTokenError("token_expired", "access token expired");
      }
      throw new AccessTokenError("invalid_token", "access token is not valid");
    }
    const p = payload as Partial<AccessClaims>;
    const cnf = p.cnf as { jkt?: unknown } | undefined;
    if (
      typeof p.guid !== "string" || p.sub !== `device:${p.guid}` ||
      typeof p.ssl_key_fingerprint !== "string" || typeof p.token_version !== "number" ||
      !(p.token_version > 0) || typeof cnf?.jkt !== "string"
    ) {
      throw new AccessTokenError("invalid_claims", "access token claims are incomplete");
    }
    return p as AccessClaims;
  }
}

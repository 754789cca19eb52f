/**
 * Device authentication for agent routes: `Authorization: DPoP <access token>` plus a
 * `DPoP` proof passing every RFC 9449 §4.3 check, then the device row (status,
 * `token_version`, key fingerprint) read fresh on every request, batched, so a
 * containment action takes effect on the very next request on every instance.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Authenticator, Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import { HttpError } from "../../core/errors.ts";
import type { AppEnv } from "../../core/http.ts";
import type { DeviceIdentityRow, DeviceStatus } from "../inventory/mod.ts";
import { type AccessClaims, AccessTokenError, type AccessTokens } from "./access.ts";
import { Batcher } from "../../core/batcher.ts";
import {
  DPOP_ALGS,
  type DpopDeps,
  DpopError,
  isEd25519Alg,
  type ReplayCache,
  type VerifiedProof,
  verifyDpopProof,
} from "./dpop.ts";
import type { NonceService } from "./nonce.ts";
import type { RateLimiter } from "./rate_limit.ts";

/** The device behind an authenticated request. */
export interface DeviceIdentity {
  guid: string;
  hostname: string;
  site_id: number | null;
  status: DeviceStatus;
  token_version: number;
  ssl_key_fingerprint: string;
  claims: AccessClaims;
  proof: VerifiedProof;
}

type DeviceRow = DeviceIdentityRow;

/** Options of a device guard. */
export interface DeviceGuardOptions {
  /** Quarantined devices may call this route (default false: 403 device_quarantined). */
  allowQuarantined?: boolean;
}

const ALGS = DPOP_ALGS.join(" ");

/** A 401 with the RFC 9449 §7.1 challenge. */
export function dpopChallenge(
  error: "invalid_token" | "invalid_dpop_proof" | "use_dpop_nonce" | null,
  description: string,
  extraHeaders: Record<string, string> = {},
  status = 401,
): HttpError {
  const safe = description.replace(/["\\]/g, "");
  const challenge = error
    ? `DPoP error="${error}", error_description="${safe}", algs="${ALGS}"`
    : `DPoP algs="${ALGS}"`;
  return new HttpError(status, error ?? "unauthorized", description, undefined, {
    "WWW-Authenticate": challenge,
    ...extraHeaders,
  });
}

/** Options of {@link DeviceAuth}. */
export interface DeviceAuthOptions {
  /** The inventory's batched identity lookup. */
  identities: (guids: readonly string[]) => Promise<DeviceIdentityRow[]>;
  clock: Clock;
  access: AccessTokens;
  replay: ReplayCache;
  nonce: NonceService;
  maxSkewSeconds: number;
  limiter: RateLimiter;
  publicBaseUrl?: string;
}

/** Verifies device credentials on requests. */
export class DeviceAuth {
  readonly #o: DeviceAuthOptions;
  readonly #identities = new WeakMap<Request, DeviceIdentity>();
  readonly #devices: Batcher<string, DeviceRow | undefined>;
  readonly #deps: DpopDeps;

  constructor(o: DeviceAuthOptions) {
    this.#o = o;
    // One object for every request's proof check (nothing here varies per request).
    this.#deps = {
      now: () => o.clock.now(),
      replay: o.replay,
      nonce: o.nonce,
      maxSkewSeconds: o.maxSkewSeconds,
    };
    this.#devices = new Batcher(
      async (guids) => {
        const rows = await o.identities(guids);
        const byGuid = new Map(rows.map((r) => [r.guid.toLowerCase(), r]));
        return guids.map((g) => byGuid.get(g.toLowerCase()));
      },
      1000,
      3,
    );
  }

  /** The device's identity columns, read through the batched lookup. */
  deviceState(
    guid: string,
  ): Promise<
    {
      guid: string;
      hostname: string;
      site_id: number | null;
      status: DeviceStatus;
      token_version: number;
      ssl_key_fingerprint: string | null;
    } | undefined
  > {
    return this.#devices.add(guid.toLowerCase());
  }

  /** The URI a proof's `htu` must name: the public base URL when configured, else the request's. */
  requestUri(c: Context<AppEnv>): string {
    const base = this.#o.publicBaseUrl;
    if (base) return base.replace(/\/+$/, "") + c.req.path;
    return c.req.url;
  }

  /** The `DPoP` header values of a request. */
  static proofHeaders(c: Context<AppEnv>): string[] {
    const v = c.req.raw.headers.get("dpop");
    return v === null ? [] : [v];
  }

  /** Verifies a proof for a request without an access token (enrollment, refresh). */
  async verifyProof(c: Context<AppEnv>, status = 400): Promise<VerifiedProof> {
    try {
      return await verifyDpopProof({
        headers: DeviceAuth.proofHeaders(c),
        method: c.req.method,
        url: this.requestUri(c),
      }, this.#deps);
    } catch (err) {
      throw await this.#proofError(err, status);
    }
  }

  async #proofError(err: unknown, status: number): Promise<HttpError> {
    if (err instanceof DpopError) {
      const extra: Record<string, string> = err.code === "use_dpop_nonce"
        ? { "DPoP-Nonce": await this.#o.nonce.issue() }
        : {};
      return dpopChallenge(err.code, err.message, extra, status);
    }
    throw err;
  }

  /** The device identity of an authenticated request (after the guard ran). */
  identity(c: Context<AppEnv>): DeviceIdentity {
    const id = this.#identities.get(c.req.raw);
    if (!id) throw dpopChallenge(null, "device authentication required");
    return id;
  }

  /**
   * Authenticates the request as a device. Throws 401 (with `WWW-Authenticate: DPoP`),
   * 403 (revoked / quarantined) or 429 (per-device rate limit).
   */
  async authenticate(c: Context<AppEnv>, opts: DeviceGuardOptions = {}): Promise<DeviceIdentity> {
    const known = this.#identities.get(c.req.raw);
    if (known) return this.#admit(known, opts);
    const auth = c.req.raw.headers.get("authorization");
    if (!auth) throw dpopChallenge(null, "device authentication required");
    const space = auth.indexOf(" ");
    const scheme = (space > 0 ? auth.slice(0, space) : auth).toLowerCase();
    const token = space > 0 ? auth.slice(space + 1).trim() : "";
    if (scheme === "bearer") {
      // RFC 9449 §7.2: a DPoP-bound token must never be accepted as a bearer token.
      throw dpopChallenge(
        "invalid_token",
        "DPoP-bound access tokens must use the DPoP scheme, not Bearer",
      );
    }
    if (scheme !== "dpop" || !token || token.length > 4096) {
      throw dpopChallenge("invalid_token", "Authorization must be: DPoP <access token>");
    }
    let claims: AccessClaims;
    let ath: string;
    try {
      ({ claims, ath } = await this.#o.access.verifyCached(token));
    } catch (err) {
      if (err instanceof AccessTokenError) throw dpopChallenge("invalid_token", err.message);
      throw err;
    }
    // Read the device while the proof is checked.
    const deviceP = this.#devices.add(claims.guid.toLowerCase());
    deviceP.catch(() => {});
    let proof: VerifiedProof;
    try {
      proof = await verifyDpopProof({
        headers: DeviceAuth.proofHeaders(c),
        method: c.req.method,
        url: this.requestUri(c),
        accessToken: token,
        accessTokenAth: ath,
        expectedJkt: claims.cnf.jkt,
      }, this.#deps);
    } catch (err) {
      throw await this.#proofError(err, 401);
    }
    const row = await deviceP;
    // The device row is the authority on every request: a verified token whose device
    // has gone, been rekeyed, revoked or moved to a new token version is dropped from
    // the cache as well as refused.
    if (
      !row || row.ssl_key_fingerprint !== claims.ssl_key_fingerprint ||
      row.token_version !== claims.token_version || row.status === "revoked" ||
      row.status === "decommissioned"
    ) {
      this.#o.access.verified.forgetDevice(claims.guid);
    }
    if (!row) throw dpopChallenge("invalid_token", "device not found");
    if (row.ssl_key_fingerprint !== claims.ssl_key_fingerprint) {
      throw dpopChallenge("invalid_token", "device key changed; re-enroll");
    }
    if (row.status === "revoked" || row.status === "decommissioned") {
      throw new HttpError(403, "device_revoked", "this device has been revoked");
    }
    if (row.token_version !== claims.token_version) {
      throw dpopChallenge("invalid_token", "token_version mismatch; refresh the access token");
    }
    const id: DeviceIdentity = {
      guid: row.guid.toUpperCase(),
      hostname: row.hostname,
      site_id: row.site_id,
      status: row.status,
      token_version: row.token_version,
      ssl_key_fingerprint: row.ssl_key_fingerprint,
      claims,
      proof,
    };
    this.#o.limiter.hit(`device:${id.guid}`);
    this.#identities.set(c.req.raw, id);
    const principal: Principal = {
      kind: "device",
      id: id.guid,
      name: id.hostname,
      sites: id.site_id === null ? [] : [id.site_id],
      method: "dpop",
      credentialId: claims.jti,
    };
    c.set("principal", principal);
    return this.#admit(id, opts);
  }

  #admit(id: DeviceIdentity, opts: DeviceGuardOptions): DeviceIdentity {
    if (id.status === "quarantined" && !opts.allowQuarantined) {
      throw new HttpError(403, "device_quarantined", "this device is quarantined");
    }
    return id;
  }

  /** Route guard: a device with a valid DPoP-bound token. */
  guard(opts: DeviceGuardOptions = {}): MiddlewareHandler<AppEnv> {
    const nonce = this.#o.nonce;
    return async (c, next) => {
      await this.authenticate(c, opts);
      await next();
      if (nonce.required) c.res.headers.set("DPoP-Nonce", await nonce.issue());
    };
  }

  /**
   * The kernel authenticator: recognises `Authorization: DPoP …` (and refuses our
   * device tokens sent as Bearer); everything else is left to other authenticators.
   */
  readonly authenticator: Authenticator = async (c) => {
    const auth = c.req.raw.headers.get("authorization");
    if (!auth) return null;
    const lower = auth.slice(0, 7).toLowerCase();
    if (lower.startsWith("dpop ")) {
      await this.authenticate(c, { allowQuarantined: true });
      return c.get("principal") ?? null;
    }
    if (lower === "bearer " && looksLikeDeviceToken(auth.slice(7).trim())) {
      throw dpopChallenge(
        "invalid_token",
        "DPoP-bound access tokens must use the DPoP scheme, not Bearer",
      );
    }
    return null;
  };
}

function looksLikeDeviceToken(token: string): boolean {
  const head = token.split(".")[0];
  if (!head) return false;
  try {
    const h = JSON.parse(atob(head.replace(/-/g, "+").replace(/_/g, "/")));
    return h?.typ === "at+jwt" && isEd25519Alg(h?.alg);
  } catch {
    return false;
  }
}

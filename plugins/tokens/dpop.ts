/**
 * DPoP proof verification (RFC 9449 §4.3), every check in the RFC's order, with the
 * clock, the replay cache and the nonce checker injected so tests can drive time and
 * replay deterministically. Any failure is a {@link DpopError}; nothing here throws
 * anything else for any input.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, createPublicKey, type KeyObject, verify as nodeVerify } from "node:crypto";
import { calculateJwkThumbprint } from "jose";

/** Why a proof was refused: `invalid_dpop_proof` or `use_dpop_nonce`. */
export class DpopError extends Error {
  constructor(readonly code: "invalid_dpop_proof" | "use_dpop_nonce", message: string) {
    super(message);
    this.name = "DpopError";
  }
}

/**
 * Signature algorithms accepted in proofs, preferred first (Ed25519 is ~12× cheaper).
 * `Ed25519` is RFC 9864's fully-specified name for what `EdDSA` means with an Ed25519
 * key; current clients (panva's `dpop`) send it, older ones send `EdDSA`.
 */
export const DPOP_ALGS = ["EdDSA", "Ed25519", "ES256"] as const;

/** True for the names of an Ed25519 signature. */
export const isEd25519Alg = (alg: unknown): boolean => alg === "EdDSA" || alg === "Ed25519";

/** Remembers proofs already used. */
export interface ReplayCache {
  /** True the first time `key` is claimed before `expiresAt` (ms); false on replay. */
  claim(key: string, expiresAt: number): Promise<boolean>;
}

/** Server nonces (RFC 9449 §8). */
export interface NonceChecker {
  /** Whether proofs must carry a nonce. */
  required: boolean;
  valid(nonce: string): Promise<boolean>;
}

/** What the request being checked looks like. */
export interface ProofTarget {
  /** The DPoP header values (0, 1 or more). */
  headers: string[];
  method: string;
  /** The request URI as the server knows it (query and fragment are ignored). */
  url: string;
  /** The access token presented with the proof, if any (→ `ath` required). */
  accessToken?: string;
  /** base64url(SHA-256(accessToken)) when the caller already knows it. */
  accessTokenAth?: string;
  /** The `cnf.jkt` the proof key must have, if any. */
  expectedJkt?: string;
}

/** Dependencies of {@link verifyDpopProof}. */
export interface DpopDeps {
  now(): number;
  replay: ReplayCache;
  nonce?: NonceChecker;
  /** Accepted |now − iat| in seconds (default 300). */
  maxSkewSeconds?: number;
}

/** A verified proof. */
export interface VerifiedProof {
  jkt: string;
  jti: string;
  iat: number;
  alg: string;
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Base64url → bytes (throws on bad input). */
export function b64urlDecode(s: string): Uint8Array {
  if (!B64URL.test(s) || s.length % 4 === 1) throw new Error("bad base64url");
  // Native decoding; the pattern above already refused anything outside the alphabet.
  return Buffer.from(s, "base64url");
}

const B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Whether `s` (already known to be base64url) is the one canonical encoding of its
 * bytes: the bits its last character carries beyond the last whole byte are zero.
 * Otherwise one signature could be written several ways.
 */
export function isCanonicalB64url(s: string): boolean {
  if (s.length % 4 === 1) return false;
  const spare = (s.length * 6) % 8;
  if (spare === 0) return true;
  return (B64URL_ALPHABET.indexOf(s[s.length - 1]!) & ((1 << spare) - 1)) === 0;
}

/** Bytes → base64url without padding. */
export function b64urlEncode(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** base64url(SHA-256(token)): the `ath` of an access token. */
export function accessTokenHash(token: string): Promise<string> {
  return Promise.resolve(createHash("sha256").update(token).digest("base64url"));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseJsonPart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(dec.decode(b64urlDecode(part)));
  } catch {
    throw new DpopError("invalid_dpop_proof", `DPoP proof ${what} is not base64url JSON`);
  }
  if (!isPlainObject(value)) {
    throw new DpopError("invalid_dpop_proof", `DPoP proof ${what} is not a JSON object`);
  }
  return value;
}

// Normalised URIs by their text: agents name the same few URIs in every proof, and a
// URL parse per request and side is measurable at thousands of requests a second.
// Bounded (proofs are attacker-chosen text): cleared when full.
const htuCache = new Map<string, string | null>();

/** Normalises a URI for `htu` comparison: scheme/host case, default port, no query/fragment. */
export function normalizeHtu(uri: string): string | null {
  const known = htuCache.get(uri);
  if (known !== undefined) return known;
  const normal = parseHtu(uri);
  if (htuCache.size >= 1024) htuCache.clear();
  htuCache.set(uri, normal);
  return normal;
}

function parseHtu(uri: string): string | null {
  try {
    const u = new URL(uri);
    if (
      u.protocol !== "https:" && u.protocol !== "http:" && u.protocol !== "wss:" &&
      u.protocol !== "ws:"
    ) {
      return null;
    }
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return null;
  }
}

// Imported proof keys by their public members: agents reuse one key, so import and
// thumbprint it once. node:crypto verifies synchronously, which is cheaper per request
// than a WebCrypto round trip.
const keyCache = new Map<string, { key: KeyObject; jkt: string }>();

async function importProofKey(
  alg: string,
  jwk: Record<string, unknown>,
): Promise<{ key: KeyObject; jkt: string }> {
  let publicJwk: Record<string, string>;
  if (isEd25519Alg(alg)) {
    if (
      jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || jwk.x.length !== 43
    ) {
      throw new DpopError("invalid_dpop_proof", "DPoP jwk is not an Ed25519 public key");
    }
    publicJwk = { kty: "OKP", crv: "Ed25519", x: jwk.x };
  } else {
    if (
      jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" ||
      typeof jwk.y !== "string" || jwk.x.length !== 43 || jwk.y.length !== 43
    ) {
      throw new DpopError("invalid_dpop_proof", "DPoP jwk is not a P-256 public key");
    }
    publicJwk = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  }
  const cacheKey = `${publicJwk.x}.${publicJwk.y ?? ""}`;
  const cached = keyCache.get(cacheKey);
  if (cached) return cached;
  if (!B64URL.test(publicJwk.x!) || (publicJwk.y !== undefined && !B64URL.test(publicJwk.y))) {
    throw new DpopError("invalid_dpop_proof", "DPoP jwk coordinates are not base64url");
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: publicJwk, format: "jwk" });
  } catch {
    throw new DpopError("invalid_dpop_proof", "DPoP jwk cannot be imported");
  }
  const entry = { key, jkt: await calculateJwkThumbprint(publicJwk, "sha256") };
  if (keyCache.size > 50_000) keyCache.clear();
  keyCache.set(cacheKey, entry);
  return entry;
}

/** A proof header that passed checks 3 (its fields), 4, 5 and 7, with its key imported. */
interface CheckedHeader {
  alg: string;
  key: KeyObject;
  jkt: string;
}

// Checked headers by their base64url text. Only headers that passed every check are
// held; bounded like the key cache (cleared when full).
const headerCache = new Map<string, CheckedHeader>();

async function checkHeader(part: string): Promise<CheckedHeader> {
  const bad = (m: string) => new DpopError("invalid_dpop_proof", m);
  const header = parseJsonPart(part, "header");
  // 3. Required header fields.
  for (const f of ["typ", "alg", "jwk"]) {
    if (!(f in header)) throw bad(`DPoP proof header lacks ${f}`);
  }
  // 4. typ.
  if (header.typ !== "dpop+jwt") throw bad("DPoP proof typ must be dpop+jwt");
  // 5. alg: asymmetric, not none, on the allow-list.
  const alg = header.alg;
  if (typeof alg !== "string" || !(DPOP_ALGS as readonly string[]).includes(alg)) {
    throw bad(`DPoP proof alg must be one of ${DPOP_ALGS.join(", ")}`);
  }
  if ("crit" in header) throw bad("DPoP proof crit header is not supported");
  // 7 (before 6, so a private key is never even imported). No private members.
  const jwk = header.jwk;
  if (!isPlainObject(jwk)) throw bad("DPoP proof jwk must be a JSON object");
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw bad("DPoP proof jwk holds private key members");
  const { key, jkt } = await importProofKey(alg, jwk);
  const checked = { alg, key, jkt };
  if (headerCache.size >= 50_000) headerCache.clear();
  headerCache.set(part, checked);
  return checked;
}

/**
 * Verifies one DPoP proof for one request. Checks, in RFC 9449 §4.3 order: one header;
 * compact JWS; required fields; `typ`; `alg` on the allow-list; signature under `jwk`;
 * no private members in `jwk`; `htm`; `htu`; `nonce`; `iat` window; `ath` and `cnf.jkt`;
 * then the `jti` replay cache (last, so refused proofs never fill it).
 */
export async function verifyDpopProof(t: ProofTarget, deps: DpopDeps): Promise<VerifiedProof> {
  const bad = (m: string) => new DpopError("invalid_dpop_proof", m);
  // 1. Exactly one header. Fetch joins repeated headers with ", "; a JWS has no comma.
  if (t.headers.length === 0 || (t.headers.length === 1 && t.headers[0]!.trim() === "")) {
    throw bad("DPoP proof missing");
  }
  if (t.headers.length > 1 || t.headers[0]!.includes(",")) throw bad("more than one DPoP header");
  const proof = t.headers[0]!;
  if (proof.length > 8192) throw bad("DPoP proof too large");
  // 2. One compact JWS.
  const parts = proof.split(".");
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) {
    throw bad("DPoP proof is not a compact JWS");
  }
  // The header is the same in every proof an agent sends (typ, alg, its public key):
  // checked, imported and thumbprinted once, then found by its exact text.
  const head = headerCache.get(parts[0]!) ?? await checkHeader(parts[0]!);
  const claims = parseJsonPart(parts[1]!, "payload");
  // 3. Required claims (the header's fields were checked with it).
  for (const f of ["jti", "htm", "htu", "iat"]) {
    if (!(f in claims)) throw bad(`DPoP proof lacks claim ${f}`);
  }
  const { alg, key, jkt } = head;
  // 6. Signature under that jwk, in its one canonical encoding (otherwise unused
  // trailing bits make one signature writable several ways).
  const sigText = parts[2]!;
  if (!isCanonicalB64url(sigText)) throw bad("DPoP proof signature is not canonical base64url");
  const sig = b64urlDecode(sigText);
  const signed = enc.encode(proof.slice(0, proof.length - sigText.length - 1));
  let ok = false;
  try {
    ok = isEd25519Alg(alg)
      ? nodeVerify(null, signed, key, sig)
      : nodeVerify("sha256", signed, { key, dsaEncoding: "ieee-p1363" }, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw bad("DPoP proof signature does not verify");
  // Claim types.
  const { jti, htm, htu, iat } = claims;
  if (typeof jti !== "string" || jti.length < 8 || jti.length > 256) {
    throw bad("DPoP proof jti must be a string of 8-256 characters");
  }
  if (typeof htm !== "string") throw bad("DPoP proof htm must be a string");
  if (typeof htu !== "string") throw bad("DPoP proof htu must be a string");
  if (typeof iat !== "number" || !Number.isFinite(iat)) {
    throw bad("DPoP proof iat must be a number");
  }
  // 8. htm.
  if (htm !== t.method.toUpperCase()) throw bad("DPoP proof htm does not match the request method");
  // 9. htu.
  const want = normalizeHtu(t.url);
  if (!want || normalizeHtu(htu) !== want) {
    throw bad("DPoP proof htu does not match the request URI");
  }
  // 10. nonce.
  if (deps.nonce?.required) {
    if (typeof claims.nonce !== "string" || !(await deps.nonce.valid(claims.nonce))) {
      throw new DpopError("use_dpop_nonce", "DPoP proof must carry the server's current nonce");
    }
  } else if ("nonce" in claims && typeof claims.nonce !== "string") {
    throw bad("DPoP proof nonce must be a string");
  }
  // 11. iat window.
  const skew = deps.maxSkewSeconds ?? 300;
  const now = deps.now() / 1000;
  if (Math.abs(now - iat) > skew) throw bad("DPoP proof iat is outside the accepted window");
  // 12. ath and key binding.
  if (t.accessToken !== undefined) {
    if (typeof claims.ath !== "string") throw bad("DPoP proof lacks ath for the access token");
    if (claims.ath !== (t.accessTokenAth ?? await accessTokenHash(t.accessToken))) {
      throw bad("DPoP proof ath does not match the access token");
    }
  }
  if (t.expectedJkt !== undefined && jkt !== t.expectedJkt) {
    throw bad("DPoP proof key does not match the token's cnf.jkt");
  }
  // Replay, per key and jti, for as long as the proof could pass the iat check.
  if (!(await deps.replay.claim(`${jkt}:${jti}`, (iat + skew + 1) * 1000))) {
    throw bad("DPoP proof replayed");
  }
  return { jkt, jti, iat, alg };
}

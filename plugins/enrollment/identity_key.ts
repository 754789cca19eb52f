/**
 * Agent identity keys: Ed25519 public keys sent as SPKI DER in base64 (upstream §3.1).
 *
 * @module
 */
import { calculateJwkThumbprint } from "jose";
import { sha256Hex } from "../inventory/mod.ts";
import { b64urlEncode } from "../tokens/mod.ts";

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the key's 32 bytes follow. */
const ED25519_SPKI_PREFIX = [
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
];

/** Decodes standard or URL-safe base64, tolerating whitespace and missing padding. */
export function decodeBase64Loose(text: string): Uint8Array | null {
  const s = text.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(s) || s.length % 4 === 1) return null;
  try {
    const bin = atob(s + "===".slice((s.length + 3) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/** A parsed agent identity key. */
export interface AgentKey {
  der: Uint8Array;
  key: CryptoKey;
  /** Lower-case hex SHA-256 of the DER (upstream's fingerprint). */
  fingerprint: string;
  /** RFC 7638 thumbprint of the key as a JWK (its DPoP `jkt`). */
  jkt: string;
}

/** Parses SPKI DER bytes as an Ed25519 key; null when it is not one. */
export async function parseAgentKey(der: Uint8Array): Promise<AgentKey | null> {
  if (der.length !== 44 || ED25519_SPKI_PREFIX.some((b, i) => der[i] !== b)) return null;
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("spki", der as BufferSource, { name: "Ed25519" }, true, [
      "verify",
    ]);
  } catch {
    return null;
  }
  const x = b64urlEncode(der.subarray(12));
  return {
    der,
    key,
    fingerprint: await sha256Hex(der),
    jkt: await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x }, "sha256"),
  };
}

/** The bytes an agent signs to prove key possession: server_nonce ‖ reference ‖ client_nonce. */
export function proofInput(
  serverNonce: Uint8Array,
  reference: string,
  clientNonce: Uint8Array,
): Uint8Array {
  const ref = new TextEncoder().encode(reference);
  const out = new Uint8Array(serverNonce.length + ref.length + clientNonce.length);
  out.set(serverNonce, 0);
  out.set(ref, serverNonce.length);
  out.set(clientNonce, serverNonce.length + ref.length);
  return out;
}

/**
 * The vault's primitives: scrypt key derivation and AES-256-GCM with associated data.
 * Pure functions over bytes; the vault decides which key seals what.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from "node:crypto";

/** scrypt parameters, stored with every derived key so they can be raised later. */
export interface KdfParams {
  N: number;
  r: number;
  p: number;
  keylen: number;
  salt_b64: string;
}

/** The parameters new keys are derived with (N = 2^15, r = 8, p = 1, 32-byte key). */
export const DEFAULT_KDF = { N: 1 << 15, r: 8, p: 1, keylen: 32 } as const;

/** Derives a key from a secret with scrypt. */
export function deriveKey(secret: string | Uint8Array, params: KdfParams): Promise<Uint8Array> {
  const salt = Buffer.from(params.salt_b64, "base64");
  // scrypt needs 128·N·r bytes; node's default maxmem (32 MiB) is exactly N=2^15,r=8.
  const maxmem = 256 * params.N * params.r + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(
      typeof secret === "string" ? secret.normalize("NFKC") : secret,
      salt,
      params.keylen,
      { N: params.N, r: params.r, p: params.p, maxmem },
      (err, key) => err ? reject(err) : resolve(new Uint8Array(key)),
    );
  });
}

/** Fresh parameters with a random 16-byte salt. */
export function freshKdfParams(): KdfParams {
  return { ...DEFAULT_KDF, salt_b64: randomBytes(16).toString("base64") };
}

/** AES-256-GCM: returns nonce(12) ‖ ciphertext ‖ tag(16). */
export function encrypt(key: Uint8Array, plaintext: Uint8Array, aad: string): Uint8Array {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]));
}

/** Opens {@link encrypt}'s output; throws when the key, data or associated data differ. */
export function decrypt(key: Uint8Array, sealed: Uint8Array, aad: string): Uint8Array {
  if (sealed.length < 12 + 16) throw new Error("sealed value too short");
  const nonce = sealed.subarray(0, 12);
  const tag = sealed.subarray(sealed.length - 16);
  const body = sealed.subarray(12, sealed.length - 16);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(Buffer.from(aad, "utf8"));
  decipher.setAuthTag(tag);
  return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
}

/**
 * Site enrollment codes: 128 random bits written as 32 upper-case hex digits in eight
 * dash-separated groups of four (typable, read-aloud friendly, upstream's shape). They are
 * high-entropy secrets, so they are stored and looked up as a plain SHA-256 hash — a
 * password KDF would only turn every enrollment into a CPU denial-of-service lever.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";

const encoder = new TextEncoder();

/** Hex of a byte array. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** SHA-256 hex of a UTF-8 string or bytes. */
export async function sha256Hex(input: string | Uint8Array): Promise<string> {
  const data = typeof input === "string" ? encoder.encode(input) : input;
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource)));
}

/** A fresh code, e.g. `3F9A-0C1B-…` (8 groups of 4 hex digits, 128 bits). */
export function generateEnrollmentCode(): string {
  const hex = toHex(crypto.getRandomValues(new Uint8Array(16))).toUpperCase();
  return hex.match(/.{4}/g)!.join("-");
}

/**
 * The canonical form codes are hashed in: upper case with separators and whitespace
 * removed, so `3f9a 0c1b…` and `3F9A-0C1B-…` are the same code.
 */
export function normalizeEnrollmentCode(code: string): string {
  return code.replace(/[\s-]+/g, "").toUpperCase();
}

/** The lookup hash of a code (hex SHA-256 of its canonical form). */
export function hashEnrollmentCode(code: string): Promise<string> {
  return sha256Hex(`borealis-enrollment-code:${normalizeEnrollmentCode(code)}`);
}

/** Constant-time comparison of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(encoder.encode(a), encoder.encode(b));
}

/** What may be stored or logged about a wrong code: first 3 + `***` + last 3. */
export function maskEnrollmentCode(code: string): string {
  const c = code.trim();
  if (c.length <= 6) return "***";
  return `${c.slice(0, 3)}***${c.slice(-3)}`;
}

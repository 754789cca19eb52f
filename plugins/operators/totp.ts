/**
 * TOTP (RFC 6238) via `otpauth`: 6 digits, 30-second steps, SHA-1 (what authenticator
 * apps support), ±1 step of drift. {@link matchStep} returns the step a code belongs to
 * so the caller can refuse a step already used.
 *
 * @module
 */
import * as OTPAuth from "otpauth";

const PERIOD = 30;

function totp(secret: string, issuer = "Borealis", label = "operator"): OTPAuth.TOTP {
  return new OTPAuth.TOTP({
    issuer,
    label,
    algorithm: "SHA1",
    digits: 6,
    period: PERIOD,
    secret: OTPAuth.Secret.fromBase32(secret),
  });
}

/** A fresh 160-bit secret in base32. */
export function newTotpSecret(): string {
  return new OTPAuth.Secret({ size: 20 }).base32;
}

/** The `otpauth://` URL authenticator apps import. */
export function otpauthUrl(secret: string, issuer: string, username: string): string {
  return totp(secret, issuer, username).toString();
}

/** The time step of `nowMs`. */
export function stepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / PERIOD);
}

/** The step `code` is valid for (within ±1 of now), or null. */
export function matchStep(secret: string, code: string, nowMs: number): number | null {
  const delta = totp(secret).validate({ token: code, timestamp: nowMs, window: 1 });
  return delta === null ? null : stepAt(nowMs) + delta;
}

/** The code for `nowMs` (tests and the CLI). */
export function codeAt(secret: string, nowMs: number): string {
  return totp(secret).generate({ timestamp: nowMs });
}

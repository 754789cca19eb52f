/**
 * Signatures of generic webhook messages: HMAC-SHA256 with the channel's secret over
 * `<timestamp>.<body>`, sent as `X-Borealis-Signature: v1=<hex>` next to
 * `X-Borealis-Timestamp: <unix seconds>`. Signing the timestamp with the body lets a
 * receiver refuse replays of an old message; `v1=` leaves room for a second scheme
 * during a change. docs/alerts.md shows the same check for receivers.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Header names. */
export const SIGNATURE_HEADER = "X-Borealis-Signature";
export const TIMESTAMP_HEADER = "X-Borealis-Timestamp";

/** A new signing secret: 32 random bytes, base64url, with a recognisable prefix. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}

/** The signature header value of `body` sent at `timestamp` (unix seconds). */
export function sign(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/**
 * Checks a received message: a `v1=` signature of `<timestamp>.<body>` that matches, and
 * a timestamp within `toleranceSeconds` of `now` (unix seconds).
 */
export function verify(
  secret: string,
  header: string | null,
  timestamp: string | null,
  body: string,
  now: number,
  toleranceSeconds = 300,
): boolean {
  if (!header || !timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(now - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, Number(timestamp), body));
  // A header may carry several signatures (during a secret change): any may match.
  return header.split(",").some((part) => {
    const got = Buffer.from(part.trim());
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

/**
 * Optional breached-password check (ASVS 6.2.12) through a Pwned Passwords style range
 * API with k-anonymity: the engine sends only the first five hex digits of the
 * password's SHA-1 and compares the returned suffixes itself, so neither the password
 * nor its full hash leaves the server. `Add-Padding: true` asks the service to pad
 * answers so their size does not hint at the prefix either.
 *
 * Off unless `BOREALIS_PASSWORD_BREACH_API` names the service (for example
 * `https://api.pwnedpasswords.com/range/`): many RMM servers sit on networks without
 * outbound access, and the shipped list of common passwords already applies offline.
 * When the service cannot be reached within the timeout the password is accepted and a
 * warning is logged (without the password or its hash): an outage of a third party must
 * not stop an operator from changing a password.
 *
 * @module
 */
import { badRequest, type HttpError } from "../../core/errors.ts";

/** Looks a password up in a breach corpus. */
export interface BreachChecker {
  /** The rule the password breaks (found in breaches), or null (not found or unknown). */
  problem(password: string): Promise<HttpError | null>;
}

/** What a {@link rangeApiChecker} reports when it could not answer. */
export type BreachWarn = (message: string, fields: Record<string, unknown>) => void;

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
}

/** How many times `suffix` appears in a range answer (`SUFFIX:COUNT` lines). */
export function countInRange(body: string, suffix: string): number {
  for (const line of body.split("\n")) {
    const colon = line.indexOf(":");
    if (colon !== 35) continue; // 35 hex digits, then the count
    if (line.slice(0, 35).toUpperCase() !== suffix) continue;
    const n = Number.parseInt(line.slice(36).trim(), 10);
    // Padding entries carry a count of 0 and are not breaches.
    return Number.isFinite(n) && n > 0 ? n : 0;
  }
  return 0;
}

/** A checker for a range API at `base` (the prefix is appended to it). */
export function rangeApiChecker(
  base: string,
  opts: { timeoutMs?: number; warn: BreachWarn; fetch?: typeof fetch },
): BreachChecker {
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 3_000;
  const root = base.endsWith("/") ? base : base + "/";
  return {
    async problem(password) {
      const hash = await sha1Hex(password);
      const prefix = hash.slice(0, 5);
      let body: string;
      try {
        const res = await doFetch(root + prefix, {
          headers: { "add-padding": "true", "user-agent": "borealis-engine" },
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!res.ok) {
          await res.body?.cancel();
          opts.warn("breached-password service answered with an error; password accepted", {
            status: res.status,
          });
          return null;
        }
        body = await res.text();
      } catch (err) {
        opts.warn("breached-password service unreachable; password accepted", {
          error: err instanceof Error ? err.name : String(err),
        });
        return null;
      }
      const count = countInRange(body, hash.slice(5));
      if (count === 0) return null;
      return badRequest(
        "breached_password",
        "this password appears in known data breaches; choose another",
      );
    },
  };
}

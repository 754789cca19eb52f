/**
 * The kernel authenticator for operators: `Authorization: Bearer <session or API
 * token>` or the `borealis_session` cookie. Cookie-authenticated state-changing
 * requests and WebSocket upgrades must come from an allowed Origin (CSRF and cross-site
 * WebSocket hijacking defence); bearer requests need no such check because browsers
 * never attach them on their own.
 *
 * @module
 */
import type { Context } from "hono";
import type { Authenticator } from "../../core/auth.ts";
import { forbidden, unauthorized } from "../../core/errors.ts";
import type { AppEnv } from "../../core/http.ts";
import { readCookie, SESSION_COOKIE } from "./http_util.ts";
import { API_TOKEN_PREFIX, SESSION_PREFIX, type SessionStore } from "./sessions.ts";

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/** Origins allowed to send cookie-authenticated writes besides the request's own. */
export interface CsrfOptions {
  publicBaseUrl?: string;
  corsOrigins: readonly string[];
}

/** True when a state-changing request carries an acceptable Origin. */
export function originAllowed(c: Context, options: CsrfOptions): boolean {
  const origin = c.req.header("origin");
  if (!origin) {
    // Without Origin, Fetch Metadata still tells a same-origin request apart.
    return c.req.header("sec-fetch-site") === "same-origin";
  }
  if (origin === "null") return false;
  const allowed = new Set<string>();
  try {
    allowed.add(new URL(c.req.url).origin);
  } catch { /* no own origin */ }
  if (options.publicBaseUrl) allowed.add(new URL(options.publicBaseUrl).origin);
  for (const o of options.corsOrigins) if (o !== "*") allowed.add(o.replace(/\/+$/, ""));
  return allowed.has(origin);
}

/** Builds the operator authenticator. */
export function operatorAuthenticator(
  sessions: SessionStore,
  csrf: CsrfOptions,
): Authenticator {
  return async function operatorAuthenticator(c: Context<AppEnv>) {
    const header = c.req.header("authorization");
    if (header) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      const token = m?.[1];
      if (!token || !(token.startsWith(SESSION_PREFIX) || token.startsWith(API_TOKEN_PREFIX))) {
        return null; // someone else's credential (device JWT, DPoP, …)
      }
      const p = await sessions.resolve(token);
      if (!p) throw unauthorized("the session or API token is expired, revoked or unknown");
      return p;
    }
    const cookie = readCookie(c, SESSION_COOKIE);
    if (!cookie || !cookie.startsWith(SESSION_PREFIX)) return null;
    const p = await sessions.resolve(cookie);
    if (!p) return null;
    // A WebSocket upgrade is a GET, but a page on any origin can open one and the browser
    // attaches the cookie (cross-site WebSocket hijacking): it gets the write rule.
    const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
    if ((!SAFE.has(c.req.method) || upgrade) && !originAllowed(c, csrf)) {
      throw forbidden(
        "csrf_origin_mismatch",
        upgrade
          ? "cookie-authenticated sockets must be opened from the console's own origin"
          : "cookie-authenticated writes must come from the console's own origin",
      );
    }
    return p;
  };
}

/**
 * Small HTTP pieces the operator routes share: the error schema, response helpers,
 * the session cookie, and client-address checks.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { clientIp } from "../../core/audit.ts";
import { isLoopbackRequest } from "../../core/client_ip.ts";
import { body, err, ErrorBody, json } from "../../core/openapi.ts";
import type { AppEnv } from "../../core/http.ts";

/** Name of the session cookie. */
export const SESSION_COOKIE = "borealis_session";

/** The common guard failures, added to every guarded route. */
export const guarded = {
  401: err("Not signed in"),
  403: err("Not allowed"),
};

/** `Set-Cookie` value for a new session. */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${
    Math.max(0, Math.floor(maxAgeSeconds))
  }${secure ? "; Secure" : ""}`;
}

/** `Set-Cookie` value that removes the session cookie. */
export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure ? "; Secure" : ""}`;
}

/** Reads one cookie from the request. */
export function readCookie(c: Context, name: string): string | undefined {
  const header = c.req.header("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** True when the request comes from this machine (see core/client_ip.ts). */
export const isLoopback = (c: Context): boolean => isLoopbackRequest(c as Context<AppEnv>);

export { body, clientIp, err, ErrorBody, json };

/** A string without control characters (PostgreSQL text cannot hold NUL, logs hate the rest). */
export const plainText = (max: number) =>
  // deno-lint-ignore no-control-regex -- matching control characters is the point here
  z.string().max(max).regex(/^[^\u0000-\u001f\u007f]*$/, "control characters are not allowed");

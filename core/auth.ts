/**
 * Who is calling. Authentication plugins install {@link Authenticator}s; the kernel
 * only defines the {@link Principal} they produce and the guards routes use. The kernel
 * authenticates nobody itself, so a plugin such as the vault can guard its routes
 * without depending on the plugin that manages operator accounts.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { forbidden, HttpError, unauthorized } from "./errors.ts";
import type { AppEnv } from "./http.ts";

/** Operator roles. */
export type Role = "Admin" | "User";

/** What kind of caller a principal is. */
export type PrincipalKind = "operator" | "device" | "system";

/** The authenticated caller of a request. */
export interface Principal {
  kind: PrincipalKind;
  /** Stable id: user id, device GUID, or a system component name. */
  id: string;
  /** Display name: username, hostname. */
  name: string;
  /** Operators only. */
  role?: Role;
  /** Site ids this principal may see; "all" for admins and the system. */
  sites: "all" | readonly number[];
  /** The operator's session currently holds a Dev Mode grant. */
  devMode?: boolean;
  /** An API token restricted to reads. */
  readOnly?: boolean;
  /** How the caller authenticated ("session", "api_token", "dpop", …). */
  method?: string;
  /** Session or token id, for revocation and audit. */
  credentialId?: string;
}

/**
 * Recognises a credential on a request. Returns `null` when the request carries
 * nothing it understands; throws an {@link HttpError} (401/403) when it carries a
 * credential that it recognises but rejects.
 */
export type Authenticator = (c: Context<AppEnv>) => Promise<Principal | null>;

/** The authenticators installed by plugins, tried in installation order. */
export class AuthRegistry {
  #authenticators: Array<{ name: string; fn: Authenticator }> = [];

  /** Adds an authenticator (called by authentication plugins during setup). */
  install(name: string, fn: Authenticator): void {
    this.#authenticators.push({ name, fn });
  }

  /** Names of the installed authenticators. */
  get names(): string[] {
    return this.#authenticators.map((a) => a.name);
  }

  /** Resolves the principal once per request and caches it on the context. */
  async resolve(c: Context<AppEnv>): Promise<Principal | null> {
    const cached = c.get("principal");
    if (cached !== undefined) return cached;
    let found: Principal | null = null;
    for (const { fn } of this.#authenticators) {
      found = await fn(c);
      if (found) break;
    }
    c.set("principal", found);
    return found;
  }
}

/** The request's principal, or `null` when anonymous. */
export function getPrincipal(c: Context<AppEnv>): Promise<Principal | null> {
  return c.env.auth.resolve(c);
}

/** Guard: a principal (optionally of one kind) is required; 401 otherwise. */
export function requirePrincipal(kind?: PrincipalKind): MiddlewareHandler<AppEnv> {
  return async function requirePrincipal(c, next) {
    const p = await getPrincipal(c);
    if (!p) throw unauthorized();
    if (kind && p.kind !== kind) {
      throw forbidden("wrong_principal_kind", `this route is for ${kind}s`);
    }
    await next();
  };
}

/** Guard: an operator with at least `role` (Admin ⊃ User). */
export function requireRole(role: Role): MiddlewareHandler<AppEnv> {
  return async function requireRole(c, next) {
    const p = await getPrincipal(c);
    if (!p) throw unauthorized();
    if (p.kind !== "operator" && p.kind !== "system") {
      throw forbidden("operator_required", "this route is for operators");
    }
    if (role === "Admin" && p.kind === "operator" && p.role !== "Admin") {
      throw forbidden("admin_required", "this action needs the Admin role");
    }
    if (p.readOnly && !["GET", "HEAD", "OPTIONS"].includes(c.req.method)) {
      throw forbidden("read_only_token", "this API token is read-only");
    }
    await next();
  };
}

/** Guard: an Admin whose session holds a Dev Mode grant. */
export function requireDevMode(): MiddlewareHandler<AppEnv> {
  const admin = requireRole("Admin");
  return async function requireDevMode(c, next) {
    await admin(c, async () => {
      const p = (await getPrincipal(c))!;
      if (p.kind === "operator" && !p.devMode) {
        throw new HttpError(
          403,
          "dev_mode_required",
          'this action needs Dev Mode: POST /api/dev-mode {"enabled": true} as an Admin, then retry',
        );
      }
      await next();
    });
  };
}

/** Returns the principal or throws 401 (for handlers behind a guard). */
export async function principalOf(c: Context<AppEnv>): Promise<Principal> {
  const p = await getPrincipal(c);
  if (!p) throw unauthorized();
  return p;
}

/** True when the principal may see objects of `siteId` (`null`: unassigned, admin-only). */
export function canSeeSite(p: Principal, siteId: number | null): boolean {
  if (p.sites === "all") return true;
  return siteId !== null && p.sites.includes(siteId);
}

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

/** Records a guard's refusal of an identified caller (set by the engine to its auditor). */
export type DenialRecorder = (c: Context<AppEnv>, err: HttpError) => Promise<void>;

/** The authenticators installed by plugins, tried in installation order. */
export class AuthRegistry {
  #authenticators: Array<{ name: string; fn: Authenticator }> = [];
  #onDenied?: DenialRecorder;

  /** Sets what records guard refusals (the engine points it at the audit trail). */
  onDenied(fn: DenialRecorder): void {
    this.#onDenied = fn;
  }

  /** Records a refusal; a failing recorder never changes the answer. */
  async denied(c: Context<AppEnv>, err: HttpError): Promise<void> {
    await this.#onDenied?.(c, err).catch(() => {});
  }

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

/**
 * Runs a guard's check; a 403 it raises is recorded (ASVS 16.3.2: authorisation failures
 * are logged) before it is thrown. Anonymous 401s are not recorded: scanners would flood
 * the trail and nobody is identified. A 403 raised later by the handler is not the
 * guard's and is not recorded here.
 */
async function checked(
  c: Context<AppEnv>,
  check: () => Promise<void> | void,
  next: () => Promise<void>,
): Promise<void> {
  try {
    await check();
  } catch (err) {
    if (err instanceof HttpError && err.status === 403) await c.env.auth.denied(c, err);
    throw err;
  }
  await next();
}

/** Guard: a principal (optionally of one kind) is required; 401 otherwise. */
export function requirePrincipal(kind?: PrincipalKind): MiddlewareHandler<AppEnv> {
  return async function requirePrincipal(c, next) {
    await checked(c, async () => {
      const p = await getPrincipal(c);
      if (!p) throw unauthorized();
      if (kind && p.kind !== kind) {
        throw forbidden("wrong_principal_kind", `this route is for ${kind}s`);
      }
    }, next);
  };
}

async function checkRole(c: Context<AppEnv>, role: Role): Promise<Principal> {
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
  return p;
}

/** Guard: an operator with at least `role` (Admin ⊃ User). */
export function requireRole(role: Role): MiddlewareHandler<AppEnv> {
  return async function requireRole(c, next) {
    await checked(c, () => checkRole(c, role).then(() => {}), next);
  };
}

/** Guard: an Admin whose session holds a Dev Mode grant. */
export function requireDevMode(): MiddlewareHandler<AppEnv> {
  return async function requireDevMode(c, next) {
    await checked(c, async () => {
      const p = await checkRole(c, "Admin");
      if (p.kind === "operator" && !p.devMode) {
        throw new HttpError(
          403,
          "dev_mode_required",
          'this action needs Dev Mode: POST /api/dev-mode {"enabled": true} as an Admin, then retry',
        );
      }
    }, next);
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

/**
 * The kernel's route guards, wrapped so that a refusal of a signed-in caller (403) is
 * written to the audit trail (ASVS 16.3.2: authorisation failures are logged). Anonymous
 * 401s are not audited: scanners would flood the trail and nobody is identified.
 * The operators plugin (which requires this one) uses the same guards through mod.ts.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { Auditor } from "../../core/audit.ts";
import {
  type AuthRegistry,
  type PrincipalKind,
  requireDevMode as coreRequireDevMode,
  requirePrincipal as coreRequirePrincipal,
  requireRole as coreRequireRole,
  type Role,
} from "../../core/auth.ts";
import { HttpError } from "../../core/errors.ts";
import type { AppEnv } from "../../core/http.ts";

// Route definitions are module-level values, made before any engine exists; each engine's
// auditor is found through its auth registry (one per engine, on every request's env).
const auditors = new WeakMap<AuthRegistry, Auditor>();

/** Makes `audit` the auditor for denials on requests of the engine owning `auth`. */
export function auditDenials(auth: AuthRegistry, audit: Auditor): void {
  auditors.set(auth, audit);
}

/** Wraps a guard: a 403 it raises (not one raised later by the handler) is audited. */
export function audited(guard: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  return async function auditedGuard(c, next) {
    let passed = false;
    try {
      await guard(c, async () => {
        passed = true;
        await next();
      });
    } catch (e) {
      if (!passed && e instanceof HttpError && e.status === 403) {
        await auditors.get(c.env.auth)?.(c, {
          action: "authz.denied",
          target: `${c.req.method} ${c.req.path}`.slice(0, 300),
          outcome: "denied",
          details: { code: e.code },
        }).catch(() => {});
      }
      throw e;
    }
  };
}

/** {@link coreRequireRole}, audited. */
export const requireRole = (role: Role): MiddlewareHandler<AppEnv> =>
  audited(coreRequireRole(role));

/** {@link coreRequirePrincipal}, audited. */
export const requirePrincipal = (kind?: PrincipalKind): MiddlewareHandler<AppEnv> =>
  audited(coreRequirePrincipal(kind));

/** {@link coreRequireDevMode}, audited. */
export const requireDevMode = (): MiddlewareHandler<AppEnv> => audited(coreRequireDevMode());

/**
 * Operators: accounts, password + TOTP + passkey login, sessions, API tokens, roles and
 * site assignments, Dev Mode grants, the audit query, and the bootstrap flow (first
 * admin, vault setup/unlock). Installs the kernel authenticator for sessions and API
 * tokens and provides the site-scope service other plugins use.
 *
 * @module
 */
import { canSeeSite } from "../../core/auth.ts";
import {
  boolEnv,
  intEnv,
  optionalStringEnv,
  setting,
  stringEnv,
  urlEnv,
} from "../../core/config.ts";
import { eventKey } from "../../core/events.ts";
import { definePlugin } from "../../core/plugin.ts";
import { vaultKey } from "../aegis/mod.ts";
import { operatorAuthenticator } from "./authenticator.ts";
import { rangeApiChecker } from "./breached.ts";
import { createAdminCommand } from "./commands.ts";
import { installAuditRoutes } from "./routes_audit.ts";
import { installAuthRoutes } from "./routes_auth.ts";
import { installBootstrapRoutes } from "./routes_bootstrap.ts";
import { installDevModeRoutes } from "./routes_dev_mode.ts";
import { installEmailRoutes } from "./routes_email.ts";
import { installPasskeyRoutes } from "./routes_passkeys.ts";
import { installTokenRoutes } from "./routes_tokens.ts";
import { installUserRoutes } from "./routes_users.ts";
import { SessionStore } from "./sessions.ts";
import { LoginThrottle } from "./throttle.ts";
import { UserStore } from "./users.ts";
import { assignSites } from "./sites.ts";
import { type ExternalAuthenticator, operatorsKey, siteScopeKey } from "./keys.ts";
import type { OperatorSettings } from "./deps.ts";

export type { OperatorSettings } from "./deps.ts";
export { operatorsKey, siteScopeKey } from "./keys.ts";
export type {
  ExternalAuthenticator,
  ExternalLogin,
  ExternalLoginResult,
  OperatorContact,
  OperatorsService,
  SiteScope,
} from "./keys.ts";

export type { NewUser, Role, UserRow, UserView } from "./users.ts";
export type { SessionView, TokenView } from "./sessions.ts";

export default definePlugin({
  name: "operators",
  description: "Operator accounts, login (password, TOTP, passkeys), sessions, roles, API tokens",
  requires: ["aegis"],
  migrations: new URL("./migrations/", import.meta.url),
  commands: [createAdminCommand],
  settings: {
    sessionIdleSeconds: setting(
      "BOREALIS_SESSION_IDLE_SECONDS",
      intEnv(1800, 60, 86_400),
      "seconds, an integer from 60 to 86400",
      "A session unused for this long ends.",
      "1800",
    ),
    sessionAbsoluteSeconds: setting(
      "BOREALIS_SESSION_ABSOLUTE_SECONDS",
      intEnv(43_200, 300, 2_592_000),
      "seconds, an integer from 300 to 2592000",
      "A session ends this long after sign-in, however busy.",
      "43200",
    ),
    passwordScryptLn: setting(
      "BOREALIS_PASSWORD_SCRYPT_LN",
      intEnv(15, 14, 20),
      "an integer from 14 to 20 (scrypt N = 2^value)",
      "Password hash cost; raising it rehashes each password at its next login.",
      "15",
    ),
    passwordBreachApi: setting(
      "BOREALIS_PASSWORD_BREACH_API",
      urlEnv(["https:", "http:"]),
      "a URL, e.g. https://api.pwnedpasswords.com/range/",
      "Range API (k-anonymity) that new passwords are checked against; off when unset.",
      "unset (off)",
    ),
    loginMaxFailures: setting(
      "BOREALIS_LOGIN_MAX_FAILURES",
      intEnv(10, 3, 1000),
      "an integer from 3 to 1000",
      "Failed logins per username before a temporary lockout (delays grow from the 3rd).",
      "10",
    ),
    loginIpMaxFailures: setting(
      "BOREALIS_LOGIN_IP_MAX_FAILURES",
      intEnv(50, 5, 100_000),
      "an integer from 5 to 100000",
      "Failed logins per client address before a temporary lockout.",
      "50",
    ),
    loginLockoutSeconds: setting(
      "BOREALIS_LOGIN_LOCKOUT_SECONDS",
      intEnv(900, 10, 86_400),
      "seconds, an integer from 10 to 86400",
      "How long a lockout lasts.",
      "900",
    ),
    mfaIssuer: setting(
      "BOREALIS_MFA_ISSUER",
      stringEnv("Borealis"),
      "a short name",
      "Issuer shown by authenticator apps.",
      "Borealis",
    ),
    webauthnRpId: setting(
      "BOREALIS_WEBAUTHN_RP_ID",
      optionalStringEnv(),
      "a host name such as rmm.example.com",
      "WebAuthn relying-party id for passkeys.",
      "host of BOREALIS_PUBLIC_BASE_URL, else localhost",
    ),
    webauthnRpName: setting(
      "BOREALIS_WEBAUTHN_RP_NAME",
      stringEnv("Borealis"),
      "a short name",
      "Relying-party name shown by authenticators.",
      "Borealis",
    ),
    webauthnOrigins: setting(
      "BOREALIS_WEBAUTHN_ORIGINS",
      optionalStringEnv(),
      "a comma-separated list of origins",
      "Origins passkey ceremonies may come from.",
      "origin of BOREALIS_PUBLIC_BASE_URL, else http://localhost:<port>",
    ),
    cookieSecure: setting(
      "BOREALIS_COOKIE_SECURE",
      boolEnv(true),
      "true or false",
      "Mark the session cookie Secure. Browsers keep a Secure cookie only over HTTPS or at " +
        "http://localhost; false lets a plain-HTTP trial under a LAN name sign in (never in production).",
      "true",
    ),
    bootstrapTokenEnabled: setting(
      "BOREALIS_BOOTSTRAP_TOKEN_ENABLED",
      boolEnv(true),
      "true or false",
      "Print a one-time token at start (while no admin exists) that allows remote admin setup.",
      "true",
    ),
  },
  async setup(ctx) {
    const s = ctx.settings as OperatorSettings;
    const vault = ctx.use(vaultKey);
    const breach = s.passwordBreachApi
      ? rangeApiChecker(s.passwordBreachApi, {
        warn: (message, fields) => ctx.log.warn(message, fields),
      })
      : undefined;
    const users = new UserStore(ctx.sql, ctx.clock, { ln: s.passwordScryptLn, r: 8, p: 1 }, breach);
    const sessions = new SessionStore(ctx.sql, ctx.clock, {
      idleMs: s.sessionIdleSeconds * 1000,
      absoluteMs: s.sessionAbsoluteSeconds * 1000,
    });
    // Principal caches on other instances drop when this one changes auth state, and
    // whoever holds long-lived connections (operator sockets) re-checks them.
    const authChanged = eventKey<{ at: number }>("operators.auth_changed");
    const authListeners: Array<() => void> = [];
    const notify = () => {
      for (const fn of authListeners) {
        try {
          fn();
        } catch (err) {
          ctx.log.warn(`auth change listener failed: ${err instanceof Error ? err.message : err}`);
        }
      }
    };
    sessions.onChange = () => {
      notify();
      void ctx.events.publish(authChanged, { at: ctx.clock.now() }).catch(() => {});
    };
    ctx.events.subscribe(authChanged, (_p, meta) => {
      if (meta.local) return;
      sessions.invalidate(false);
      notify();
    });
    const throttle = new LoginThrottle(ctx.sql, ctx.clock, {
      userMaxFailures: s.loginMaxFailures,
      ipMaxFailures: s.loginIpMaxFailures,
      lockoutMs: s.loginLockoutSeconds * 1000,
      freeFailures: 3,
    });

    vault.registerColumn({
      table: "users",
      column: "mfa_secret",
      idColumn: "id",
      // Without its seed a user must set TOTP up again at the next login.
      onReset: async (sql) => {
        await sql`update users set mfa_secret = null, mfa_enabled = false, mfa_last_step = 0
                  where mfa_secret is not null`;
        await sql`delete from mfa_pending`;
      },
    });

    ctx.auth.install(
      "operators",
      operatorAuthenticator(sessions, {
        publicBaseUrl: ctx.core.publicBaseUrl,
        corsOrigins: ctx.core.corsOrigins,
      }),
    );

    const external: { current?: ExternalAuthenticator } = {};
    const deps = { ctx, settings: s, vault, users, sessions, throttle, external };
    const bootstrap = await installBootstrapRoutes(deps);
    installAuthRoutes(deps);
    installPasskeyRoutes(deps);
    installUserRoutes(deps);
    installTokenRoutes(deps);
    installDevModeRoutes(deps);
    installAuditRoutes(deps);
    installEmailRoutes(deps);

    ctx.provide(operatorsKey, {
      createUser: (input) => users.create(input),
      userByName: (name) => users.byUsername(name),
      async createSession(userId, method = "service") {
        const { id, token } = await sessions.create(userId, { method });
        return { id, token };
      },
      async setDevMode(sessionId, ttlSeconds) {
        await sessions.setDevMode(sessionId, ttlSeconds * 1000);
      },
      async assignSites(userId, siteIds) {
        await assignSites(ctx.sql, userId, siteIds, new Date(ctx.clock.now()));
        sessions.invalidate();
      },
      bootstrapToken: () => bootstrap.token(),
      async revokeAll(userId) {
        const n = await sessions.revokeAll(userId);
        await sessions.revokeAllTokens(userId);
        return n;
      },
      invalidate: () => sessions.invalidate(),
      liveCredentials: (ids) => sessions.liveCredentials(ids),
      onAuthChanged: (fn) => void authListeners.push(fn),
      setExternalAuthenticator(auth) {
        external.current = auth;
      },
      async contacts(userIds) {
        if (!userIds.length) return [];
        const rows = await ctx.sql<
          {
            id: string;
            username: string;
            email: string | null;
            role: "Admin" | "User";
            disabled: boolean;
            sites: number[] | null;
          }[]
        >`
          select u.id, u.username, u.email, u.role, u.disabled,
            (select array_agg(a.site_id order by a.site_id) from user_site_assignments a
              where a.user_id = u.id) as sites
          from users u where u.id = any(${[...userIds]}::uuid[])`;
        return rows.map((r) => ({
          ...r,
          sites: r.role === "Admin" ? "all" as const : r.sites ?? [],
        }));
      },
    });
    ctx.provide(siteScopeKey, {
      canSee: canSeeSite,
      filter: (p) => (p.sites === "all" ? null : p.sites),
    });

    ctx.tasks.every("prune", 3_600_000, async () => {
      const now = new Date(ctx.clock.now());
      await throttle.prune();
      await ctx.sql`delete from mfa_pending where expires_at < ${now}`;
      await ctx.sql`delete from webauthn_challenges where expires_at < ${now}`;
      await ctx.sql`delete from operator_sessions
                    where expires_at < ${new Date(now.getTime() - 86_400_000)}`;
    }, { clusterSingleton: true });
  },
});

/**
 * Sign-in and the signed-in user's own account: password login with throttling and no
 * user enumeration, the TOTP second step (setup or verify), logout, `me`, own sessions,
 * password change and MFA reset.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { principalOf } from "../../core/auth.ts";
import { requirePrincipal, requireRole } from "../../core/auth.ts";
import { badRequest, forbidden, HttpError, notFound, tooManyRequests } from "../../core/errors.ts";
import type { AppEnv } from "../../core/http.ts";
import type { Deps } from "./deps.ts";
import {
  body,
  clearedCookie,
  clientIp,
  err,
  guarded,
  json,
  plainText,
  sessionCookie,
} from "./http_util.ts";
import { MAX_PASSWORD_LENGTH } from "./passwords.ts";
import { randomToken, tokenHash } from "./sessions.ts";
import { matchStep, newTotpSecret, otpauthUrl } from "./totp.ts";
import type { UserRow } from "./users.ts";

const PENDING_MS = 5 * 60_000;
const MAX_CODE_ATTEMPTS = 5;

/**
 * `bearer: true` asks for the session value in the answer, for API clients that send it
 * as `Authorization: Bearer`. Browsers get only the HttpOnly cookie: a console that
 * kept the value in script-readable memory would give away what HttpOnly protects.
 */
export const WantsBearer = z.boolean().optional().describe(
  "true: also return the session value as `token` (API clients using Authorization: Bearer)",
);

const LoginBody = z.object({
  username: plainText(128).trim().min(1),
  password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 4),
  bearer: WantsBearer,
}).strict().openapi("LoginRequest");

const LoginOk = z.object({
  status: z.literal("ok"),
  username: z.string(),
  role: z.enum(["Admin", "User"]),
  token: z.string().optional().describe("Only when the request asked with bearer: true"),
  expires_at: z.string(),
  warning: z.object({ code: z.string(), message: z.string() }).optional().describe(
    "Set when the browser will drop the Secure session cookie (plain HTTP under a name " +
      "that is not localhost): every later request would be 401",
  ),
});
const MfaRequired = z.object({
  status: z.literal("mfa_required"),
  stage: z.enum(["setup", "verify"]),
  pending_token: z.string(),
  username: z.string(),
  role: z.enum(["Admin", "User"]),
  expires_in: z.number(),
  secret: z.string().optional(),
  otpauth_url: z.string().optional(),
});
const LoginReply = z.union([LoginOk, MfaRequired]).openapi("LoginReply");

const Me = z.object({
  id: z.string(),
  username: z.string(),
  display_name: z.string(),
  role: z.enum(["Admin", "User"]),
  mfa_enabled: z.boolean(),
  mfa_exempt: z.boolean(),
  auth_source: z.string(),
  passkey_count: z.number(),
  site_ids: z.array(z.number()).nullable(),
  dev_mode: z.boolean(),
  method: z.string(),
}).openapi("Me");

const Session = z.object({
  id: z.string(),
  username: z.string(),
  method: z.string(),
  created_at: z.string(),
  last_seen_at: z.string(),
  expires_at: z.string(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  dev_mode_until: z.string().nullable(),
  current: z.boolean(),
}).openapi("OperatorSession");

const loginRoute = createRoute({
  method: "post",
  path: "/api/auth/login",
  summary: "Sign in with username and password",
  request: body(LoginBody),
  responses: {
    200: json(LoginReply, "Signed in, or a second factor is needed"),
    400: err("Bad body"),
    401: err("Invalid username or password (the same for unknown users)"),
    423: err("Vault locked, or the account needs an auth reset"),
    429: err("Too many failed attempts; Retry-After says when to retry"),
  },
});

const mfaVerifyRoute = createRoute({
  method: "post",
  path: "/api/auth/mfa/verify",
  summary: "Second step: a TOTP code for the pending sign-in",
  request: body(
    z.object({
      pending_token: z.string().min(1).max(200),
      code: z.string().regex(/^\d{6}$/, "six digits"),
      bearer: WantsBearer,
    }).strict(),
  ),
  responses: {
    200: json(LoginOk, "Signed in"),
    400: err("Bad body"),
    401: err("invalid_code, invalid_session or expired"),
    423: err("Vault locked"),
  },
});

const logoutRoute = createRoute({
  method: "post",
  path: "/api/auth/logout",
  summary: "End the current session",
  middleware: [requirePrincipal("operator")] as const,
  responses: { 204: { description: "Signed out" }, ...guarded },
});

const meRoute = createRoute({
  method: "get",
  path: "/api/auth/me",
  summary: "The signed-in operator",
  middleware: [requirePrincipal("operator")] as const,
  responses: { 200: json(Me, "Me"), ...guarded },
});

const sessionsRoute = createRoute({
  method: "get",
  path: "/api/auth/sessions",
  summary: "Live sessions: your own, or (Admin) a user's or everyone's",
  middleware: [requireRole("User")] as const,
  request: {
    query: z.object({
      username: plainText(128).optional(),
      all: z.enum(["true", "false"]).optional(),
    }),
  },
  responses: { 200: json(z.object({ sessions: z.array(Session) }), "Sessions"), ...guarded },
});

const revokeSessionRoute = createRoute({
  method: "delete",
  path: "/api/auth/sessions/{id}",
  summary: "Revoke a session (your own; an Admin may revoke anyone's)",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ id: z.uuid() }) },
  responses: { 204: { description: "Revoked" }, 404: err("No such live session"), ...guarded },
});

const passwordRoute = createRoute({
  method: "post",
  path: "/api/auth/password/reset",
  summary: "Change your own password; ends your other sessions",
  middleware: [requireRole("User")] as const,
  request: body(
    z.object({
      current_password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 4),
      new_password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 4),
    }).strict(),
  ),
  responses: {
    200: json(z.object({ status: z.literal("ok"), revoked_sessions: z.number() }), "Changed"),
    400: err("Weak password"),
    429: err("Too many wrong current passwords"),
    ...guarded,
  },
});

const mfaResetRoute = createRoute({
  method: "post",
  path: "/api/auth/mfa/reset",
  summary: "Clear your own TOTP (set up again at next sign-in); ends your other sessions",
  middleware: [requireRole("User")] as const,
  request: body(z.object({ current_password: z.string().min(1).max(1024) }).strict()),
  responses: {
    200: json(z.object({ status: z.literal("ok"), revoked_sessions: z.number() }), "Cleared"),
    ...guarded,
  },
});

const invalidCredentials = () =>
  new HttpError(401, "invalid_credentials", "invalid username or password");

/**
 * Creates a session for `user`, sets the cookie and returns the `ok` reply body; the
 * session value is in the body only when the client asked for a bearer token.
 */
export async function issueSession(
  deps: Deps,
  c: Context<AppEnv>,
  user: UserRow,
  method: string,
  bearer = false,
): Promise<z.infer<typeof LoginOk>> {
  const session = await deps.sessions.create(user.id, {
    method,
    ip: clientIp(c),
    userAgent: c.req.header("user-agent") ?? null,
  });
  const secure = deps.settings.cookieSecure;
  c.header(
    "Set-Cookie",
    sessionCookie(session.token, deps.settings.sessionAbsoluteSeconds, secure),
    { append: true },
  );
  c.header("Cache-Control", "no-store");
  await deps.ctx.audit(c, {
    action: "auth.login",
    target: `user:${user.username}`,
    actor: { kind: "operator", id: user.id, name: user.username, sites: [] },
    details: { method },
  });
  const dropped = secure ? cookieDroppedOn(c, deps.ctx.core.publicBaseUrl) : null;
  if (dropped && !warnedHosts.has(dropped)) {
    warnedHosts.add(dropped);
    deps.ctx.log.warn(
      `a browser signing in over plain HTTP at ${dropped} drops the Secure session cookie ` +
        `(every request after sign-in is then 401): serve the engine over HTTPS, use ` +
        `http://localhost, or set BOREALIS_COOKIE_SECURE=false for a plain-HTTP trial`,
    );
  }
  return {
    status: "ok",
    username: user.username,
    role: user.role,
    ...(bearer ? { token: session.token } : {}),
    expires_at: session.expiresAt.toISOString(),
    ...(dropped
      ? {
        warning: {
          code: "cookie_not_stored",
          message: `this browser will not keep the Secure session cookie over plain HTTP at ` +
            `${dropped}: use HTTPS or http://localhost, or ask the administrator to set ` +
            `BOREALIS_COOKIE_SECURE=false`,
        },
      }
      : {}),
  };
}

const warnedHosts = new Set<string>();

/**
 * The host whose browser will drop a Secure cookie from this answer, or null: a plain
 * HTTP request (no TLS here, none declared by a proxy or the public URL) under a name
 * browsers do not treat as a secure context (anything but localhost and loopback IPs).
 */
function cookieDroppedOn(c: Context<AppEnv>, publicBaseUrl?: string): string | null {
  if (publicBaseUrl?.startsWith("https:")) return null;
  if (new URL(c.req.url).protocol === "https:") return null;
  if (c.req.header("x-forwarded-proto")?.split(",")[0]?.trim() === "https") return null;
  const host = (c.req.header("host") ?? new URL(c.req.url).host).toLowerCase();
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.split(":")[0]!;
  const local = name === "localhost" || name.endsWith(".localhost") || name === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(name);
  return local ? null : host;
}

/**
 * Re-authentication before a password or factor change (ASVS 7.5.1), throttled like a
 * sign-in under the same username so a stolen session cannot guess the password freely.
 * A directory account has no local password: its directory checks it with a bind (the
 * same check as a sign-in, which also refreshes role and sites). The caller is signed
 * in, so a directory that cannot answer is a 503, not a "wrong password" that would
 * count against the throttle; a directory that refuses the account is its 403.
 */
export async function reauthenticate(
  deps: Deps,
  c: Context<AppEnv>,
  user: UserRow,
  password: string,
): Promise<boolean> {
  const ip = clientIp(c);
  return await deps.throttle.serialize(user.username, ip, async () => {
    const wait = await deps.throttle.waitMs(user.username, ip);
    if (wait > 0) throw tooManyRequests(wait / 1000, "too many wrong passwords; try again later");
    const ok = user.auth_source === "directory"
      ? await directoryPassword(deps, user, password, ip)
      : await deps.users.checkPassword(user, password);
    if (ok) await deps.throttle.succeed(user.username);
    else await deps.throttle.fail(user.username, ip);
    return ok;
  });
}

/** Reasons an external authenticator gives when it could not decide at all. */
const UNDECIDED = new Set(["directory_unavailable", "provider_disabled", "directory_link_missing"]);

async function directoryPassword(
  deps: Deps,
  user: UserRow,
  password: string,
  ip: string | null,
): Promise<boolean> {
  const external = deps.external?.current;
  const outcome = external
    ? await external.authenticate({ username: user.username, password, user, ip })
    : ({ status: "invalid", reason: "directory_unavailable" } as const);
  if (outcome.status === "ok") return outcome.userId === user.id;
  if (outcome.status === "denied") throw forbidden(outcome.code, outcome.message);
  if (outcome.status === "invalid" && UNDECIDED.has(outcome.reason)) {
    throw new HttpError(
      503,
      "directory_unavailable",
      "the directory this account comes from cannot check the password now (unreachable, or " +
        "its provider is disabled); try again later or ask an admin",
    );
  }
  return false;
}

/** Installs the sign-in and own-account routes. */
export function installAuthRoutes(deps: Deps): void {
  const { ctx, users, sessions, throttle, vault } = deps;
  const { sql, clock } = ctx;

  const auditFailure = (c: Context<AppEnv>, username: string, reason: string) =>
    ctx.audit(c, {
      action: "auth.login",
      target: `user:${username.slice(0, 128)}`,
      outcome: "failure",
      details: { reason },
    });

  const checkCurrentPassword = (c: Context<AppEnv>, user: UserRow, password: string) =>
    reauthenticate(deps, c, user, password);

  ctx.http.openapi(loginRoute, (c) => {
    const { username, password, bearer } = c.req.valid("json");
    const ip = clientIp(c);
    // One attempt per username (a few per address) in flight at a time, so a burst of
    // parallel guesses cannot all pass the wait check before the first failure counts.
    return throttle.serialize(username, ip, async () => {
      const wait = await throttle.waitMs(username, ip);
      if (wait > 0) {
        await auditFailure(c, username, "throttled");
        throw tooManyRequests(wait / 1000, "too many failed sign-in attempts; try again later");
      }
      let user = await users.byUsername(username);
      // Directory accounts and unknown names go to the directory plugin, if loaded; a
      // local account never does, so a directory entry cannot take it over.
      const external = user?.auth_source === "local" ? undefined : deps.external?.current;
      const outcome = external
        ? await external.authenticate({ username, password, user, ip })
        : { status: "skip" as const };
      if (outcome.status === "denied") {
        await auditFailure(c, username, outcome.reason);
        throw forbidden(outcome.code, outcome.message);
      }
      if (outcome.status === "ok") user = await users.byId(outcome.userId);
      // A refused directory login still pays for one scrypt run, like an unknown name,
      // so timing does not tell local accounts from others.
      const ok = outcome.status === "ok" ? !!user : await users.checkPassword(
        outcome.status === "skip" && user?.auth_source === "local" && !user.disabled
          ? user
          : undefined,
        password,
      );
      if (!ok || !user) {
        await throttle.fail(username, ip);
        await auditFailure(
          c,
          username,
          outcome.status === "invalid" ? outcome.reason : "invalid_credentials",
        );
        throw invalidCredentials();
      }
      await throttle.succeed(username);
      if (user.auth_reset_required) {
        await auditFailure(c, username, "auth_reset_required");
        throw new HttpError(423, "auth_reset_required", "an admin must reset this account first");
      }
      if (user.mfa_exempt) {
        return c.json(await issueSession(deps, c, user, "password", bearer), 200);
      }
      return c.json(await startMfa(user), 200);
    });
  });

  /** Password accepted, second factor pending: setup (no seed yet) or verify. */
  async function startMfa(user: UserRow): Promise<z.infer<typeof MfaRequired>> {
    const pending = randomToken("bmp_");
    const hash = tokenHash(pending);
    const expires = new Date(clock.now() + PENDING_MS);
    const base = {
      status: "mfa_required" as const,
      pending_token: pending,
      username: user.username,
      role: user.role,
      expires_in: PENDING_MS / 1000,
    };
    if (user.mfa_enabled && user.mfa_secret) {
      await sql`insert into mfa_pending (token_hash, user_id, stage, expires_at)
                values (${hash}, ${user.id}, 'verify', ${expires})`;
      return { ...base, stage: "verify" };
    }
    const secret = newTotpSecret();
    const sealed = await vault.seal(secret, { table: "mfa_pending", column: "secret", row: hash });
    await sql`insert into mfa_pending (token_hash, user_id, stage, secret, expires_at)
              values (${hash}, ${user.id}, 'setup', ${sealed}, ${expires})`;
    return {
      ...base,
      stage: "setup",
      secret,
      otpauth_url: otpauthUrl(secret, deps.settings.mfaIssuer, user.username),
    };
  }

  ctx.http.openapi(mfaVerifyRoute, async (c) => {
    const { pending_token, code, bearer } = c.req.valid("json");
    const hash = tokenHash(pending_token);
    const [pending] = await sql<
      {
        user_id: string;
        stage: "setup" | "verify";
        secret: string | null;
        attempts: number;
        expires_at: Date;
      }[]
    >`select user_id, stage, secret, attempts, expires_at from mfa_pending where token_hash = ${hash}`;
    if (!pending) {
      await ctx.audit(c, {
        action: "auth.mfa_verify",
        outcome: "failure",
        details: { reason: "invalid_session" },
      });
      throw new HttpError(401, "invalid_session", "no such pending sign-in; sign in again");
    }
    const user = await users.byId(pending.user_id);
    if (pending.expires_at.getTime() <= clock.now() || !user || user.disabled) {
      await sql`delete from mfa_pending where token_hash = ${hash}`;
      await ctx.audit(c, {
        action: "auth.mfa_verify",
        target: user ? `user:${user.username}` : undefined,
        outcome: "failure",
        details: { reason: "expired" },
      });
      throw new HttpError(401, "expired", "the pending sign-in expired; sign in again");
    }
    let secret: string;
    if (pending.stage === "setup") {
      secret = await vault.open(pending.secret!, {
        table: "mfa_pending",
        column: "secret",
        row: hash,
      });
    } else {
      if (!user.mfa_secret) {
        throw forbidden("mfa_not_configured", "MFA is not set up for this user");
      }
      secret = await vault.open(user.mfa_secret, {
        table: "users",
        column: "mfa_secret",
        row: user.id,
      });
    }
    const step = matchStep(secret, code, clock.now());
    // Single use: the step must be later than the last accepted one (atomic compare).
    const accepted = step !== null && (await sql`
      update users set mfa_last_step = ${step} where id = ${user.id} and mfa_last_step < ${step}`)
          .count === 1;
    if (!accepted) {
      const [{ attempts } = { attempts: MAX_CODE_ATTEMPTS }] = await sql<{ attempts: number }[]>`
        update mfa_pending set attempts = attempts + 1 where token_hash = ${hash} returning attempts`;
      if (attempts >= MAX_CODE_ATTEMPTS) {
        await sql`delete from mfa_pending where token_hash = ${hash}`;
      }
      await ctx.audit(c, {
        action: "auth.mfa_verify",
        target: `user:${user.username}`,
        outcome: "failure",
        details: { reason: step === null ? "invalid_code" : "code_reused" },
      });
      throw new HttpError(401, "invalid_code", "the code is wrong, expired or already used");
    }
    await sql`delete from mfa_pending where token_hash = ${hash}`;
    if (pending.stage === "setup") {
      const sealed = await vault.seal(secret, {
        table: "users",
        column: "mfa_secret",
        row: user.id,
      });
      await sql`update users set mfa_secret = ${sealed}, mfa_enabled = true,
                updated_at = ${new Date(clock.now())} where id = ${user.id}`;
      // A new second factor ends every other session of this user.
      await sessions.revokeAll(user.id);
      await ctx.audit(c, {
        action: "auth.mfa_setup",
        target: `user:${user.username}`,
        actor: { kind: "operator", id: user.id, name: user.username, sites: [] },
      });
    }
    return c.json(await issueSession(deps, c, user, "password+totp", bearer), 200);
  });

  ctx.http.openapi(logoutRoute, async (c) => {
    const p = await principalOf(c);
    if (p.method === "session" && p.credentialId) await sessions.revoke(p.credentialId);
    c.header("Set-Cookie", clearedCookie(deps.settings.cookieSecure));
    await ctx.audit(c, { action: "auth.logout", target: `user:${p.name}` });
    return c.body(null, 204);
  });

  ctx.http.openapi(meRoute, async (c) => {
    const p = await principalOf(c);
    const u = await sessions.memo(`me:${p.id}`, async () => {
      const [row] = await sql<
        (
          & Pick<
            UserRow,
            | "id"
            | "username"
            | "display_name"
            | "role"
            | "mfa_enabled"
            | "mfa_exempt"
            | "auth_source"
          >
          & {
            passkey_count: number;
          }
        )[]
      >`select id, username, display_name, role, mfa_enabled, mfa_exempt, auth_source,
               (select count(*)::int from user_passkeys k where k.user_id = users.id) as passkey_count
        from users where id = ${p.id}`;
      return row;
    });
    if (!u) throw notFound("the account no longer exists");
    return c.json({
      ...u,
      site_ids: p.sites === "all" ? null : [...p.sites],
      dev_mode: !!p.devMode,
      method: p.method ?? "session",
    }, 200);
  });

  ctx.http.openapi(sessionsRoute, async (c) => {
    const p = await principalOf(c);
    const q = c.req.valid("query");
    let userId: string | null = p.id;
    if (q.username || q.all === "true") {
      if (p.role !== "Admin") {
        throw forbidden("admin_required", "only admins list others' sessions");
      }
      userId = q.username ? (await users.require(q.username)).id : null;
    }
    return c.json({ sessions: await sessions.list(userId, p.credentialId) }, 200);
  });

  ctx.http.openapi(revokeSessionRoute, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    const ok = await sessions.revoke(id, p.role === "Admin" ? undefined : p.id);
    if (!ok) throw notFound("no such live session");
    await ctx.audit(c, { action: "auth.session_revoke", target: `session:${id}` });
    return c.body(null, 204);
  });

  ctx.http.openapi(passwordRoute, async (c) => {
    const p = await principalOf(c);
    const { current_password, new_password } = c.req.valid("json");
    const user = await users.byId(p.id);
    if (!user || user.auth_source !== "local") {
      throw badRequest("not_local_account", "directory accounts change passwords in the directory");
    }
    if (!(await checkCurrentPassword(c, user, current_password))) {
      await ctx.audit(c, {
        action: "auth.password_change",
        target: `user:${p.name}`,
        outcome: "failure",
      });
      throw new HttpError(403, "invalid_password", "the current password is not correct");
    }
    await users.setPassword(user, new_password);
    const keep = p.method === "session" ? p.credentialId : undefined;
    const revoked = await sessions.revokeAll(user.id, keep);
    await ctx.audit(c, {
      action: "auth.password_change",
      target: `user:${p.name}`,
      details: { revoked_sessions: revoked },
    });
    return c.json({ status: "ok" as const, revoked_sessions: revoked }, 200);
  });

  ctx.http.openapi(mfaResetRoute, async (c) => {
    const p = await principalOf(c);
    const { current_password } = c.req.valid("json");
    const user = await users.byId(p.id);
    if (!user || !(await checkCurrentPassword(c, user, current_password))) {
      await ctx.audit(c, {
        action: "auth.mfa_reset",
        target: `user:${p.name}`,
        outcome: "failure",
      });
      throw new HttpError(403, "invalid_password", "the current password is not correct");
    }
    await sql`update users set mfa_secret = null, mfa_enabled = false,
              updated_at = ${new Date(clock.now())} where id = ${user.id}`;
    const keep = p.method === "session" ? p.credentialId : undefined;
    const revoked = await sessions.revokeAll(user.id, keep);
    await ctx.audit(c, {
      action: "auth.mfa_reset",
      target: `user:${p.name}`,
      details: { revoked_sessions: revoked },
    });
    return c.json({ status: "ok" as const, revoked_sessions: revoked }, 200);
  });
}

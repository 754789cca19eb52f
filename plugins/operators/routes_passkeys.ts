/**
 * Passkeys (WebAuthn) with `@simplewebauthn/server`: a signed-in user registers one;
 * anyone may start a passwordless sign-in, which counts as multi-factor. Challenges are
 * stored server-side, live five minutes and are consumed by the first verify that
 * names them. RP ID and origins come from settings. Directory accounts register with
 * their directory password (checked by a bind) and, at every passkey sign-in, are
 * re-checked against their directory before a session is issued.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import { Buffer } from "node:buffer";
import { type Principal, principalOf } from "../../core/auth.ts";
import { requireRole } from "../../core/auth.ts";
import { badRequest, HttpError, notFound } from "../../core/errors.ts";
import type { Deps } from "./deps.ts";
import { body, err, guarded, json, plainText } from "./http_util.ts";
import { issueSession, reauthenticate, WantsBearer } from "./routes_auth.ts";

const CHALLENGE_MS = 5 * 60_000;

const Passkey = z.object({
  id: z.string(),
  label: z.string(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  transports: z.array(z.string()),
  aaguid: z.string().nullable(),
}).openapi("Passkey");

// The browser's PublicKeyCredential JSON; the library checks the details.
const CredentialJson = z.object({
  id: z.string().min(1).max(1024),
  rawId: z.string().min(1).max(1024),
  type: z.literal("public-key"),
  response: z.record(z.string(), z.unknown()),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.string().max(40).optional(),
}).passthrough();

const registerOptionsRoute = createRoute({
  method: "post",
  path: "/api/auth/passkeys/register/options",
  summary: "Start registering a passkey for the signed-in user (re-enter the password first)",
  middleware: [requireRole("User")] as const,
  request: body(z.object({ current_password: z.string().min(1).max(1024) }).strict()),
  responses: {
    200: json(z.record(z.string(), z.unknown()), "Creation options"),
    400: err("Bad body"),
    429: err("Too many wrong passwords"),
    503: err("A directory account's directory cannot check the password now"),
    ...guarded,
  },
});
const registerVerifyRoute = createRoute({
  method: "post",
  path: "/api/auth/passkeys/register/verify",
  summary: "Finish registering a passkey",
  middleware: [requireRole("User")] as const,
  request: body(z.object({ response: CredentialJson, label: plainText(100).optional() }).strict()),
  responses: {
    201: json(Passkey, "Registered"),
    400: err("Verification failed or challenge unknown/expired"),
    ...guarded,
  },
});
const authOptionsRoute = createRoute({
  method: "post",
  path: "/api/auth/passkeys/authenticate/options",
  summary: "Start a passwordless sign-in with a passkey",
  request: {
    body: {
      required: false,
      content: { "application/json": { schema: z.object({}).strict() } },
    },
  },
  responses: {
    200: json(z.record(z.string(), z.unknown()), "Request options"),
    400: err("Bad body"),
  },
});
const authVerifyRoute = createRoute({
  method: "post",
  path: "/api/auth/passkeys/authenticate/verify",
  summary: "Finish a passkey sign-in (counts as multi-factor)",
  request: body(z.object({ response: CredentialJson, bearer: WantsBearer }).strict()),
  responses: {
    200: json(z.record(z.string(), z.unknown()), "Signed in"),
    400: err("Bad body"),
    401: err("Passkey not accepted (also: a directory account's directory is unreachable)"),
    403: err("A directory account the directory now refuses (disabled, no mapped group)"),
    423: err("The account needs an auth reset"),
  },
});
const listRoute = createRoute({
  method: "get",
  path: "/api/auth/passkeys",
  summary: "Your passkeys",
  middleware: [requireRole("User")] as const,
  responses: { 200: json(z.object({ passkeys: z.array(Passkey) }), "Passkeys"), ...guarded },
});
const renameRoute = createRoute({
  method: "patch",
  path: "/api/auth/passkeys/{id}",
  summary: "Rename one of your passkeys",
  middleware: [requireRole("User")] as const,
  request: {
    params: z.object({ id: z.uuid() }),
    ...body(z.object({ label: plainText(100).trim().min(1) }).strict()),
  },
  responses: { 200: json(Passkey, "Renamed"), 404: err("Not yours or unknown"), ...guarded },
});
const deleteRoute = createRoute({
  method: "delete",
  path: "/api/auth/passkeys/{id}",
  summary: "Delete one of your passkeys",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ id: z.uuid() }) },
  responses: { 204: { description: "Deleted" }, 404: err("Not yours or unknown"), ...guarded },
});

interface PasskeyRow {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: string;
  sign_count: string | number;
  label: string;
  transports: string[];
  aaguid: string | null;
  created_at: Date;
  last_used_at: Date | null;
}

const view = (r: PasskeyRow) => ({
  id: r.id,
  label: r.label,
  created_at: r.created_at.toISOString(),
  last_used_at: r.last_used_at?.toISOString() ?? null,
  transports: r.transports ?? [],
  aaguid: r.aaguid,
});

/** The challenge a client signed, read from its clientDataJSON. */
function challengeOf(response: z.infer<typeof CredentialJson>): string {
  try {
    const cd = JSON.parse(
      Buffer.from(String(response.response.clientDataJSON), "base64url").toString("utf8"),
    );
    if (typeof cd.challenge === "string" && cd.challenge.length <= 256) return cd.challenge;
  } catch { /* fall through */ }
  throw badRequest("invalid_response", "clientDataJSON is missing or malformed");
}

/** The session to keep when a factor changes: the caller's own, if it is a session. */
const keepCurrent = (p: Principal) => p.method === "session" ? p.credentialId : undefined;

const uuidBytes = (id: string) => new Uint8Array(Buffer.from(id.replaceAll("-", ""), "hex"));

/** Installs the passkey routes. */
export function installPasskeyRoutes(deps: Deps): void {
  const { ctx, users } = deps;
  const { sql, clock } = ctx;
  const base = ctx.core.publicBaseUrl ? new URL(ctx.core.publicBaseUrl) : undefined;
  const rpID = deps.settings.webauthnRpId ?? base?.hostname ?? "localhost";
  const origins = deps.settings.webauthnOrigins?.split(",").map((s) => s.trim()).filter(Boolean) ??
    [base?.origin ?? `http://localhost:${ctx.core.port}`];

  const storeChallenge = async (challenge: string, purpose: string, userId: string | null) => {
    await sql`insert into webauthn_challenges (challenge, purpose, user_id, expires_at)
              values (${challenge}, ${purpose}, ${userId}, ${new Date(
      clock.now() + CHALLENGE_MS,
    )})`;
  };
  /** Consumes a challenge (single use); null when unknown, expired or for another purpose. */
  const consume = async (challenge: string, purpose: string) => {
    const [row] = await sql<{ user_id: string | null; expires_at: Date }[]>`
      delete from webauthn_challenges where challenge = ${challenge} and purpose = ${purpose}
      returning user_id, expires_at`;
    return row && row.expires_at.getTime() > clock.now() ? row : null;
  };

  ctx.http.openapi(registerOptionsRoute, async (c) => {
    const p = await principalOf(c);
    const user = await users.byId(p.id);
    if (!user) throw notFound("the account no longer exists");
    // A passkey alone signs in, so adding one from a hijacked session would be a lasting
    // back door: the password is asked again first (ASVS 7.5.1). For a directory account
    // that is its directory password, checked by a bind as the user.
    if (!(await reauthenticate(deps, c, user, c.req.valid("json").current_password))) {
      await ctx.audit(c, {
        action: "passkey.register",
        target: `user:${p.name}`,
        outcome: "failure",
        details: { reason: "invalid_password" },
      });
      throw new HttpError(403, "invalid_password", "the current password is not correct");
    }
    const existing = await sql<
      PasskeyRow[]
    >`select * from user_passkeys where user_id = ${user.id}`;
    const options = await generateRegistrationOptions({
      rpName: deps.settings.webauthnRpName,
      rpID,
      userName: user.username,
      userDisplayName: user.display_name || user.username,
      userID: uuidBytes(user.id),
      attestationType: "none",
      excludeCredentials: existing.map((k) => ({
        id: k.credential_id,
        transports: k.transports,
      })),
      // Sign-in asks for a discoverable credential and user verification (it replaces
      // password + TOTP), so a passkey without either could never be used: require both
      // here, and ask the browser to report whether the key was stored (credProps).
      authenticatorSelection: { residentKey: "required", userVerification: "required" },
      extensions: { credProps: true },
      timeout: CHALLENGE_MS,
    });
    await storeChallenge(options.challenge, "register", user.id);
    return c.json(options as unknown as Record<string, unknown>, 200);
  });

  ctx.http.openapi(registerVerifyRoute, async (c) => {
    const p = await principalOf(c);
    const { response, label } = c.req.valid("json");
    const challenge = challengeOf(response);
    const stored = await consume(challenge, "register");
    if (!stored || stored.user_id !== p.id) {
      throw badRequest(
        "invalid_challenge",
        "the registration challenge is unknown, used or expired",
      );
    }
    let result;
    try {
      result = await verifyRegistrationResponse({
        response: response as never,
        expectedChallenge: challenge,
        expectedOrigin: origins,
        expectedRPID: rpID,
        requireUserVerification: true,
      });
      const rk = (response as { clientExtensionResults?: { credProps?: { rk?: unknown } } })
        .clientExtensionResults?.credProps?.rk;
      if (rk === false) {
        throw new Error("the authenticator did not store a discoverable credential");
      }
    } catch (e) {
      await ctx.audit(c, {
        action: "passkey.register",
        target: `user:${p.name}`,
        outcome: "failure",
        details: { reason: e instanceof Error ? e.message.slice(0, 200) : "invalid" },
      });
      if (e instanceof Error && /user verification|discoverable/i.test(e.message)) {
        throw badRequest(
          "passkey_not_usable",
          "this authenticator cannot sign in here: passkeys must verify the user (PIN or " +
            "biometric) and be stored on the authenticator (discoverable)",
        );
      }
      throw badRequest("verification_failed", "the passkey registration did not verify");
    }
    if (!result.verified) {
      throw badRequest("verification_failed", "the passkey registration did not verify");
    }
    const { credential, aaguid } = result.registrationInfo;
    const [row] = await sql<PasskeyRow[]>`
      insert into user_passkeys (user_id, credential_id, public_key, sign_count, label, transports,
                                 aaguid, created_at)
      values (${p.id}, ${credential.id}, ${Buffer.from(credential.publicKey).toString("base64url")},
              ${credential.counter}, ${label ?? "Passkey"},
              ${sql.json((credential.transports ?? []) as never)}, ${aaguid}, ${new Date(
      clock.now(),
    )})
      on conflict (credential_id) do nothing
      returning *`;
    if (!row) throw badRequest("already_registered", "this passkey is already registered");
    // A new sign-in factor ends the user's other sessions (ASVS 7.4.3).
    const revoked = await deps.sessions.revokeAll(p.id, keepCurrent(p));
    await ctx.audit(c, {
      action: "passkey.register",
      target: `user:${p.name}`,
      details: { passkey: row.id, label: row.label, revoked_sessions: revoked },
    });
    return c.json(view(row), 201);
  });

  ctx.http.openapi(authOptionsRoute, async (c) => {
    const options = await generateAuthenticationOptions({
      rpID,
      // A passkey sign-in replaces password + TOTP, so the authenticator must verify the
      // user (PIN or biometric): possession alone would be a single factor.
      userVerification: "required",
      timeout: CHALLENGE_MS,
    });
    await storeChallenge(options.challenge, "authenticate", null);
    return c.json(options as unknown as Record<string, unknown>, 200);
  });

  ctx.http.openapi(authVerifyRoute, async (c) => {
    const { response, bearer } = c.req.valid("json");
    const fail = async (reason: string, username?: string) => {
      await ctx.audit(c, {
        action: "auth.login",
        target: username ? `user:${username}` : undefined,
        outcome: "failure",
        details: { method: "passkey", reason },
      });
      return new HttpError(401, "passkey_rejected", "the passkey was not accepted");
    };
    const challenge = challengeOf(response);
    if (!(await consume(challenge, "authenticate"))) throw await fail("invalid_challenge");
    const [key] = await sql<PasskeyRow[]>`
      select * from user_passkeys where credential_id = ${response.id}`;
    if (!key) throw await fail("unknown_credential");
    let user = await users.byId(key.user_id);
    const external = deps.external?.current;
    // A directory account the directory plugin disabled may be enabled again by the
    // re-check below (as by a password sign-in); an admin's own disable is final there.
    if (
      !user || (user.auth_source === "local" && user.disabled) ||
      (user.auth_source === "directory" && !external)
    ) {
      throw await fail("account_unavailable", user?.username);
    }
    let result;
    try {
      result = await verifyAuthenticationResponse({
        response: response as never,
        expectedChallenge: challenge,
        expectedOrigin: origins,
        expectedRPID: rpID,
        credential: {
          id: key.credential_id,
          publicKey: new Uint8Array(Buffer.from(key.public_key, "base64url")),
          counter: Number(key.sign_count),
          transports: key.transports as never,
        },
        requireUserVerification: true,
      });
    } catch {
      throw await fail("verification_failed", user.username);
    }
    if (!result.verified) throw await fail("verification_failed", user.username);
    await sql`update user_passkeys set sign_count = ${result.authenticationInfo.newCounter},
              last_used_at = ${new Date(clock.now())} where id = ${key.id}`;
    if (user.auth_source === "directory") {
      // Passwordless must not mean directory-less: the account is checked against its
      // provider (only after the assertion verified, so strangers cannot make us query
      // the directory) and refreshed, exactly as a password sign-in would be.
      const outcome = await external!.recheck(user);
      if (outcome.status === "denied") {
        await fail(outcome.reason, user.username);
        throw new HttpError(403, outcome.code, outcome.message);
      }
      if (outcome.status !== "ok" || outcome.userId !== user.id) {
        throw await fail(
          outcome.status === "invalid" ? outcome.reason : "recheck_failed",
          user.username,
        );
      }
      user = await users.byId(user.id);
      if (!user || user.disabled) throw await fail("account_unavailable", user?.username);
    }
    if (user.auth_reset_required) {
      await fail("auth_reset_required", user.username);
      throw new HttpError(423, "auth_reset_required", "an admin must reset this account first");
    }
    return c.json(await issueSession(deps, c, user, "passkey", bearer), 200);
  });

  ctx.http.openapi(listRoute, async (c) => {
    const p = await principalOf(c);
    const rows = await sql<PasskeyRow[]>`
      select * from user_passkeys where user_id = ${p.id} order by created_at`;
    return c.json({ passkeys: rows.map(view) }, 200);
  });

  ctx.http.openapi(renameRoute, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    const { label } = c.req.valid("json");
    const [row] = await sql<PasskeyRow[]>`
      update user_passkeys set label = ${label} where id = ${id} and user_id = ${p.id} returning *`;
    if (!row) throw notFound("no such passkey");
    await ctx.audit(c, { action: "passkey.rename", target: `passkey:${id}`, details: { label } });
    return c.json(view(row), 200);
  });

  ctx.http.openapi(deleteRoute, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    const r = await sql`delete from user_passkeys where id = ${id} and user_id = ${p.id}`;
    if (r.count === 0) throw notFound("no such passkey");
    // Removing a factor ends the other sessions too: one may have been signed in with it.
    const revoked = await deps.sessions.revokeAll(p.id, keepCurrent(p));
    await ctx.audit(c, {
      action: "passkey.delete",
      target: `passkey:${id}`,
      details: { revoked_sessions: revoked },
    });
    return c.body(null, 204);
  });
}

/**
 * First start: the bootstrap phase (vault setup or unlock, then the first admin, then
 * normal login). Vault setup and admin setup are accepted only from loopback unless the
 * one-time bootstrap token printed to the console at start is sent; there is never a
 * default account or password.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { timingSafeEqual } from "node:crypto";
import { getPrincipal } from "../../core/auth.ts";
import { conflict, forbidden, tooManyRequests } from "../../core/errors.ts";
import type { AppEnv } from "../../core/http.ts";
import type { Deps } from "./deps.ts";
import { body, clientIp, err, isLoopback, json, plainText } from "./http_util.ts";
import { MAX_PASSWORD_LENGTH } from "./passwords.ts";
import { randomToken } from "./sessions.ts";

/** Bootstrap phases, as upstream names them. */
export type Phase =
  | "aegis_setup_required"
  | "aegis_unlock_required"
  | "admin_setup_required"
  | "login_required";

const State = z.object({
  phase: z.enum([
    "aegis_setup_required",
    "aegis_unlock_required",
    "admin_setup_required",
    "login_required",
  ]),
  aegis: z.object({
    state: z.enum(["unconfigured", "locked", "unlocked"]),
    mode: z.enum(["passphrase", "keyfile"]).nullable(),
  }),
}).openapi("BootstrapState");

const Cipher = z.object({
  cipher: z.string().min(12, "at least 12 characters").max(1024),
  bootstrap_token: z.string().max(200).optional(),
}).strict();

const stateRoute = createRoute({
  method: "get",
  path: "/api/bootstrap/state",
  summary: "Which first-start step is next",
  responses: { 200: json(State, "Phase") },
});

const aegisSetupRoute = createRoute({
  method: "post",
  path: "/api/bootstrap/aegis/setup",
  summary:
    "Set the vault passphrase (phase aegis_setup_required; loopback, bootstrap token or Admin)",
  request: body(Cipher),
  responses: {
    200: json(State, "Vault set up and unlocked"),
    400: err("Bad body"),
    403: err("Not loopback, no valid bootstrap token, not an Admin"),
    409: err("invalid_phase"),
  },
});

const aegisUnlockRoute = createRoute({
  method: "post",
  path: "/api/bootstrap/aegis/unlock",
  summary: "Unlock the vault with its passphrase (phase aegis_unlock_required)",
  request: body(Cipher),
  responses: {
    200: json(State, "Unlocked"),
    400: err("Bad body"),
    403: err("Wrong passphrase"),
    409: err("invalid_phase"),
    429: err("Too many wrong passphrases"),
  },
});

const adminSetupRoute = createRoute({
  method: "post",
  path: "/api/bootstrap/admin/setup",
  summary: "Create the first admin (only while none exists; loopback or bootstrap token)",
  request: body(
    z.object({
      username: plainText(64).trim().min(1),
      password: z.string().min(1).max(MAX_PASSWORD_LENGTH * 4),
      display_name: z.string().max(200).optional(),
      bootstrap_token: z.string().max(200).optional(),
    }).strict(),
  ),
  responses: {
    201: json(
      z.object({ status: z.literal("ok"), username: z.string(), role: z.literal("Admin") }),
      "Admin created; sign in next (MFA setup follows)",
    ),
    400: err("Bad body or weak password"),
    403: err("Not loopback and no valid bootstrap token"),
    409: err("invalid_phase"),
  },
});

/** What the plugin keeps from bootstrap. */
export interface Bootstrap {
  token(): string | null;
  phase(): Promise<Phase>;
}

/** Registers the bootstrap routes and prints the one-time token when needed. */
export async function registerBootstrapRoutes(deps: Deps): Promise<Bootstrap> {
  const { ctx, users, vault, throttle } = deps;
  let token: string | null = null;
  if (deps.settings.bootstrapTokenEnabled && !(await users.anyAdmin())) {
    token = randomToken("bbt_");
    // Printed to the console only (log files must never hold a usable secret), and only
    // by the real CLI: engines embedded in tests read it from the service instead.
    if (Deno.mainModule.endsWith("/main.ts")) {
      console.error(
        `\nNo admin account exists yet. Create one from this machine with\n` +
          `  deno task start users create-admin --username NAME\n` +
          `or remotely with POST /api/bootstrap/admin/setup and this one-time bootstrap value:\n` +
          `  ${token}\n`,
      );
      ctx.log.info("no admin exists: a one-time bootstrap value was printed to the console");
    }
  }

  const phase = async (): Promise<Phase> => {
    const s = vault.state();
    if (s === "unconfigured") return "aegis_setup_required";
    if (s === "locked") return "aegis_unlock_required";
    if (!(await users.anyAdmin())) return "admin_setup_required";
    return "login_required";
  };
  const state = async () => ({
    phase: await phase(),
    aegis: { state: vault.state(), mode: vault.mode() },
  });
  const requirePhase = async (want: Phase) => {
    const now = await phase();
    if (now !== want) {
      throw conflict("invalid_phase", `the bootstrap phase is ${now}`, { phase: now });
    }
  };
  const tokenMatches = (sent: string | undefined) => {
    if (!token || !sent) return false;
    const a = new TextEncoder().encode(sent);
    const b = new TextEncoder().encode(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  const requireLocalOrToken = async (c: Context<AppEnv>, sent: string | undefined) => {
    if (isLoopback(c) || tokenMatches(sent ?? c.req.header("x-borealis-bootstrap-token"))) return;
    // After a force-reset in passphrase mode the vault needs setting up again while
    // admins exist (and the one-time value is gone): a signed-in Admin may do it.
    const p = await getPrincipal(c).catch(() => null);
    if (p?.kind === "operator" && p.role === "Admin" && !p.readOnly) return;
    throw forbidden(
      "bootstrap_not_allowed",
      "bootstrap setup is accepted from the engine's own machine, from a signed-in Admin, " +
        "or with the bootstrap value printed at start",
    );
  };

  ctx.http.openapi(stateRoute, async (c) => c.json(await state(), 200));

  ctx.http.openapi(aegisSetupRoute, async (c) => {
    const b = c.req.valid("json");
    await requirePhase("aegis_setup_required");
    await requireLocalOrToken(c, b.bootstrap_token);
    await vault.setup(b.cipher);
    await ctx.audit(c, { action: "aegis.setup", target: "aegis" });
    return c.json(await state(), 200);
  });

  ctx.http.openapi(aegisUnlockRoute, async (c) => {
    const b = c.req.valid("json");
    await requirePhase("aegis_unlock_required");
    const ip = clientIp(c);
    const wait = await throttle.waitMs("#aegis-unlock", ip);
    if (wait > 0) throw tooManyRequests(wait / 1000, "too many wrong passphrases; try later");
    try {
      await vault.unlock(b.cipher);
    } catch (e) {
      await throttle.fail("#aegis-unlock", ip);
      await ctx.audit(c, { action: "aegis.unlock", target: "aegis", outcome: "failure" });
      throw e;
    }
    await throttle.succeed("#aegis-unlock");
    await ctx.audit(c, { action: "aegis.unlock", target: "aegis" });
    return c.json(await state(), 200);
  });

  ctx.http.openapi(adminSetupRoute, async (c) => {
    const b = c.req.valid("json");
    await requirePhase("admin_setup_required");
    await requireLocalOrToken(c, b.bootstrap_token);
    const user = await users.create({
      username: b.username,
      password: b.password,
      role: "Admin",
      displayName: b.display_name,
      onlyIfNoAdmin: true,
    });
    token = null;
    await ctx.audit(c, {
      action: "user.create",
      target: `user:${user.username}`,
      details: { role: "Admin", via: "bootstrap" },
    });
    return c.json({ status: "ok" as const, username: user.username, role: "Admin" as const }, 201);
  });

  return { token: () => token, phase };
}

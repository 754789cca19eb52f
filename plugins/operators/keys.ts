/**
 * Service keys the operators plugin provides (kept apart from mod.ts so its own
 * modules, such as the CLI command, can import them without a cycle).
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import { serviceKey } from "../../core/plugin.ts";
import type { NewUser, UserRow } from "./users.ts";

/** What other plugins (and tests, CLI commands) may do with operator accounts. */
export interface OperatorsService {
  /** Creates an account (password rules apply). */
  createUser(input: NewUser): Promise<UserRow>;
  userByName(username: string): Promise<UserRow | undefined>;
  /** Opens a session for a user; returns its bearer value. */
  createSession(userId: string, method?: string): Promise<{ id: string; token: string }>;
  /** Grants Dev Mode to a session for `ttlSeconds` (0 ends it). */
  setDevMode(sessionId: string, ttlSeconds: number): Promise<void>;
  /** Replaces a user's site assignments. */
  assignSites(userId: string, siteIds: readonly number[]): Promise<void>;
  /** The one-time bootstrap token while no admin exists (null afterwards). */
  bootstrapToken(): string | null;
  /** Revokes every session and API token of a user; returns how many sessions ended. */
  revokeAll(userId: string): Promise<number>;
  /** Drops cached principals after another plugin changed a user row (role, disabled). */
  invalidate(): void;
  /**
   * The credentials (session or API token ids, `Principal.credentialId`) among `ids`
   * that are still live, with the role and sites they carry now.
   */
  liveCredentials(
    ids: readonly string[],
  ): Promise<Map<string, { role: "Admin" | "User"; sites: "all" | number[] }>>;
  /**
   * Calls `fn` after any change that may end or alter a credential — here or on another
   * instance (sign-out, revocation, password change, disable, role or sites).
   */
  onAuthChanged(fn: () => void): void;
  /** Installs the authenticator `POST /api/auth/login` consults (the directory plugin). */
  setExternalAuthenticator(auth: ExternalAuthenticator): void;
  /** How to reach these accounts (those that exist), with what each may see. */
  contacts(userIds: readonly string[]): Promise<OperatorContact[]>;
}

/** An account's address and scope, for plugins that send it mail. */
export interface OperatorContact {
  id: string;
  username: string;
  /** Null when the operator has not set one. */
  email: string | null;
  role: "Admin" | "User";
  disabled: boolean;
  /** Sites a User is assigned to; "all" for an Admin. */
  sites: "all" | number[];
}

/** A login the operators plugin hands to an external authenticator. */
export interface ExternalLogin {
  username: string;
  password: string;
  /** The account with that name, if any (only `auth_source = 'directory'` ones are passed). */
  user: UserRow | undefined;
  ip: string | null;
}

/**
 * The outcome of an external login: `skip` (not ours: the local check runs, so timing
 * stays the same for unknown names), `ok` (the account, created or refreshed, may
 * continue to the MFA step), `invalid` (401, counts as a failure), or `denied` (403
 * with a code, e.g. `directory_user_disabled`).
 */
export type ExternalLoginResult =
  | { status: "skip" }
  | { status: "ok"; userId: string }
  | { status: "invalid"; reason: string }
  | { status: "denied"; code: string; message: string; reason: string };

/** Checks credentials of directory accounts and unknown usernames. */
export interface ExternalAuthenticator {
  /**
   * A password sign-in (and the password re-entered before a factor change) of a
   * directory account or an unknown name.
   */
  authenticate(login: ExternalLogin): Promise<ExternalLoginResult>;
  /**
   * Re-checks an existing account of this authenticator without its password, before a
   * passkey sign-in gets a session: the account must still exist there, not be disabled
   * and still map to a role; role and sites are refreshed as a password sign-in would.
   * `ok` lets the sign-in go on; `denied` is a 403 with its code; `invalid` (including
   * an unreachable directory) is the usual 401. Never `skip`.
   */
  recheck(user: UserRow): Promise<ExternalLoginResult>;
}

/** Scope checks for site-scoped objects. */
export interface SiteScope {
  /** True when `p` may see objects of `siteId` (`null`: unassigned, admins only). */
  canSee(p: Principal, siteId: number | null): boolean;
  /** Site ids to filter by, or null when the principal sees all. */
  filter(p: Principal): readonly number[] | null;
}

/** `ctx.use(operatorsKey)` in a plugin that requires "operators". */
export const operatorsKey = serviceKey<OperatorsService>("operators.accounts");
/** `ctx.use(siteScopeKey)`: the site-scope rule in one place. */
export const siteScopeKey = serviceKey<SiteScope>("operators.site_scope");

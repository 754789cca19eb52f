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

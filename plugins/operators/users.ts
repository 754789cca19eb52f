/**
 * Operator accounts: creation, lookup by case-insensitive username, password checks
 * with rehash-on-login, roles, site assignments and the last-admin rule.
 *
 * @module
 */
import type postgres from "postgres";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, type HttpError, notFound } from "../../core/errors.ts";
import type { BreachChecker } from "./breached.ts";
import {
  DEFAULT_HASH_PARAMS,
  type HashParams,
  hashPassword,
  needsRehash,
  passwordProblem,
  verifyPassword,
} from "./passwords.ts";

/** Operator roles. */
export type Role = "Admin" | "User";

/** A user row as the plugin reads it. */
export interface UserRow {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  password_hash: string | null;
  mfa_exempt: boolean;
  mfa_enabled: boolean;
  mfa_secret: string | null;
  mfa_last_step: string | number;
  auth_source: "local" | "directory";
  disabled: boolean;
  auth_reset_required: boolean;
  last_login: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** What a new account needs. */
export interface NewUser {
  username: string;
  password?: string;
  role: Role;
  displayName?: string;
  /** Skip MFA for this user (an admin's decision). */
  mfaExempt?: boolean;
  authSource?: "local" | "directory";
  sites?: readonly number[];
  /** Bootstrap: create only while no admin exists (checked under a lock). */
  onlyIfNoAdmin?: boolean;
  /**
   * Runs inside the transaction that inserts the account (use only `tx`): another
   * plugin's rows that belong to the account, such as its directory link, are written
   * together with it; throwing rolls the account back.
   */
  inTransaction?: (tx: postgres.TransactionSql, user: UserRow) => Promise<void>;
}

/** The public shape of a user in API responses. */
export interface UserView {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  mfa_enabled: boolean;
  mfa_exempt: boolean;
  auth_source: string;
  disabled: boolean;
  last_login: string | null;
  created_at: string;
  updated_at: string;
  site_ids: number[];
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

const isUniqueViolation = (e: unknown) =>
  typeof e === "object" && e !== null && (e as { code?: string }).code === "23505";

/** A hash that never matches, so unknown usernames cost the same as known ones. */
let dummyHash: Promise<string> | undefined;

/** Accounts service. */
export class UserStore {
  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    readonly hashParams: HashParams = DEFAULT_HASH_PARAMS,
    /** Optional breached-password lookup, consulted after the offline rules pass. */
    private readonly breach?: BreachChecker,
  ) {}

  /** The rule a new password breaks (offline rules, then the breach corpus), or null. */
  async #passwordProblem(password: string, username: string): Promise<HttpError | null> {
    return await passwordProblem(password, username) ?? await this.breach?.problem(password) ??
      null;
  }

  /** Finds a user by name, ignoring case. */
  async byUsername(username: string): Promise<UserRow | undefined> {
    const [row] = await this.sql<UserRow[]>`
      select * from users where lower(username) = lower(${username})`;
    return row;
  }

  async byId(id: string): Promise<UserRow | undefined> {
    const [row] = await this.sql<UserRow[]>`select * from users where id = ${id}`;
    return row;
  }

  /** Like {@link byUsername} but 404 when missing. */
  async require(username: string): Promise<UserRow> {
    const u = await this.byUsername(username);
    if (!u) throw notFound(`no user ${username}`);
    return u;
  }

  /** Creates an account (validating the name and password rules). */
  async create(input: NewUser): Promise<UserRow> {
    if (!USERNAME.test(input.username)) {
      throw badRequest(
        "invalid_username",
        "usernames are 1–64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
      );
    }
    let hash: string | null = null;
    if (input.password !== undefined) {
      const problem = await this.#passwordProblem(input.password, input.username);
      if (problem) throw problem;
      hash = await hashPassword(input.password, this.hashParams);
    } else if ((input.authSource ?? "local") === "local") {
      throw badRequest("missing_password", "local accounts need a password");
    }
    const now = new Date(this.clock.now());
    // Only a duplicate name on the users insert itself means "username taken".
    let inserted = false;
    try {
      return await this.sql.begin(async (tx) => {
        if (input.onlyIfNoAdmin) {
          // Serialises racing bootstrap requests so only one creates "the first" admin.
          await tx`select pg_advisory_xact_lock(hashtext('operators.bootstrap_admin'))`;
          const [n] = await tx<{ n: number }[]>`
            select count(*)::int as n from users where role = 'Admin'`;
          if (n!.n > 0) throw conflict("invalid_phase", "an admin already exists");
        }
        const [row] = await tx<UserRow[]>`
          insert into users (username, display_name, role, password_hash, mfa_exempt, auth_source,
                             created_at, updated_at)
          values (${input.username}, ${input.displayName ?? ""}, ${input.role}, ${hash},
                  ${input.mfaExempt ?? false}, ${input.authSource ?? "local"}, ${now}, ${now})
          returning *`;
        inserted = true;
        for (const site of input.sites ?? []) {
          await tx`insert into user_site_assignments (user_id, site_id, assigned_at)
                   values (${row!.id}, ${site}, ${now}) on conflict do nothing`;
        }
        await input.inTransaction?.(tx, row!);
        return row!;
      });
    } catch (e) {
      if (isUniqueViolation(e) && !inserted) {
        throw conflict("username_taken", `a user named ${input.username} already exists`);
      }
      throw e;
    }
  }

  /**
   * Checks a password. Unknown users and users without a password still pay for one
   * scrypt run, so timing does not reveal which usernames exist.
   */
  async checkPassword(user: UserRow | undefined, password: string): Promise<boolean> {
    if (!user?.password_hash) {
      dummyHash ??= hashPassword("not-a-real-password-" + crypto.randomUUID(), this.hashParams);
      await verifyPassword(password, await dummyHash);
      return false;
    }
    const ok = await verifyPassword(password, user.password_hash);
    if (ok && needsRehash(user.password_hash, this.hashParams)) {
      const fresh = await hashPassword(password, this.hashParams);
      await this.sql`update users set password_hash = ${fresh} where id = ${user.id}`;
    }
    return ok;
  }

  /** Sets a new password (rules checked). */
  async setPassword(user: UserRow, password: string): Promise<void> {
    const problem = await this.#passwordProblem(password, user.username);
    if (problem) throw problem;
    const hash = await hashPassword(password, this.hashParams);
    await this.sql`update users set password_hash = ${hash}, auth_reset_required = false,
                   updated_at = ${new Date(this.clock.now())} where id = ${user.id}`;
  }

  /** Site ids assigned to a user. */
  async siteIds(userId: string): Promise<number[]> {
    const rows = await this.sql<{ site_id: number }[]>`
      select site_id from user_site_assignments where user_id = ${userId} order by site_id`;
    return rows.map((r) => r.site_id);
  }

  /** Usernames of these accounts (those that exist). */
  async usernames(ids: readonly string[]): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const rows = await this.sql<{ id: string; username: string }[]>`
      select id, username from users where id = any(${[...ids]}::uuid[])`;
    return new Map(rows.map((r) => [r.id, r.username]));
  }

  /**
   * Writes what a directory says about one of its accounts: role and display name, and
   * (`enable`) lifts a disable the directory itself had set. Local accounts are untouched.
   */
  async applyDirectory(
    userId: string,
    change: { role: Role; displayName: string; enable: boolean },
  ): Promise<void> {
    await this.sql`
      update users set role = ${change.role}, display_name = ${change.displayName},
        disabled = case when ${change.enable} then false else disabled end,
        updated_at = ${new Date(this.clock.now())}
      where id = ${userId} and auth_source = 'directory'`;
  }

  /** Disables an enabled directory account; returns its role, or null when nothing changed. */
  async disableDirectory(userId: string): Promise<Role | null> {
    const r = await this.sql<{ role: Role }[]>`
      update users set disabled = true, updated_at = ${new Date(this.clock.now())}
      where id = ${userId} and auth_source = 'directory' and not disabled
      returning role`;
    return r[0]?.role ?? null;
  }

  /**
   * Turns a directory account into a local one without a password (an admin sets one);
   * `inTransaction` runs in the same transaction (the directory drops its link there).
   */
  async convertToLocal(
    userId: string,
    inTransaction?: (tx: Sql) => Promise<void>,
  ): Promise<void> {
    await this.sql.begin(async (txn) => {
      const tx = txn as unknown as Sql;
      await inTransaction?.(tx);
      await tx`update users set auth_source = 'local', password_hash = null,
                 updated_at = ${new Date(this.clock.now())} where id = ${userId}`;
    });
  }

  /** Number of enabled admins. */
  async adminCount(): Promise<number> {
    const [r] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from users where role = 'Admin' and not disabled`;
    return r!.n;
  }

  /** True when any admin account exists (enabled or not). */
  async anyAdmin(): Promise<boolean> {
    const [r] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from users where role = 'Admin'`;
    return r!.n > 0;
  }

  /** Number of enabled local (not directory) admins. */
  async localAdminCount(): Promise<number> {
    const [r] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from users
      where role = 'Admin' and not disabled and auth_source = 'local'`;
    return r!.n;
  }

  /**
   * Refuses a change (delete, demote, disable) that would leave no enabled admin, or no
   * enabled *local* admin. The directory demotes and disables its accounts on its own
   * authority at any sign-in or sync, so directory admins never count as the way back
   * in: the last enabled local admin stays, whatever directory admins exist.
   */
  async guardLastAdmin(user: UserRow): Promise<void> {
    if (user.role !== "Admin" || user.disabled) return;
    if (user.auth_source === "local" && (await this.localAdminCount()) <= 1) {
      throw conflict(
        "last_admin",
        "this is the last enabled local admin; directory admins cannot be the only way in " +
          "(the directory may demote or disable them at any time): create another local admin first",
      );
    }
    if ((await this.adminCount()) <= 1) {
      throw conflict("last_admin", "this is the last enabled admin; create another admin first");
    }
  }

  async view(user: UserRow): Promise<UserView> {
    return toView(user, await this.siteIds(user.id));
  }

  async list(): Promise<UserView[]> {
    const users = await this.sql<UserRow[]>`select * from users order by lower(username)`;
    const sites = await this.sql<{ user_id: string; site_id: number }[]>`
      select user_id, site_id from user_site_assignments order by site_id`;
    const byUser = new Map<string, number[]>();
    for (const s of sites) byUser.set(s.user_id, [...(byUser.get(s.user_id) ?? []), s.site_id]);
    return users.map((u) => toView(u, byUser.get(u.id) ?? []));
  }
}

/** The public view of a user row. */
export function toView(u: UserRow, siteIds: number[]): UserView {
  return {
    id: u.id,
    username: u.username,
    display_name: u.display_name,
    role: u.role,
    mfa_enabled: u.mfa_enabled,
    mfa_exempt: u.mfa_exempt,
    auth_source: u.auth_source,
    disabled: u.disabled,
    last_login: u.last_login?.toISOString() ?? null,
    created_at: u.created_at.toISOString(),
    updated_at: u.updated_at.toISOString(),
    site_ids: u.role === "Admin" ? [] : siteIds,
  };
}

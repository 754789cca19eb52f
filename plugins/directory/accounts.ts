/**
 * Directory accounts: the external authenticator the operators login route consults,
 * just-in-time creation and refresh of `auth_source = 'directory'` users with their
 * mapped role and sites, sync (disabled or vanished in the directory, or no longer in a
 * mapped group → disabled here and every session revoked), and conversion to a local
 * account. A local account is never taken over: the operators plugin does not hand
 * local users to us, and a directory name that collides with a local one is refused.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import type { Auditor } from "../../core/audit.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { HttpError, notFound } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type {
  ExternalAuthenticator,
  ExternalLogin,
  ExternalLoginResult,
  OperatorsService,
  UserRow,
} from "../operators/mod.ts";
import {
  DirectoryConfigError,
  type DirectoryEntry,
  directoryHttpError,
  type DirectoryReader,
} from "./directory.ts";
import { normalizeDn } from "./escape.ts";
import { describeError, DirectoryUnavailable } from "./ldap.ts";
import { mapGroups, type Mapped } from "./mapping.ts";
import type { Provider, ProviderStore } from "./providers.ts";
import type { SitesService } from "../sites/mod.ts";

/** A cached directory account. */
export interface DirectoryLink {
  user_id: string;
  provider_id: string;
  dn: string;
  subject: string | null;
  disabled_by_directory: boolean;
}

/** Counts a sync reports. */
export interface SyncResult {
  checked: number;
  updated: number;
  disabled: number;
  enabled: number;
  unchanged: number;
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const SYSTEM: Principal = { kind: "system", id: "directory", name: "directory", sites: "all" };

type Denied = Extract<ExternalLoginResult, { status: "denied" }>;
const denied = (code: string, message: string, reason = code): Denied => ({
  status: "denied",
  code,
  message,
  reason,
});

/** Dependencies of {@link DirectoryAccounts}. */
export interface AccountsDeps {
  sql: Sql;
  clock: Clock;
  log: Logger;
  audit: Auditor;
  store: ProviderStore;
  reader: DirectoryReader;
  operators: OperatorsService;
  sites: SitesService;
}

/** Directory login, JIT accounts and sync. */
export class DirectoryAccounts implements ExternalAuthenticator {
  constructor(private readonly d: AccountsDeps) {}

  /** Called by `POST /api/auth/login` for directory users and unknown names. */
  async authenticate(login: ExternalLogin): Promise<ExternalLoginResult> {
    const { user } = login;
    if (user) return await this.#existing(user, login.password);
    const providers = await this.d.store.enabled();
    // No provider: let the local check run, so unknown names cost what they always did.
    if (providers.length === 0) return { status: "skip" };
    let unavailable = false;
    for (const p of providers) {
      let outcome;
      try {
        outcome = await this.d.reader.authenticate(
          p,
          await this.d.store.bindPassword(p),
          login.username,
          login.password,
        );
      } catch (e) {
        unavailable = this.#providerTrouble(p, e) || unavailable;
        continue;
      }
      if (outcome.kind === "not_found") continue;
      if (outcome.kind === "invalid") return { status: "invalid", reason: "directory_bind_failed" };
      return await this.#admit(p, outcome.entry, login.username, undefined);
    }
    return {
      status: "invalid",
      reason: unavailable ? "directory_unavailable" : "unknown_user",
    };
  }

  /**
   * The account's link and its enabled provider, or why a sign-in stops before the
   * directory is asked. An admin's own "disable" is final here; only the directory's own
   * may be lifted by the directory.
   */
  async #linked(user: UserRow): Promise<
    { link: DirectoryLink; p: Provider } | {
      refused: ExternalLoginResult;
    }
  > {
    const link = await this.link(user.id);
    if (!link) return { refused: { status: "invalid", reason: "directory_link_missing" } };
    if (user.disabled && !link.disabled_by_directory) {
      return { refused: { status: "invalid", reason: "account_disabled" } };
    }
    const p = await this.d.store.get(link.provider_id);
    if (!p?.enabled) return { refused: { status: "invalid", reason: "provider_disabled" } };
    return { link, p };
  }

  async #existing(user: UserRow, password: string): Promise<ExternalLoginResult> {
    const linked = await this.#linked(user);
    if ("refused" in linked) return linked.refused;
    const { link, p } = linked;
    let outcome;
    try {
      outcome = await this.d.reader.authenticate(
        p,
        await this.d.store.bindPassword(p),
        user.username,
        password,
      );
    } catch (e) {
      this.#providerTrouble(p, e);
      return { status: "invalid", reason: "directory_unavailable" };
    }
    if (outcome.kind === "not_found") {
      await this.#disable(user.id, "not_found");
      return { status: "invalid", reason: "directory_user_not_found" };
    }
    if (outcome.kind === "invalid") return { status: "invalid", reason: "directory_bind_failed" };
    if (link.subject && outcome.entry.subject && link.subject !== outcome.entry.subject) {
      return denied(
        "directory_identity_conflict",
        "this directory entry is not the one the account was created from; an admin must resolve it",
      );
    }
    return await this.#admit(p, outcome.entry, user.username, user);
  }

  /**
   * Called before a passkey sign-in of a directory account gets a session: the service
   * account searches the user with the provider's filter (no password: the passkey was
   * the proof) and the same rules as a password sign-in apply — gone → disabled here
   * (401), disabled in the directory or no mapped group → 403 with the login's codes,
   * otherwise role, sites and name are refreshed. An unreachable provider refuses (401
   * with reason `directory_unavailable`, as the password path does).
   */
  async recheck(user: UserRow): Promise<ExternalLoginResult> {
    const linked = await this.#linked(user);
    if ("refused" in linked) return linked.refused;
    const { link, p } = linked;
    let entry: DirectoryEntry | null;
    try {
      entry = await this.d.reader.lookup(p, await this.d.store.bindPassword(p), user.username);
    } catch (e) {
      this.#providerTrouble(p, e);
      return { status: "invalid", reason: "directory_unavailable" };
    }
    if (!entry || (link.subject && entry.subject && link.subject !== entry.subject)) {
      // A different entry under the same name is not this account: like a vanished one.
      await this.#disable(user.id, "not_found");
      return { status: "invalid", reason: "directory_user_not_found" };
    }
    return await this.#admit(p, entry, user.username, user);
  }

  /**
   * Logs why a provider could not answer; true when it was unreachable. Vault errors
   * (locked) propagate; anything the directory said is the provider's problem, not a 500.
   */
  #providerTrouble(p: Provider, e: unknown): boolean {
    if (e instanceof HttpError) throw e;
    if (e instanceof DirectoryUnavailable) {
      this.d.log.warn(`directory provider "${p.name}" unavailable: ${e.message}`);
      return true;
    }
    const why = e instanceof DirectoryConfigError ? e.message : describeError(e, p);
    this.d.log.warn(`directory provider "${p.name}" failed: ${why}`);
    return false;
  }

  /** Creates or refreshes the account for a directory entry that just authenticated. */
  async #admit(
    p: Provider,
    entry: DirectoryEntry,
    typed: string,
    existing: UserRow | undefined,
    retried = false,
  ): Promise<ExternalLoginResult> {
    const mapped = mapGroups(p, entry.groups);
    if (entry.disabled) {
      if (existing) await this.#disable(existing.id, "disabled_in_directory");
      return denied("directory_user_disabled", "this account is disabled in the directory");
    }
    if (!mapped.role) {
      if (existing) await this.#disable(existing.id, "no_mapped_group");
      return denied(
        "directory_no_access",
        "your directory account is in no group mapped to a Borealis role; ask an admin",
      );
    }
    if (existing) {
      await this.#refresh(p, existing.id, entry, mapped, true);
      return { status: "ok", userId: existing.id };
    }
    const username = entry.username || typed;
    if (!USERNAME.test(username)) {
      return denied(
        "directory_username_unusable",
        "the directory username cannot be used here (1–64 letters, digits, '.', '_', '@', '-')",
      );
    }
    const clash = await this.d.operators.userByName(username);
    if (clash) {
      const link = clash.auth_source === "directory" ? await this.link(clash.id) : undefined;
      const same = link?.provider_id === p.id &&
        (link.subject && entry.subject
          ? link.subject === entry.subject
          : sameDn(link.dn, entry.dn));
      if (!same) {
        await this.d.audit(null, {
          action: "directory.identity_conflict",
          target: `user:${username}`,
          outcome: "denied",
          actor: SYSTEM,
          details: { provider: p.name, existing_source: clash.auth_source },
        });
        return denied(
          "directory_identity_conflict",
          `an account named ${username} already exists and does not come from this directory entry; ` +
            "local and directory identities are never merged",
        );
      }
      if (clash.disabled && !link!.disabled_by_directory) {
        return { status: "invalid", reason: "account_disabled" };
      }
      await this.#refresh(p, clash.id, entry, mapped, true);
      return { status: "ok", userId: clash.id };
    }
    let created: UserRow;
    const now = new Date(this.d.clock.now());
    try {
      created = await this.d.operators.createUser({
        username,
        role: mapped.role,
        authSource: "directory",
        displayName: entry.display_name,
        sites: await this.#knownSites(mapped.site_ids),
        // The link is written in the account's own transaction: an account without its
        // link could never sign in again, and no half-made account is ever visible.
        inTransaction: async (tx, row) => {
          await tx`
            insert into directory_users (user_id, provider_id, dn, subject, mail, groups,
                                         last_login_at, last_sync_at, created_at)
            values (${row.id}, ${p.id}, ${entry.dn}, ${entry.subject}, ${entry.mail},
                    ${tx.json(entry.groups)}, ${now}, ${now}, ${now})`;
        },
      });
    } catch (e) {
      // Two first logins racing: the loser finds the winner's account on a second pass.
      if (e instanceof HttpError && e.code === "username_taken" && !retried) {
        return await this.#admit(p, entry, typed, undefined, true);
      }
      throw e;
    }
    await this.d.audit(null, {
      action: "directory.user_created",
      target: `user:${username}`,
      actor: SYSTEM,
      details: { provider: p.name, role: mapped.role, site_ids: mapped.site_ids },
    });
    return { status: "ok", userId: created.id };
  }

  /** Writes the directory's current view of an account; returns what changed. */
  async #refresh(
    p: Provider,
    userId: string,
    entry: DirectoryEntry,
    mapped: Mapped,
    login: boolean,
  ): Promise<"updated" | "enabled" | "unchanged"> {
    const now = new Date(this.d.clock.now());
    const [before, link] = await Promise.all([
      this.d.operators.userById(userId),
      this.link(userId),
    ]);
    if (!before || !link) throw notFound("the directory account vanished");
    const beforeSites = await this.d.operators.siteIds(userId);
    const sites = await this.#knownSites(mapped.site_ids);
    const enable = before.disabled && link.disabled_by_directory;
    const roleChanged = before.role !== mapped.role;
    const sitesChanged = JSON.stringify(beforeSites.map(Number)) !== JSON.stringify(sites);
    await this.d.operators.applyDirectory(userId, {
      role: mapped.role!,
      displayName: entry.display_name,
      enable,
    });
    await this.d.sql`
      update directory_users set dn = ${entry.dn}, subject = coalesce(subject, ${entry.subject}),
        mail = ${entry.mail}, groups = ${this.d.sql.json(entry.groups)},
        disabled_by_directory = false, disabled_reason = null, disabled_at = null,
        last_sync_at = ${now}, last_login_at = case when ${login} then ${now}::timestamptz
                                                    else last_login_at end
      where user_id = ${userId}`;
    if (sitesChanged) await this.d.operators.assignSites(userId, sites);
    else if (roleChanged || enable) this.d.operators.invalidate();
    if (before.role === "Admin" && mapped.role !== "Admin") await this.#adminsLeft(userId);
    if (roleChanged || sitesChanged) {
      await this.d.audit(null, {
        action: "directory.user_updated",
        target: `user:${userId}`,
        actor: SYSTEM,
        details: { provider: p.name, role: mapped.role, site_ids: sites },
      });
    }
    return enable ? "enabled" : roleChanged || sitesChanged ? "updated" : "unchanged";
  }

  /** Disables an account because of the directory and revokes its sessions and tokens. */
  async #disable(userId: string, reason: string): Promise<boolean> {
    const now = new Date(this.d.clock.now());
    const role = await this.d.operators.disableDirectory(userId);
    if (role) {
      await this.d.sql`
        update directory_users set disabled_by_directory = true, disabled_reason = ${reason},
          disabled_at = ${now}, last_sync_at = ${now}
        where user_id = ${userId}`;
    }
    await this.d.operators.revokeAll(userId);
    if (role) {
      await this.d.audit(null, {
        action: "directory.user_disabled",
        target: `user:${userId}`,
        actor: SYSTEM,
        details: { reason },
      });
      if (role === "Admin") await this.#adminsLeft(userId);
    }
    return role !== null;
  }

  /**
   * The directory is the authority over its accounts, so a demotion or disable applies
   * even to the last directory admin (an admin removed from the admin group must lose
   * access at once). The operators plugin keeps at least one enabled local admin for
   * exactly this reason; should none exist (accounts from before that rule), say loudly
   * how to get back in.
   */
  async #adminsLeft(userId: string): Promise<void> {
    if (await this.d.operators.enabledAdminCount() > 0) return;
    this.d.log.warn(
      "the directory removed the last enabled admin; no one can administer this engine until " +
        "an admin is created from the server shell: deno task start users create-admin --username NAME",
    );
    await this.d.audit(null, {
      action: "directory.no_admin_left",
      target: `user:${userId}`,
      outcome: "failure",
      actor: SYSTEM,
    });
  }

  /** The mapped site ids that still name a site, ascending. */
  async #knownSites(ids: readonly number[]): Promise<number[]> {
    if (ids.length === 0) return [];
    const missing = new Set(await this.d.sites.missing(ids));
    return [...new Set(ids)].filter((id) => !missing.has(id)).sort((a, b) => a - b);
  }

  /** The directory link of an account. */
  async link(userId: string): Promise<DirectoryLink | undefined> {
    const [row] = await this.d.sql<DirectoryLink[]>`
      select user_id, provider_id, dn, subject, disabled_by_directory
      from directory_users where user_id = ${userId}`;
    return row;
  }

  /**
   * Re-reads every account of a provider (or one account) with the service account:
   * vanished, disabled or unmapped → disabled here and sessions revoked; otherwise role,
   * sites and name refreshed (and an account we disabled is enabled again).
   */
  async sync(providerId: string, onlyUserId?: string): Promise<SyncResult> {
    const p = await this.d.store.require(providerId);
    const linked = await this.d.sql<DirectoryLink[]>`
      select d.user_id, d.provider_id, d.dn, d.subject, d.disabled_by_directory
      from directory_users d
      where d.provider_id = ${p.id}
        and (${onlyUserId ?? null}::uuid is null or d.user_id = ${onlyUserId ?? null})`;
    const names = await this.d.operators.usernames(linked.map((l) => l.user_id));
    const links = linked.filter((l) => names.has(l.user_id));
    const result: SyncResult = { checked: 0, updated: 0, disabled: 0, enabled: 0, unchanged: 0 };
    let entries: Map<string, DirectoryEntry | null>;
    try {
      entries = await this.d.reader.readMany(
        p,
        await this.d.store.bindPassword(p),
        links.map((l) => l.dn),
      );
    } catch (e) {
      const error = directoryHttpError(e, p);
      await this.d.store.recordSync(p.id, false, error.message);
      throw error;
    }
    for (const link of links) {
      result.checked++;
      const entry = entries.get(link.dn) ?? null;
      const stale = entry && link.subject && entry.subject && entry.subject !== link.subject;
      const mapped = entry ? mapGroups(p, entry.groups) : null;
      const reason = !entry || stale
        ? "not_found"
        : entry.disabled
        ? "disabled_in_directory"
        : !mapped!.role
        ? "no_mapped_group"
        : null;
      if (reason) {
        if (await this.#disable(link.user_id, reason)) result.disabled++;
        else result.unchanged++;
        continue;
      }
      const u = await this.d.operators.userById(link.user_id);
      // An admin's own "disable" is left alone; we only refresh the directory data.
      if (u?.disabled && !link.disabled_by_directory) {
        result.unchanged++;
        continue;
      }
      const change = await this.#refresh(p, link.user_id, entry!, mapped!, false);
      result[change]++;
    }
    await this.d.store.recordSync(
      p.id,
      true,
      `checked ${result.checked}: ${result.updated} updated, ${result.disabled} disabled, ` +
        `${result.enabled} enabled`,
    );
    return result;
  }

  /** Turns a directory account into a local one (no password until an admin sets one). */
  async convert(providerId: string, username: string): Promise<UserRow> {
    const user = await this.d.operators.userByName(username);
    const link = user ? await this.link(user.id) : undefined;
    if (!user || !link || link.provider_id !== providerId) {
      throw notFound(`no account ${username} comes from this provider`);
    }
    await this.d.operators.convertToLocal(user.id, async (tx) => {
      await tx`delete from directory_users where user_id = ${user.id}`;
    });
    await this.d.operators.revokeAll(user.id);
    return (await this.d.operators.userByName(username))!;
  }
}

function sameDn(a: string, b: string): boolean {
  return normalizeDn(a) === normalizeDn(b);
}

/**
 * Reading a provider's directory: finding a user with the configured filter (every
 * value escaped), binding as the user (never with an empty password), reading the
 * user's groups (AD: one matching-rule-in-chain search plus the primary group, which
 * `memberOf` never lists; OpenLDAP and others: iterative member searches, cycle-safe),
 * the disabled check, and the provider test's steps. Group searches are paged (RFC 2696),
 * so a user in more groups than the server's size limit still gets all of them.
 *
 * @module
 */
import type { Client } from "ldapts";
import { HttpError } from "../../core/errors.ts";
import {
  adNestedGroupsFilter,
  directMembersFilter,
  domainRoot,
  normalizeDn,
  renderFilter,
} from "./escape.ts";
import {
  allValues,
  closeClient,
  describeError,
  DirectoryUnavailable,
  firstValue,
  isTransportError,
  openClient,
  overrideFor,
  rawValue,
  resultCode,
  type ServerPool,
  urlHost,
} from "./ldap.ts";
import type { Provider } from "./providers.ts";
import { objectSidFilter, primaryGroupSid } from "./sid.ts";

/** A user as the directory describes it. */
export interface DirectoryEntry {
  dn: string;
  username: string;
  display_name: string;
  mail: string | null;
  /** entryUUID / objectGUID (hex), when the server returns it. */
  subject: string | null;
  /** Group DNs as the server spells them (nested ones included where enabled). */
  groups: string[];
  disabled: boolean;
}

/** The result of a login attempt against one provider. */
export type BindOutcome =
  | { kind: "ok"; entry: DirectoryEntry }
  | { kind: "not_found" }
  | { kind: "invalid" };

/** A directory answer that means the provider is misconfigured (not the user's fault). */
export class DirectoryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DirectoryConfigError";
  }
}

/**
 * The HTTP error for a failure while reading a provider (admin routes): unreachable →
 * 503 `directory_unavailable`; misconfigured or refused → 409 `directory_misconfigured`.
 */
export function directoryHttpError(e: unknown, p?: Provider): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof DirectoryUnavailable) {
    return new HttpError(503, "directory_unavailable", e.message);
  }
  return new HttpError(
    409,
    "directory_misconfigured",
    e instanceof DirectoryConfigError ? e.message : describeError(e, p),
  );
}

/** One step of a provider test. */
export interface TestStep {
  step: string;
  ok: boolean;
  message: string;
  url?: string;
  /** The address the URL's host was reached at, when a host override applied. */
  via?: string;
  ms: number;
}

const MAX_USERNAME = 256;
const MAX_NESTING = 16;
const MAX_GROUPS = 5000;
const BATCH = 50;
/**
 * Entries per page of a paged group search: under Active Directory's default
 * MaxPageSize (1000), which caps larger requests anyway.
 */
export const PAGE_SIZE = 500;

/** What a found entry carries before its groups are read. */
type Found = Partial<DirectoryEntry> & {
  dn: string;
  memberOf: string[];
  /** AD: the binary objectSid and the primaryGroupID (RID). */
  sid?: Uint8Array;
  primaryGroupId?: number;
};

/** True when a submitted username may be searched for at all. */
export function acceptableUsername(username: string): boolean {
  // Control characters (NUL included) never name a directory user; lone surrogates
  // would be sent as U+FFFD and could match someone else.
  return username.length > 0 && username.length <= MAX_USERNAME &&
    // deno-lint-ignore no-control-regex -- refusing control characters is the point
    !/[\u0000-\u001f\u007f]/.test(username) && username.isWellFormed();
}

const subjectAttribute = (p: Provider) =>
  p.provider_type === "active_directory" ? "objectGUID" : "entryUUID";
const binaryAttributes = (p: Provider) =>
  p.provider_type === "active_directory" ? ["objectGUID", "objectSid"] : [];

/**
 * One LDAP round trip (the root DSE) so a server that accepts TCP but never answers
 * counts as down. Any LDAP answer, even a refusal, proves the server is alive.
 */
async function probe(client: Client): Promise<Client> {
  try {
    await client.search("", {
      scope: "base",
      filter: "(objectClass=*)",
      attributes: ["supportedLDAPVersion"],
    });
  } catch (e) {
    if (resultCode(e) === undefined) {
      await closeClient(client);
      throw e;
    }
  }
  return client;
}

/**
 * For the connect step: "; <url> via <address> (host override…)" when the URL's host is
 * overridden, saying which name TLS checks, so the report shows where it really went.
 */
function overrideNote(url: string, p: Provider): string {
  const via = overrideFor(url, p);
  if (!via) return "";
  const tls = url.toLowerCase().startsWith("ldaps:") || p.start_tls;
  return `; ${url} via ${via} (host override${
    tls ? `; the certificate is checked for ${urlHost(url)}, not for ${via}` : ""
  })`;
}

/** Reads a provider's directory through the failover pool. */
export class DirectoryReader {
  constructor(private readonly pool: ServerPool) {}

  /**
   * Checks a user's password. `bindPassword` is the service account's (null when the
   * provider searches anonymously). Throws DirectoryUnavailable when no server answers.
   */
  async authenticate(
    p: Provider,
    bindPassword: string | null,
    username: string,
    password: string,
  ): Promise<BindOutcome> {
    // An empty password would make a "successful" unauthenticated bind (RFC 4513 §5.1.2).
    if (password.length === 0) return { kind: "invalid" };
    if (!acceptableUsername(username)) return { kind: "not_found" };
    return await this.pool.run(p, async (client) => {
      await this.#serviceBind(client, p, bindPassword);
      const found = await this.#findUser(client, p, username);
      if (!found) return { kind: "not_found" } as const;
      if (!found.dn) return { kind: "invalid" } as const;
      try {
        await client.bind(found.dn, password);
      } catch (e) {
        // Any directory answer but success (49 invalid credentials, 53 unwilling, 50 …)
        // is a failed sign-in; only a transport failure moves on to another server.
        if (!isTransportError(e)) return { kind: "invalid" } as const;
        throw e;
      }
      // Groups and status are read with the service account where there is one: users
      // often may not read group entries themselves.
      if (bindPassword !== null && p.bind_dn) await client.bind(p.bind_dn, bindPassword);
      return { kind: "ok", entry: await this.#complete(client, p, found) } as const;
    });
  }

  /** Looks a user up with the service account (no password): lookup-user and sync. */
  async lookup(
    p: Provider,
    bindPassword: string | null,
    username: string,
  ): Promise<DirectoryEntry | null> {
    if (!acceptableUsername(username)) return null;
    return await this.pool.run(p, async (client) => {
      await this.#serviceBind(client, p, bindPassword);
      const found = await this.#findUser(client, p, username);
      return found ? await this.#complete(client, p, found) : null;
    });
  }

  /** Reads users by DN with the service account (sync); null for entries that are gone. */
  async readMany(
    p: Provider,
    bindPassword: string | null,
    dns: readonly string[],
  ): Promise<Map<string, DirectoryEntry | null>> {
    return await this.pool.run(p, async (client) => {
      await this.#serviceBind(client, p, bindPassword);
      const out = new Map<string, DirectoryEntry | null>();
      for (const dn of dns) {
        let entry: Found | null = null;
        try {
          const { searchEntries } = await client.search(dn, {
            scope: "base",
            filter: "(objectClass=*)",
            attributes: this.#attributes(p),
            explicitBufferAttributes: binaryAttributes(p),
          });
          entry = searchEntries[0] ? this.#toEntry(p, searchEntries[0]) : null;
        } catch (e) {
          if (resultCode(e) !== 32) throw e; // 32: no such object, the entry is gone
        }
        out.set(dn, entry ? await this.#complete(client, p, entry) : null);
      }
      return out;
    });
  }

  /** Runs the provider test; `username` adds a user lookup. Every URL is tried. */
  async test(
    p: Provider,
    bindPassword: string | null,
    username?: string,
  ): Promise<{ ok: boolean; steps: TestStep[]; entry?: DirectoryEntry | null }> {
    const steps: TestStep[] = [];
    const timed = async <T>(
      step: string,
      url: string | undefined,
      fn: () => Promise<{ value: T; message: string }>,
      note = "",
    ): Promise<T | undefined> => {
      const t0 = performance.now();
      const via = url ? overrideFor(url, p) : undefined;
      const where = { url, ...(via ? { via } : {}) };
      try {
        const { value, message } = await fn();
        steps.push({
          step,
          ok: true,
          message: message + note,
          ...where,
          ms: Math.round(performance.now() - t0),
        });
        return value;
      } catch (e) {
        steps.push({
          step,
          ok: false,
          message: (e instanceof DirectoryConfigError ? e.message : describeError(e, p)) + note,
          ...where,
          ms: Math.round(performance.now() - t0),
        });
        return undefined;
      }
    };
    let client: Client | undefined;
    let clientUrl: string | undefined;
    for (const url of p.server_urls) {
      const c = await timed("connect", url, async () => ({
        value: await probe(await openClient(url, p)),
        message: url.toLowerCase().startsWith("ldaps:")
          ? "connected over TLS (ldaps)"
          : p.start_tls
          ? "connected, StartTLS negotiated"
          : "connected (plain LDAP: passwords travel unencrypted; use ldaps:// or StartTLS)",
      }), overrideNote(url, p));
      if (c && !client) {
        client = c;
        clientUrl = url;
      } else if (c) await closeClient(c);
    }
    if (!client) return { ok: false, steps };
    let entry: DirectoryEntry | null | undefined;
    try {
      const bound = await timed("bind", clientUrl, async () => {
        await this.#serviceBind(client!, p, bindPassword);
        return {
          value: true,
          message: p.bind_dn ? `bound as ${p.bind_dn}` : "no bind_dn: searching anonymously",
        };
      });
      if (!bound) return { ok: false, steps };
      const base = await timed("base_dn", clientUrl, async () => {
        const r = await client!.search(p.base_dn, {
          scope: "base",
          filter: "(objectClass=*)",
          attributes: ["1.1"],
        });
        if (r.searchEntries.length === 0) {
          throw new DirectoryConfigError(`base DN ${p.base_dn} is not visible to this account`);
        }
        return { value: true, message: `base DN ${p.base_dn} found` };
      });
      if (!base) return { ok: false, steps };
      const probe = username ?? "borealis-provider-test-probe";
      const searched = await timed("user_search", clientUrl, async () => {
        const found = await this.#findUser(client!, p, probe);
        if (username === undefined) {
          return {
            value: true,
            message: `filter ${renderFilter(p.user_search_filter, probe)} ran (${
              found ? 1 : 0
            } entries for a probe name)`,
          };
        }
        if (!found) throw new DirectoryConfigError(`no entry matches ${username}`);
        entry = await this.#complete(client!, p, found);
        return {
          value: true,
          message: `found ${entry.dn} in ${entry.groups.length} group(s)${
            entry.disabled ? " (disabled in the directory)" : ""
          }`,
        };
      });
      if (!searched) return { ok: false, steps, entry: username ? null : undefined };
    } finally {
      await closeClient(client);
    }
    return { ok: true, steps, entry };
  }

  async #serviceBind(client: Client, p: Provider, bindPassword: string | null): Promise<void> {
    if (!p.bind_dn) return;
    if (!bindPassword) {
      throw new DirectoryConfigError("bind_dn is set but no bind password is stored");
    }
    try {
      await client.bind(p.bind_dn, bindPassword);
    } catch (e) {
      if (resultCode(e) === 49) {
        throw new DirectoryConfigError(
          `the directory refused the service account ${p.bind_dn} (invalid credentials, result code 49)`,
        );
      }
      throw e;
    }
  }

  #attributes(p: Provider): string[] {
    return [
      p.username_attribute,
      p.display_name_attribute,
      p.mail_attribute,
      p.member_of_attribute,
      subjectAttribute(p),
      "cn",
      ...(p.provider_type === "active_directory" ? ["objectSid", "primaryGroupID"] : []),
    ];
  }

  async #findUser(
    client: Client,
    p: Provider,
    username: string,
  ): Promise<Found | null> {
    const { searchEntries } = await client.search(p.base_dn, {
      scope: "sub",
      filter: renderFilter(p.user_search_filter, username),
      attributes: this.#attributes(p),
      explicitBufferAttributes: binaryAttributes(p),
      sizeLimit: 2,
    });
    if (searchEntries.length === 0) return null;
    if (searchEntries.length > 1) {
      throw new DirectoryConfigError(
        `the user search filter matches more than one entry for this name; make it unique`,
      );
    }
    return this.#toEntry(p, searchEntries[0]!);
  }

  #toEntry(p: Provider, e: Record<string, unknown> & { dn: string }): Found {
    const username = firstValue(e, p.username_attribute) ?? "";
    const found: Found = {
      dn: e.dn,
      username,
      display_name: firstValue(e, p.display_name_attribute) ?? firstValue(e, "cn") ?? username,
      mail: firstValue(e, p.mail_attribute) ?? null,
      subject: firstValue(e, subjectAttribute(p)) ?? null,
      memberOf: allValues(e, p.member_of_attribute),
    };
    if (p.provider_type === "active_directory") {
      const sid = rawValue(e, "objectSid");
      const rid = Number(firstValue(e, "primaryGroupID"));
      if (sid && Number.isInteger(rid) && rid > 0) {
        found.sid = sid;
        found.primaryGroupId = rid;
      }
    }
    return found;
  }

  async #complete(client: Client, p: Provider, found: Found): Promise<DirectoryEntry> {
    const dn = found.dn;
    return {
      dn,
      username: found.username ?? "",
      display_name: (found.display_name ?? "").slice(0, 200),
      mail: found.mail ?? null,
      subject: found.subject ?? null,
      groups: await this.#groups(client, p, found),
      disabled: await this.#disabled(client, p, dn),
    };
  }

  /**
   * AD: the DN of the user's primary group, found by its SID (the user's domain SID +
   * `primaryGroupID`) under the domain root of the user's DN; null when the entry has
   * no usable SID or no such group is visible.
   */
  async #primaryGroup(client: Client, p: Provider, found: Found): Promise<string | null> {
    if (!found.sid || !found.primaryGroupId) return null;
    const groupSid = primaryGroupSid(found.sid, found.primaryGroupId);
    if (!groupSid) return null;
    const { searchEntries } = await client.search(domainRoot(found.dn) ?? p.base_dn, {
      scope: "sub",
      filter: objectSidFilter(groupSid).filter,
      attributes: ["1.1"],
      sizeLimit: 1,
    });
    return searchEntries[0]?.dn ?? null;
  }

  async #disabled(client: Client, p: Provider, dn: string): Promise<boolean> {
    if (!p.disabled_filter) return false;
    const { searchEntries } = await client.search(dn, {
      scope: "base",
      filter: p.disabled_filter,
      attributes: ["1.1"],
    });
    return searchEntries.length > 0;
  }

  /** A paged subtree search for the DNs of entries matching `filter`. */
  async #pagedDns(client: Client, base: string, filter: string): Promise<string[]> {
    const { searchEntries } = await client.search(base, {
      scope: "sub",
      filter,
      attributes: ["1.1"],
      paged: { pageSize: PAGE_SIZE },
    });
    return searchEntries.map((e) => e.dn);
  }

  async #groups(client: Client, p: Provider, user: Found): Promise<string[]> {
    const userDn = user.dn;
    const memberOf = user.memberOf ?? [];
    const base = p.group_search_base ?? p.base_dn;
    const found = new Map<string, string>();
    const add = (dn: string) => {
      const key = normalizeDn(dn);
      if (found.has(key)) return false;
      found.set(key, dn);
      return true;
    };
    for (const g of memberOf) add(g);
    if (p.provider_type === "active_directory") {
      // memberOf never lists the primary group (Domain Users, usually), nor does the
      // in-chain search find it: it is named by the user's primaryGroupID only.
      const primary = await this.#primaryGroup(client, p, user);
      if (primary) add(primary);
      if (p.nested_groups) {
        // The domain controller walks the nesting itself (LDAP_MATCHING_RULE_IN_CHAIN);
        // for the primary group, a second walk from it finds the groups it is in.
        for (const from of primary ? [userDn, primary] : [userDn]) {
          const dns = await this.#pagedDns(
            client,
            base,
            adNestedGroupsFilter(from, p.group_member_attribute),
          );
          for (const dn of dns) add(dn);
        }
      }
      return [...found.values()];
    }
    // Direct groups by membership search too (servers without a memberOf overlay), then
    // walk up level by level; the `found` set stops cycles.
    let frontier = [userDn];
    for (let depth = 0; depth < (p.nested_groups ? MAX_NESTING : 1) && frontier.length; depth++) {
      const next: string[] = [];
      for (let i = 0; i < frontier.length; i += BATCH) {
        const dns = await this.#pagedDns(
          client,
          base,
          directMembersFilter(frontier.slice(i, i + BATCH), p.group_member_attribute),
        );
        for (const dn of dns) if (add(dn)) next.push(dn);
        if (found.size >= MAX_GROUPS) return [...found.values()];
      }
      // memberOf values seed the walk as well, so nesting above them is found.
      frontier = depth === 0
        ? [...new Set([...next, ...memberOf.filter((g) => !next.includes(g))])]
        : next;
    }
    return [...found.values()];
  }
}

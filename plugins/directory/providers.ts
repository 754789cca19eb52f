/**
 * Directory providers: the stored rows, the request schemas (with per-type defaults for
 * OpenLDAP and Active Directory), validation of DNs, URLs and filters, the group→role
 * and group→site mappings, and the bind password sealed by Aegis.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import { isIP } from "node:net";
import type { Clock } from "../../core/clock.ts";
import type postgres from "postgres";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, notFound } from "../../core/errors.ts";
import type { Vault } from "../aegis/mod.ts";
import { isDn, renderFilter, USERNAME_PLACEHOLDER } from "./escape.ts";
import { filterProblem } from "./ldap.ts";

/** Provider flavours. */
export type ProviderType = "ldap" | "active_directory";

/** A group → role mapping. */
export interface GroupMapping {
  group_dn: string;
  role: "Admin" | "User";
}

/** Group DNs → sites. */
export interface SiteMapping {
  label: string;
  group_dns: string[];
  site_ids: number[];
}

/** A provider as stored (plus its mappings). */
export interface Provider {
  id: string;
  name: string;
  provider_type: ProviderType;
  enabled: boolean;
  priority: number;
  server_urls: string[];
  /** Host name (lower case) → the IPv4 / IPv6 address to connect to instead of DNS. */
  host_overrides: Record<string, string>;
  start_tls: boolean;
  tls_ca_pem: string | null;
  base_dn: string;
  bind_dn: string | null;
  bind_password_encrypted: string | null;
  user_search_filter: string;
  group_search_base: string | null;
  username_attribute: string;
  display_name_attribute: string;
  mail_attribute: string;
  member_of_attribute: string;
  group_member_attribute: string;
  disabled_filter: string | null;
  nested_groups: boolean;
  connect_timeout_ms: number;
  operation_timeout_ms: number;
  settings_version: number;
  tested_version: number | null;
  last_test_at: Date | null;
  last_test_ok: boolean | null;
  last_test_message: string | null;
  last_sync_at: Date | null;
  last_sync_ok: boolean | null;
  last_sync_message: string | null;
  created_at: Date;
  updated_at: Date;
  group_mappings: GroupMapping[];
  site_mappings: SiteMapping[];
}

/** Defaults per provider type. */
export const TYPE_DEFAULTS: Record<
  ProviderType,
  Pick<
    Provider,
    | "user_search_filter"
    | "username_attribute"
    | "display_name_attribute"
    | "mail_attribute"
    | "member_of_attribute"
    | "group_member_attribute"
    | "disabled_filter"
  >
> = {
  ldap: {
    user_search_filter: "(&(objectClass=inetOrgPerson)(uid={username}))",
    username_attribute: "uid",
    display_name_attribute: "displayName",
    mail_attribute: "mail",
    member_of_attribute: "memberOf",
    group_member_attribute: "member",
    disabled_filter: null,
  },
  active_directory: {
    user_search_filter: "(&(objectCategory=person)(objectClass=user)(sAMAccountName={username}))",
    username_attribute: "sAMAccountName",
    display_name_attribute: "displayName",
    mail_attribute: "mail",
    member_of_attribute: "memberOf",
    group_member_attribute: "member",
    // ACCOUNTDISABLE bit of userAccountControl (bitwise-AND matching rule).
    disabled_filter: "(userAccountControl:1.2.840.113556.1.4.803:=2)",
  },
};

// deno-lint-ignore no-control-regex -- refusing control characters is the point
const noControl = /^[^\u0000-\u001f\u007f]*$/;
const text = (max: number) => z.string().max(max).regex(noControl, "no control characters");
const Dn = text(1024).trim().min(1).refine(isDn, "not a DN (attr=value,…)");
const Attr = z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, "an attribute name");
const Url = z.string().max(512).refine((u) => {
  try {
    const p = new URL(u);
    return (p.protocol === "ldap:" || p.protocol === "ldaps:") && !!p.hostname &&
      !p.username && !p.password && (p.pathname === "" || p.pathname === "/") && !p.search;
  } catch {
    return false;
  }
}, "ldap://host[:port] or ldaps://host[:port]");
// RFC 4515 filters are parenthesised; ldapts would also accept a bare `a=b`.
const parenthesised = (f: string) => f.startsWith("(") && f.endsWith(")");
const Filter = text(2048).trim().min(3).refine(
  (f) => parenthesised(f) && filterProblem(f) === null,
  {
    message: "not a valid LDAP filter (RFC 4515)",
  },
);
const UserFilter = text(2048).trim().refine((f) => f.includes(USERNAME_PLACEHOLDER), {
  message: "must contain {username}",
}).refine((f) => parenthesised(f) && filterProblem(renderFilter(f, "x")) === null, {
  message: "not a valid LDAP filter (RFC 4515) once {username} is filled in",
});
/** A PEM certificate. */
export const Pem = z.string().max(65_536).refine(
  (p) => /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(p),
  "a PEM certificate (-----BEGIN CERTIFICATE----- …)",
);

/** Most host overrides one provider may carry. */
export const MAX_HOST_OVERRIDES = 16;

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`, "i");

/**
 * True for a DNS host name an override may be keyed by: letters, digits and hyphens in
 * dot-separated labels (IDNs in their xn-- form), and not an address (an IP literal in a
 * URL needs no override; an all-numeric last label would read as one).
 */
export function isOverridableHost(host: string): boolean {
  return HOST_NAME.test(host) && isIP(host) === 0 && !/^\d+$/.test(host.split(".").at(-1)!);
}

/**
 * True for an address a server can listen on: an IPv4 or IPv6 literal (no port, no
 * brackets, no zone), not unspecified (0.0.0.0/8, ::), and not multicast or broadcast.
 */
export function isOverrideAddress(address: string): boolean {
  if (z.ipv4().safeParse(address).success) {
    const first = Number(address.split(".")[0]);
    return first !== 0 && first < 224;
  }
  if (!z.ipv6().safeParse(address).success) return false;
  const a = address.toLowerCase();
  return !/^[0:]+$/.test(a) && !a.startsWith("ff");
}

/** Lower-case host names (as URLs are matched), lower-case IPv6, sorted by host. */
export function normalizeHostOverrides(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(o)
      .map(([host, address]) => [host.toLowerCase(), address.toLowerCase()] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** `{host name: address}`: connect to the address, keep the name for TLS (SNI, certificate). */
export const HostOverrides = z.preprocess(
  (raw, ctx) => {
    // zod's record silently drops a "__proto__" key (JSON.parse makes it an own property):
    // refuse it here rather than store less than was sent.
    if (raw && typeof raw === "object" && Object.hasOwn(raw, "__proto__")) {
      ctx.issues.push({
        code: "custom",
        path: ["__proto__"],
        message: "the key must be a host name (letters, digits, hyphens, dots), not an address",
        input: raw,
      });
    }
    return raw;
  },
  z.record(z.string().max(253), z.string().max(64)).superRefine((o, ctx) => {
    const entries = Object.entries(o);
    if (entries.length > MAX_HOST_OVERRIDES) {
      ctx.addIssue({
        code: "custom",
        message: `at most ${MAX_HOST_OVERRIDES} host overrides (got ${entries.length})`,
      });
    }
    const seen = new Set<string>();
    for (const [host, address] of entries) {
      if (!isOverridableHost(host)) {
        ctx.addIssue({
          code: "custom",
          path: [host],
          message: "the key must be a host name (letters, digits, hyphens, dots), not an address",
        });
      } else if (seen.has(host.toLowerCase())) {
        ctx.addIssue({
          code: "custom",
          path: [host],
          message: "the same host name twice (host names are case-insensitive)",
        });
      }
      seen.add(host.toLowerCase());
      if (!isOverrideAddress(address)) {
        ctx.addIssue({
          code: "custom",
          path: [host],
          message: "must be an IPv4 or IPv6 address (no port, no brackets, not 0.0.0.0, :: " +
            "or multicast)",
        });
      }
    }
  }).overwrite(normalizeHostOverrides),
).openapi({
  description: "host name → IPv4/IPv6 address to connect to; TLS still checks the host name",
  example: { "dc1.corp.example": "10.20.0.5" },
});

const GroupMappingSchema = z.object({ group_dn: Dn, role: z.enum(["Admin", "User"]) }).strict();
const SiteMappingSchema = z.object({
  label: text(100).default(""),
  group_dns: z.array(Dn).min(1).max(100),
  site_ids: z.array(z.number().int().positive().max(2_147_483_647)).min(1).max(10_000),
}).strict();

const fields = {
  name: text(100).trim().min(1),
  priority: z.number().int().min(0).max(100_000),
  server_urls: z.array(Url).min(1).max(8),
  host_overrides: HostOverrides,
  start_tls: z.boolean(),
  tls_ca_pem: Pem.nullable(),
  base_dn: Dn,
  bind_dn: Dn.nullable(),
  bind_password: z.string().min(1).max(1024).nullable(),
  user_search_filter: UserFilter,
  group_search_base: Dn.nullable(),
  username_attribute: Attr,
  display_name_attribute: Attr,
  mail_attribute: Attr,
  member_of_attribute: Attr,
  group_member_attribute: Attr,
  disabled_filter: Filter.nullable(),
  nested_groups: z.boolean(),
  connect_timeout_ms: z.number().int().min(100).max(60_000),
  operation_timeout_ms: z.number().int().min(100).max(120_000),
  group_mappings: z.array(GroupMappingSchema).max(200),
  site_mappings: z.array(SiteMappingSchema).max(200),
};

/** POST body. */
export const CreateProvider = z.object({
  ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.optional()])),
  name: fields.name,
  type: z.enum(["ldap", "active_directory"]),
  server_urls: fields.server_urls,
  base_dn: fields.base_dn,
  enabled: z.boolean().optional(),
}).strict().openapi("DirectoryProviderCreate");

/** PATCH body. */
export const PatchProvider = z.object({
  ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.optional()])),
  enabled: z.boolean().optional(),
}).strict().openapi("DirectoryProviderPatch");

type Fields = { [K in keyof typeof fields]?: z.infer<(typeof fields)[K]> };
/** A parsed create body. */
export type CreateInput = Fields & { name: string; type: ProviderType; enabled?: boolean };
/** A parsed patch body. */
export type PatchInput = Fields & { enabled?: boolean };

/** The provider as the API shows it (no bind password, sealed or not). */
export const ProviderView = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(["ldap", "active_directory"]),
  enabled: z.boolean(),
  priority: z.number(),
  server_urls: z.array(z.string()),
  host_overrides: z.record(z.string(), z.string()),
  start_tls: z.boolean(),
  tls_ca_pem: z.string().nullable(),
  base_dn: z.string(),
  bind_dn: z.string().nullable(),
  bind_password_set: z.boolean(),
  user_search_filter: z.string(),
  group_search_base: z.string().nullable(),
  username_attribute: z.string(),
  display_name_attribute: z.string(),
  mail_attribute: z.string(),
  member_of_attribute: z.string(),
  group_member_attribute: z.string(),
  disabled_filter: z.string().nullable(),
  nested_groups: z.boolean(),
  connect_timeout_ms: z.number(),
  operation_timeout_ms: z.number(),
  group_mappings: z.array(z.object({ group_dn: z.string(), role: z.enum(["Admin", "User"]) })),
  site_mappings: z.array(
    z.object({ label: z.string(), group_dns: z.array(z.string()), site_ids: z.array(z.number()) }),
  ),
  tested: z.boolean(),
  last_test_at: z.string().nullable(),
  last_test_ok: z.boolean().nullable(),
  last_test_message: z.string().nullable(),
  last_sync_at: z.string().nullable(),
  last_sync_ok: z.boolean().nullable(),
  last_sync_message: z.string().nullable(),
  user_count: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
}).openapi("DirectoryProvider");

/** The public view of a provider. */
export function toView(p: Provider, userCount: number): z.infer<typeof ProviderView> {
  return {
    id: p.id,
    name: p.name,
    type: p.provider_type,
    enabled: p.enabled,
    priority: p.priority,
    server_urls: p.server_urls,
    host_overrides: normalizeHostOverrides(p.host_overrides ?? {}),
    start_tls: p.start_tls,
    tls_ca_pem: p.tls_ca_pem,
    base_dn: p.base_dn,
    bind_dn: p.bind_dn,
    bind_password_set: !!p.bind_password_encrypted,
    user_search_filter: p.user_search_filter,
    group_search_base: p.group_search_base,
    username_attribute: p.username_attribute,
    display_name_attribute: p.display_name_attribute,
    mail_attribute: p.mail_attribute,
    member_of_attribute: p.member_of_attribute,
    group_member_attribute: p.group_member_attribute,
    disabled_filter: p.disabled_filter,
    nested_groups: p.nested_groups,
    connect_timeout_ms: p.connect_timeout_ms,
    operation_timeout_ms: p.operation_timeout_ms,
    group_mappings: p.group_mappings,
    site_mappings: p.site_mappings,
    tested: isTested(p),
    last_test_at: p.last_test_at?.toISOString() ?? null,
    last_test_ok: p.last_test_ok,
    last_test_message: p.last_test_message,
    last_sync_at: p.last_sync_at?.toISOString() ?? null,
    last_sync_ok: p.last_sync_ok,
    last_sync_message: p.last_sync_message,
    user_count: userCount,
    created_at: p.created_at.toISOString(),
    updated_at: p.updated_at.toISOString(),
  };
}

/** True when the provider's current settings passed a test. */
export function isTested(p: Provider): boolean {
  return !!p.last_test_ok && p.tested_version === p.settings_version;
}

/** Fields whose change makes a passed test stale. */
const CONNECTION_FIELDS = [
  "server_urls",
  "host_overrides",
  "start_tls",
  "tls_ca_pem",
  "base_dn",
  "bind_dn",
  "bind_password",
  "user_search_filter",
  "group_search_base",
  "username_attribute",
  "display_name_attribute",
  "mail_attribute",
  "member_of_attribute",
  "group_member_attribute",
  "disabled_filter",
  "nested_groups",
  "connect_timeout_ms",
  "operation_timeout_ms",
] as const;

const COLUMNS = CONNECTION_FIELDS.filter((f) => f !== "bind_password");

const notTested = () =>
  conflict(
    "provider_not_tested",
    "run POST /api/directory/providers/<id>/test on the current settings first; it must pass before the provider can be enabled",
  );

/** The sealed place of a provider's bind password. */
export const bindPasswordPlace = (id: string) => ({
  table: "directory_providers",
  column: "bind_password_encrypted",
  row: id,
});

/** Providers in the database. */
export class ProviderStore {
  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly vault: Vault,
    /** Usernames of operator accounts (the operators plugin's). */
    private readonly usernames: (ids: readonly string[]) => Promise<Map<string, string>>,
  ) {}

  async list(): Promise<Provider[]> {
    const rows = await this.sql<Provider[]>`
      select * from directory_providers order by priority, lower(name)`;
    return await this.#withMappings(rows);
  }

  /** Enabled providers in priority order. */
  async enabled(): Promise<Provider[]> {
    const rows = await this.sql<Provider[]>`
      select * from directory_providers where enabled order by priority, lower(name)`;
    return await this.#withMappings(rows);
  }

  async get(id: string): Promise<Provider | undefined> {
    const [row] = await this.sql<Provider[]>`select * from directory_providers where id = ${id}`;
    return row ? (await this.#withMappings([row]))[0] : undefined;
  }

  async require(id: string): Promise<Provider> {
    const p = await this.get(id);
    if (!p) throw notFound("no such directory provider");
    return p;
  }

  async userCounts(): Promise<Map<string, number>> {
    const rows = await this.sql<{ provider_id: string; n: number }[]>`
      select provider_id, count(*)::int as n from directory_users group by provider_id`;
    return new Map(rows.map((r) => [r.provider_id, r.n]));
  }

  /** Opens the bind password (null when none is set). */
  async bindPassword(p: Provider): Promise<string | null> {
    if (!p.bind_password_encrypted) return null;
    return await this.vault.open(p.bind_password_encrypted, bindPasswordPlace(p.id));
  }

  async create(input: CreateInput): Promise<Provider> {
    if (input.enabled) throw notTested();
    const merged = { ...TYPE_DEFAULTS[input.type], ...stripUndefined(input) };
    checkConsistency(merged);
    const now = new Date(this.clock.now());
    const id = crypto.randomUUID();
    // Sealed before the insert: no transaction is held open across crypto.
    const sealed = input.bind_password
      ? await this.vault.seal(input.bind_password, bindPasswordPlace(id))
      : null;
    try {
      await this.sql.begin(async (tx) => {
        await tx`
          insert into directory_providers (
            id, name, provider_type, enabled, priority, server_urls, host_overrides, start_tls,
            tls_ca_pem,
            base_dn, bind_dn, bind_password_encrypted, user_search_filter, group_search_base,
            username_attribute, display_name_attribute, mail_attribute, member_of_attribute,
            group_member_attribute, disabled_filter, nested_groups, connect_timeout_ms,
            operation_timeout_ms, created_at, updated_at)
          values (
            ${id}, ${input.name}, ${input.type}, false, ${merged.priority ?? 100},
            ${tx.json(merged.server_urls as string[])},
            ${tx.json(merged.host_overrides ?? {})}, ${merged.start_tls ?? false},
            ${merged.tls_ca_pem ?? null}, ${merged.base_dn!}, ${merged.bind_dn ?? null},
            ${sealed}, ${merged.user_search_filter}, ${merged.group_search_base ?? null},
            ${merged.username_attribute}, ${merged.display_name_attribute},
            ${merged.mail_attribute}, ${merged.member_of_attribute},
            ${merged.group_member_attribute}, ${merged.disabled_filter ?? null},
            ${merged.nested_groups ?? true}, ${merged.connect_timeout_ms ?? 5000},
            ${merged.operation_timeout_ms ?? 10_000}, ${now}, ${now})`;
        await writeMappings(tx, id, input.group_mappings ?? [], input.site_mappings ?? []);
      });
    } catch (e) {
      throw nameTaken(e, input.name);
    }
    return await this.require(id);
  }

  /** Applies a patch; returns the provider and whether a passed test went stale. */
  async update(id: string, patch: PatchInput): Promise<{ provider: Provider; retest: boolean }> {
    const current = await this.require(id);
    const changed = CONNECTION_FIELDS.some((f) =>
      patch[f] !== undefined &&
      (f === "bind_password" ||
        !sameValue(patch[f], (current as unknown as Record<string, unknown>)[f]))
    );
    const merged = { ...current, ...stripUndefined(patch) } as Provider & PatchInput;
    checkConsistency(merged);
    const version = current.settings_version + (changed ? 1 : 0);
    let enabled = patch.enabled ?? current.enabled;
    if (patch.enabled === true && (changed || !isTested(current))) throw notTested();
    // Changing how an enabled provider connects disables it until the new settings pass.
    const retest = changed && current.enabled;
    if (changed) enabled = false;
    let sealed = current.bind_password_encrypted;
    if (patch.bind_password !== undefined) {
      sealed = patch.bind_password === null
        ? null
        : await this.vault.seal(patch.bind_password, bindPasswordPlace(id));
    }
    if (merged.bind_dn === null) sealed = null;
    const now = new Date(this.clock.now());
    const row: Record<string, unknown> = {
      name: merged.name,
      priority: merged.priority,
      enabled,
      bind_password_encrypted: sealed,
      settings_version: version,
      updated_at: now,
    };
    for (const f of COLUMNS) row[f] = (merged as unknown as Record<string, unknown>)[f];
    try {
      await this.sql.begin(async (tx) => {
        const values = {
          ...row,
          server_urls: tx.json(row.server_urls as string[]),
          host_overrides: tx.json(row.host_overrides as Record<string, string>),
        };
        await tx`update directory_providers set ${tx(values as never)} where id = ${id}`;
        if (patch.group_mappings !== undefined || patch.site_mappings !== undefined) {
          await writeMappings(
            tx,
            id,
            patch.group_mappings ?? current.group_mappings,
            patch.site_mappings ?? current.site_mappings,
          );
        }
      });
    } catch (e) {
      throw nameTaken(e, merged.name);
    }
    return { provider: await this.require(id), retest };
  }

  /** Records a test outcome (for the settings version that was tested). */
  async recordTest(p: Provider, ok: boolean, message: string): Promise<void> {
    await this.sql`
      update directory_providers set last_test_at = ${new Date(this.clock.now())},
        last_test_ok = ${ok}, last_test_message = ${message.slice(0, 1000)},
        tested_version = ${ok ? p.settings_version : null}
      where id = ${p.id} and settings_version = ${p.settings_version}`;
  }

  async recordSync(id: string, ok: boolean, message: string): Promise<void> {
    await this.sql`
      update directory_providers set last_sync_at = ${new Date(this.clock.now())},
        last_sync_ok = ${ok}, last_sync_message = ${message.slice(0, 1000)}
      where id = ${id}`;
  }

  /** Deletes a provider that no account comes from any more. */
  async delete(id: string): Promise<void> {
    const p = await this.require(id);
    const linked = await this.sql<{ user_id: string }[]>`
      select user_id from directory_users where provider_id = ${id}`;
    const users = [...(await this.usernames(linked.map((l) => l.user_id))).values()]
      .sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))
      .slice(0, 50)
      .map((username) => ({ username }));
    if (users.length) {
      throw conflict(
        "provider_in_use",
        `${users.length}${users.length === 50 ? "+" : ""} account(s) still sign in through ` +
          `"${p.name}": convert each to a local account (POST /api/directory/providers/${id}` +
          `/users/<username>/convert) or delete it (DELETE /api/users/<username>) first`,
        { usernames: users.map((u) => u.username) },
      );
    }
    await this.sql`delete from directory_providers where id = ${id}`;
  }

  async #withMappings(rows: Provider[]): Promise<Provider[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const groups = await this.sql<
      { provider_id: string; group_dn: string; role: "Admin" | "User" }[]
    >`
      select provider_id, group_dn, role from directory_provider_group_mappings
      where provider_id in ${this.sql(ids)} order by position`;
    const sites = await this.sql<
      { provider_id: string; label: string; group_dns: string[]; site_ids: number[] }[]
    >`
      select provider_id, label, group_dns, site_ids from directory_provider_site_mappings
      where provider_id in ${this.sql(ids)} order by position`;
    return rows.map((r) => ({
      ...r,
      group_mappings: groups.filter((g) => g.provider_id === r.id).map((g) => ({
        group_dn: g.group_dn,
        role: g.role,
      })),
      site_mappings: sites.filter((s) => s.provider_id === r.id).map((s) => ({
        label: s.label,
        group_dns: s.group_dns,
        site_ids: s.site_ids.map(Number),
      })),
    }));
  }
}

async function writeMappings(
  tx: postgres.TransactionSql,
  id: string,
  groups: readonly GroupMapping[],
  sites: readonly SiteMapping[],
): Promise<void> {
  await tx`delete from directory_provider_group_mappings where provider_id = ${id}`;
  await tx`delete from directory_provider_site_mappings where provider_id = ${id}`;
  for (const [i, g] of groups.entries()) {
    await tx`insert into directory_provider_group_mappings (provider_id, group_dn, role, position)
             values (${id}, ${g.group_dn}, ${g.role}, ${i})`;
  }
  for (const [i, s] of sites.entries()) {
    await tx`insert into directory_provider_site_mappings
               (provider_id, label, group_dns, site_ids, position)
             values (${id}, ${s.label ?? ""}, ${tx.json(s.group_dns)}, ${
      tx.json(s.site_ids)
    }, ${i})`;
  }
}

/**
 * Equal as JSON, whatever the order of object keys (jsonb hands objects back with its own
 * key order, so a re-sent unchanged value must not count as a change).
 */
function sameValue(a: unknown, b: unknown): boolean {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === "object" && !(v instanceof Date)
      ? Object.fromEntries(
        Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      )
      : v;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkConsistency(p: {
  server_urls?: string[];
  start_tls?: boolean;
  bind_dn?: string | null;
  bind_password?: string | null;
  bind_password_encrypted?: string | null;
}): void {
  if (p.start_tls && p.server_urls?.some((u) => u.toLowerCase().startsWith("ldaps:"))) {
    throw badRequest(
      "invalid_tls_settings",
      "StartTLS upgrades ldap:// connections; with ldaps:// URLs turn start_tls off",
    );
  }
  if (!p.bind_dn && p.bind_password) {
    throw badRequest("invalid_bind", "a bind password needs a bind_dn");
  }
}

function nameTaken(e: unknown, name: string): unknown {
  return (e as { code?: string })?.code === "23505"
    ? conflict("provider_name_taken", `a directory provider named ${name} already exists`)
    : e;
}

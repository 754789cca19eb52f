/**
 * The inventory service: sites, devices, containment and site scope. Every operator
 * read goes through a scope check here (not in the routes), so a route cannot forget it:
 * objects outside the caller's sites are reported as missing (404), never as forbidden.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import { canSeeSite } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { conflict, notFound } from "../../core/errors.ts";
import type { EventBus } from "../../core/events.ts";
import type { Vault } from "../aegis/mod.ts";
import type { SitesService } from "../sites/mod.ts";
import { digestsEqual, generateEnrollmentCode, hashEnrollmentCode } from "./codes.ts";
import type { Presence, PresenceService } from "./presence.ts";
import {
  type ContainmentAction,
  type ContainmentHook,
  deviceContained,
  type DeviceRecord,
  type DeviceStatus,
  type SiteRecord,
  type TargetDevice,
} from "./types.ts";

interface SiteRow {
  id: number;
  name: string;
  description: string;
  created_at: Date;
  enrollment_code_sealed?: string | null;
  auto_approve_until: Date | null;
  device_count?: number;
  online_count?: number;
  offline_count?: number;
  overdue_count?: number;
}

/** Columns every device read selects. */
export const DEVICE_COLUMNS = [
  "d.guid",
  "d.hostname",
  "d.description",
  "d.site_id",
  "s.name as site_name",
  "s.description as site_description",
  "d.created_at",
  "d.last_enrollment_at",
  "d.ssl_key_fingerprint",
  "d.key_added_at",
  "d.token_version",
  "d.status",
  "d.status_changed_at",
  "d.agent_id",
  "d.agent_hash",
  "d.device_type",
  "d.domain",
  "d.external_ip",
  "d.internal_ip",
  "d.last_reboot",
  "d.last_seen",
  "d.cpu_percent",
  "d.memory_percent",
  "d.last_user",
  "d.operating_system",
  "d.uptime",
  "d.connection_type",
  "d.connection_endpoint",
  "d.details",
] as const;

const arrayLength = (key: string) =>
  `case when jsonb_typeof(d.details->'${key}') = 'array' then jsonb_array_length(d.details->'${key}') end`;

/** Columns of a list row: every device column but the details document, plus its sizes. */
const LIST_COLUMNS = [
  ...DEVICE_COLUMNS.filter((c) => c !== "d.details"),
  "'{}'::jsonb as details",
  `${arrayLength("memory")} as memory_modules`,
  `${arrayLength("storage")} as volumes`,
  `${arrayLength("network")} as network_adapters`,
  `case when jsonb_typeof(d.details->'software_count') = 'number'
     then (d.details->>'software_count')::int else ${
    arrayLength("software")
  } end as software_items`,
  `coalesce(d.details->'cpu'->>'name', d.details->'cpu'->>'model', d.details->'cpu'->>'brand')
     as cpu_name`,
  "d.details->'summary'->>'agent_version' as agent_version",
].join(", ");

/** Device columns the list filters by substring (query name → column). */
export const DEVICE_TEXT_FIELDS = {
  hostname: "d.hostname",
  description: "d.description",
  site_name: "s.name",
  operating_system: "d.operating_system",
  last_user: "d.last_user",
  internal_ip: "d.internal_ip",
  external_ip: "d.external_ip",
  domain: "d.domain",
  device_type: "d.device_type",
  agent_hash: "d.agent_hash",
} as const;

/** A substring-filterable device column. */
export type DeviceTextField = keyof typeof DEVICE_TEXT_FIELDS;

/** Device columns the list sorts by (query name → SQL expression). */
export const DEVICE_SORT_FIELDS = {
  hostname: "lower(d.hostname)",
  description: "lower(d.description)",
  site_name: "lower(s.name)",
  operating_system: "lower(d.operating_system)",
  last_user: "lower(d.last_user)",
  internal_ip: "d.internal_ip",
  external_ip: "d.external_ip",
  domain: "lower(d.domain)",
  device_type: "lower(d.device_type)",
  agent_hash: "d.agent_hash",
  // Most recently seen first under "desc": online, then offline, then overdue.
  status: "d.last_seen",
  last_seen: "d.last_seen",
  created_at: "d.created_at",
  containment_status: "d.status",
} as const;

/** A sortable device column. */
export type DeviceSortField = keyof typeof DEVICE_SORT_FIELDS;

/** What {@link InventoryService.queryDevices} filters, sorts and pages by. */
export interface DeviceQuery {
  siteId?: number;
  /** Presence (plugins/inventory/presence.ts), judged in SQL like each row. */
  presence?: Presence;
  containment?: "active" | "quarantined" | "revoked" | "decommissioned";
  /** Substring of hostname, description, last user or an address. */
  q?: string;
  /** Substring filters per column. */
  contains?: Partial<Record<DeviceTextField, string>>;
  /** Only these devices (a saved filter's matches). */
  guids?: string[];
  sort?: DeviceSortField;
  order?: "asc" | "desc";
  limit: number;
  offset: number;
}

/** Formats a GUID the way the API shows it (upper case, upstream §3.1). */
export const fmtGuid = (guid: string): string => guid.toUpperCase();

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** True for a syntactically valid UUID (any case). */
export const isGuid = (s: string): boolean => UUID.test(s);

function toSite(r: SiteRow, code: string | null): SiteRecord {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    created_at: r.created_at.toISOString(),
    device_count: r.device_count ?? 0,
    online_count: r.online_count ?? 0,
    offline_count: r.offline_count ?? 0,
    overdue_count: r.overdue_count ?? 0,
    enrollment_code: code,
    auto_approve_until: r.auto_approve_until?.toISOString() ?? null,
  };
}

/** Options of {@link InventoryService}. */
export interface InventoryOptions {
  sql: Sql;
  clock: Clock;
  vault: Vault;
  /** The sites plugin's service: sites are created, renamed and deleted there. */
  sites: SitesService;
  events: EventBus;
  /** The one derivation of online / offline / overdue. */
  presence: PresenceService;
  /** Longest auto-approval window an admin may open. */
  maxAutoApprovalMinutes: number;
}

/**
 * Adds fields to site or device rows the API shows (another plugin's data about them,
 * e.g. agent_updates' install commands and agent versions): id → extra fields. Each row
 * comes with its site (a site's own id for site rows).
 */
export type RowFields<K> = (
  rows: { id: K; site_id: number | null }[],
  p: Principal,
) => Promise<Map<K, Record<string, unknown>>>;

/** Sites, devices, containment and scope. */
export class InventoryService {
  readonly #siteFields: RowFields<number>[] = [];
  readonly #deviceFields: RowFields<string>[] = [];
  readonly #sql: Sql;
  readonly #clock: Clock;
  readonly #vault: Vault;
  readonly #sites: SitesService;
  readonly #events: EventBus;
  readonly #hooks: ContainmentHook[] = [];
  /** Online / offline / overdue for every reader (the device list's `status` comes from it). */
  readonly presence: PresenceService;
  readonly maxAutoApprovalMinutes: number;

  constructor(o: InventoryOptions) {
    this.#sql = o.sql;
    this.#clock = o.clock;
    this.#vault = o.vault;
    this.#sites = o.sites;
    this.#events = o.events;
    this.presence = o.presence;
    this.maxAutoApprovalMinutes = o.maxAutoApprovalMinutes;
  }

  #now(): Date {
    return new Date(this.#clock.now());
  }

  /** Registers work that must finish before a containment action answers (token revocation). */
  onContainment(hook: ContainmentHook): void {
    this.#hooks.push(hook);
  }

  /** Registers fields other plugins add to site rows (GET /api/sites). */
  addSiteFields(fn: RowFields<number>): void {
    this.#siteFields.push(fn);
  }

  /** Registers fields other plugins add to device rows (GET /api/devices, one device). */
  addDeviceFields(fn: RowFields<string>): void {
    this.#deviceFields.push(fn);
  }

  /** The extra fields of these rows (one call per registered provider). */
  async extraFields<K>(
    kind: "site" | "device",
    rows: { id: K; site_id: number | null }[],
    p: Principal,
  ): Promise<Map<K, Record<string, unknown>>> {
    const out = new Map<K, Record<string, unknown>>();
    const providers =
      (kind === "site" ? this.#siteFields : this.#deviceFields) as unknown as RowFields<K>[];
    if (!rows.length) return out;
    for (const fn of providers) {
      for (const [id, fields] of await fn(rows, p)) out.set(id, { ...out.get(id), ...fields });
    }
    return out;
  }

  // ---------------------------------------------------------------- scope

  /** Throws 404 unless `p` may see objects of `siteId`. */
  assertSiteVisible(p: Principal, siteId: number | null, what = "object"): void {
    if (!canSeeSite(p, siteId)) throw notFound(`no such ${what}`);
  }

  /** SQL fragment restricting `d.site_id` to the principal's sites. */
  scopeFilter(p: Principal, column = "d.site_id") {
    const sql = this.#sql;
    if (p.sites === "all") return sql`true`;
    return sql`${sql.unsafe(column)} = any(${[...p.sites]}::int[])`;
  }

  // ---------------------------------------------------------------- sites

  /**
   * Sealed codes name the place they were first sealed at (the `sites` table, before it
   * had a plugin of its own), so values sealed then and now open the same way.
   */
  static readonly CODE_PLACE = { table: "sites", column: "enrollment_code_sealed" } as const;

  async #openCode(r: SiteRow): Promise<string | null> {
    if (!r.enrollment_code_sealed || this.#vault.state() !== "unlocked") return null;
    try {
      return await this.#vault.open(r.enrollment_code_sealed, {
        ...InventoryService.CODE_PLACE,
        row: String(r.id),
      });
    } catch {
      return null;
    }
  }

  /**
   * Device counts of site `s` by presence: the derivation of each device row, in SQL
   * (a lateral join `c`). The caller syncs pending signs of life first.
   */
  #siteCounts() {
    const sql = this.#sql;
    return sql`left join lateral (
      select count(*)::int as device_count,
        count(*) filter (where p = 'online')::int as online_count,
        count(*) filter (where p = 'offline')::int as offline_count,
        count(*) filter (where p = 'overdue')::int as overdue_count
      from (select ${this.presence.sql(sql)} as p from devices d where d.site_id = s.id) x
    ) c on true`;
  }

  /** A site (the sites plugin's view) with its enrollment row and device counts. */
  #siteRows(where: ReturnType<InventoryService["scopeFilter"]>) {
    const sql = this.#sql;
    return sql<SiteRow[]>`
      select s.id, s.name, s.description, s.created_at, e.enrollment_code_sealed,
        e.auto_approve_until, c.*
      from site_view s left join site_enrollment e on e.site_id = s.id ${this.#siteCounts()}
      where ${where} order by lower(s.name)`;
  }

  /** Sites the principal may see, with device counts; codes only for admins. */
  async listSites(p: Principal): Promise<SiteRecord[]> {
    await this.presence.sync();
    const rows = await this.#siteRows(this.scopeFilter(p, "s.id"));
    const showCode = p.sites === "all" && (p.role === "Admin" || p.kind === "system");
    return await Promise.all(
      rows.map(async (r) => toSite(r, showCode ? await this.#openCode(r) : null)),
    );
  }

  /** One site with its clear code (admins). */
  async site(id: number, withCode = true): Promise<SiteRecord | null> {
    await this.presence.sync();
    const [r] = await this.#siteRows(this.#sql`s.id = ${id}`);
    if (!r) return null;
    return toSite(r, withCode ? await this.#openCode(r) : null);
  }

  async #sealCode(siteId: number, code: string): Promise<string> {
    return await this.#vault.seal(code, { ...InventoryService.CODE_PLACE, row: String(siteId) });
  }

  /** Creates a site (the sites plugin's row) with a fresh enrollment code sealed by the vault. */
  async createSite(name: string, description: string): Promise<SiteRecord> {
    const now = this.#now();
    const code = generateEnrollmentCode();
    const hash = await hashEnrollmentCode(code);
    // Autocommit statements, no transaction: the kernel repeats a statement whose session
    // the server ended, never a transaction already under way. A failure after the site
    // exists removes it again (its enrollment row goes with it).
    const site = await this.#sites.create({ name, description });
    try {
      await this.#sql`
        insert into site_enrollment (site_id, enrollment_code_hash, enrollment_code_rotated_at)
        values (${site.id}, ${hash}, ${now})`;
      const sealed = await this.#sealCode(site.id, code);
      await this.#sql`update site_enrollment set enrollment_code_sealed = ${sealed}
                      where site_id = ${site.id}`;
    } catch (err) {
      await this.#sites.delete([site.id]);
      throw err;
    }
    return toSite({ ...site, auto_approve_until: null }, code);
  }

  /** Deletes sites; their devices become unassigned (admin-only). */
  async deleteSites(ids: number[]): Promise<number> {
    return await this.#sites.delete(ids);
  }

  /** Renames a site. */
  async renameSite(id: number, name: string): Promise<SiteRecord> {
    await this.#sites.rename(id, name);
    return (await this.site(id))!;
  }

  /** Replaces a site's enrollment code; the old one stops working at once. */
  async rotateCode(id: number): Promise<SiteRecord> {
    if (!await this.#sites.get(id)) throw notFound(`no site ${id}`);
    const code = generateEnrollmentCode();
    const sealed = await this.#sealCode(id, code);
    const now = this.#now();
    const hash = await hashEnrollmentCode(code);
    await this.#sql`
      insert into site_enrollment (site_id, enrollment_code_hash, enrollment_code_sealed,
        enrollment_code_rotated_at)
      values (${id}, ${hash}, ${sealed}, ${now})
      on conflict (site_id) do update set enrollment_code_hash = excluded.enrollment_code_hash,
        enrollment_code_sealed = excluded.enrollment_code_sealed,
        enrollment_code_rotated_at = excluded.enrollment_code_rotated_at`;
    const site = (await this.site(id, false))!;
    return { ...site, enrollment_code: code };
  }

  /** Opens (minutes > 0) or ends (0) a site's auto-approval window. */
  async setAutoApproval(id: number, minutes: number): Promise<SiteRecord> {
    const until = minutes > 0 ? new Date(this.#clock.now() + minutes * 60_000) : null;
    const r = await this.#sql`
      update site_enrollment set auto_approve_until = ${until} where site_id = ${id}`;
    if (!r.count) throw notFound(`no site ${id}`);
    return (await this.site(id))!;
  }

  /** Assigns devices (by hostname, case-insensitive) to a site; returns how many moved. */
  async assignHostnames(siteId: number, hostnames: string[]): Promise<number> {
    const sql = this.#sql;
    if (!await this.#sites.get(siteId)) throw notFound(`no site ${siteId}`);
    const lower = hostnames.map((h) => h.toLowerCase());
    const r = await sql`
      update devices set site_id = ${siteId} where lower(hostname) = any(${lower}::text[])`;
    return r.count;
  }

  /** hostname → site for the hostnames the principal may see. */
  async deviceMap(
    p: Principal,
    hostnames: string[],
  ): Promise<Record<string, { site_id: number | null; site_name: string | null }>> {
    const sql = this.#sql;
    const lower = hostnames.map((h) => h.toLowerCase());
    const rows = await sql<
      { hostname: string; site_id: number | null; site_name: string | null }[]
    >`
      select d.hostname, d.site_id, s.name as site_name from devices d
      left join site_view s on s.id = d.site_id
      where lower(d.hostname) = any(${lower}::text[]) and ${this.scopeFilter(p)}`;
    const out: Record<string, { site_id: number | null; site_name: string | null }> = {};
    for (const r of rows) out[r.hostname] = { site_id: r.site_id, site_name: r.site_name };
    return out;
  }

  /**
   * The site whose enrollment code this is, or null. The hash is looked up through the
   * unique index and then compared again in constant time.
   */
  async siteByCode(
    code: string,
  ): Promise<{ id: number; name: string; auto_approve_until: Date | null } | null> {
    const sql = this.#sql;
    const hash = await hashEnrollmentCode(code);
    const [r] = await sql<
      { id: number; name: string; enrollment_code_hash: string; auto_approve_until: Date | null }[]
    >`
      select s.id, s.name, e.enrollment_code_hash, e.auto_approve_until
      from site_enrollment e join site_view s on s.id = e.site_id
      where e.enrollment_code_hash = ${hash}`;
    if (!r || !digestsEqual(r.enrollment_code_hash, hash)) return null;
    return { id: r.id, name: r.name, auto_approve_until: r.auto_approve_until };
  }

  // ---------------------------------------------------------------- devices

  /** A device by GUID (no scope check: for agents and services). */
  async device(guid: string): Promise<DeviceRecord | null> {
    if (!isGuid(guid)) return null;
    const sql = this.#sql;
    const [r] = await sql<DeviceRecord[]>`
      select ${sql.unsafe(DEVICE_COLUMNS.join(", "))} from devices d
      left join site_view s on s.id = d.site_id where d.guid = ${guid}`;
    return r ? this.#shape(r) : null;
  }

  /** A device by hostname, case-insensitive (no scope check). */
  async deviceByHostname(hostname: string): Promise<DeviceRecord | null> {
    const sql = this.#sql;
    const [r] = await sql<DeviceRecord[]>`
      select ${sql.unsafe(DEVICE_COLUMNS.join(", "))} from devices d
      left join site_view s on s.id = d.site_id where lower(d.hostname) = lower(${hostname})`;
    return r ? this.#shape(r) : null;
  }

  /** A device the principal may see, else 404. */
  async visibleDevice(p: Principal, guid: string): Promise<DeviceRecord> {
    const d = await this.device(guid);
    if (!d || !canSeeSite(p, d.site_id)) throw notFound(`no device ${guid}`);
    return d;
  }

  /** A device (by hostname) the principal may see, else 404. */
  async visibleDeviceByHostname(p: Principal, hostname: string): Promise<DeviceRecord> {
    const d = await this.deviceByHostname(hostname);
    if (!d || !canSeeSite(p, d.site_id)) throw notFound(`no device ${hostname}`);
    return d;
  }

  /** Devices the principal may see. */
  async listDevices(
    p: Principal,
    opts: { siteId?: number; limit?: number; offset?: number } = {},
  ): Promise<DeviceRecord[]> {
    const sql = this.#sql;
    const rows = await sql<DeviceRecord[]>`
      select ${sql.unsafe(DEVICE_COLUMNS.join(", "))} from devices d
      left join site_view s on s.id = d.site_id
      where ${this.scopeFilter(p)}
        ${opts.siteId !== undefined ? sql`and d.site_id = ${opts.siteId}` : sql``}
      order by lower(d.hostname)
      limit ${opts.limit ?? 10_000} offset ${opts.offset ?? 0}`;
    return rows.map((r) => this.#shape(r));
  }

  /**
   * One page of the devices the principal may see, filtered and sorted in SQL, with the
   * number of matches (the console's grid pages through 20,000 devices this way).
   */
  async queryDevices(
    p: Principal,
    q: DeviceQuery,
  ): Promise<{ devices: DeviceRecord[]; total: number }> {
    const sql = this.#sql;
    const conditions = [this.scopeFilter(p)];
    if (q.siteId !== undefined) conditions.push(sql`d.site_id = ${q.siteId}`);
    if (q.presence) {
      // SQL judges stored last_seen: write what realtime holds in memory first.
      await this.presence.sync();
      conditions.push(sql`${this.presence.sql(sql)} = ${q.presence}`);
    }
    if (q.containment) conditions.push(sql`d.status = ${q.containment}`);
    if (q.guids) conditions.push(sql`d.guid = any(${q.guids.map((g) => g.toLowerCase())}::uuid[])`);
    const like = (text: string) => `%${text.toLowerCase().replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
    for (const [field, text] of Object.entries(q.contains ?? {})) {
      const column = DEVICE_TEXT_FIELDS[field as DeviceTextField];
      if (!column || !text) continue;
      conditions.push(sql`lower(coalesce(${sql.unsafe(column)}, '')) like ${like(text)}`);
    }
    if (q.q) {
      const pattern = like(q.q);
      conditions.push(sql`(lower(d.hostname) like ${pattern} or lower(d.description) like ${pattern}
        or lower(coalesce(d.last_user, '')) like ${pattern}
        or lower(coalesce(d.internal_ip, '')) like ${pattern}
        or lower(coalesce(d.external_ip, '')) like ${pattern})`);
    }
    const where = conditions.reduce((a, b) => sql`${a} and ${b}`);
    const sortColumn = DEVICE_SORT_FIELDS[q.sort ?? "hostname"];
    const dir = sql.unsafe(q.order === "desc" ? "desc" : "asc");
    // A list row never carries the details document (it can be megabytes): only the
    // sizes and names the list shows, computed here.
    const [rows, [count]] = await Promise.all([
      sql<DeviceRecord[]>`
        select ${sql.unsafe(LIST_COLUMNS)} from devices d
        left join site_view s on s.id = d.site_id
        where ${where}
        order by ${sql.unsafe(sortColumn)} ${dir} nulls last, lower(d.hostname) ${dir}, d.guid
        limit ${q.limit} offset ${q.offset}`,
      q.contains?.site_name
        ? sql<{ n: number }[]>`
          select count(*)::int as n from devices d left join site_view s on s.id = d.site_id
          where ${where}`
        : sql<{ n: number }[]>`select count(*)::int as n from devices d where ${where}`,
    ]);
    return { devices: rows.map((r) => this.#shape(r)), total: count?.n ?? 0 };
  }

  /** Hostname search (substring, case-insensitive) within scope. */
  async searchDevices(p: Principal, text: string, limit = 100): Promise<DeviceRecord[]> {
    const sql = this.#sql;
    const pattern = `%${text.toLowerCase().replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
    const rows = await sql<DeviceRecord[]>`
      select ${sql.unsafe(DEVICE_COLUMNS.join(", "))} from devices d
      left join site_view s on s.id = d.site_id
      where lower(d.hostname) like ${pattern} and ${this.scopeFilter(p)}
      order by lower(d.hostname) limit ${limit}`;
    return rows.map((r) => this.#shape(r));
  }

  /**
   * Devices as run targets (guid upper case, hostname, site, containment status,
   * presence): by GUID, by hostname (case-insensitive), and/or every device in `scope`
   * (a principal, optionally narrowed to sites it may see). One query; no scope check for
   * the GUIDs and hostnames (callers check `site_id`).
   */
  async targets(
    by: {
      guids?: string[];
      hostnames?: string[];
      scope?: { principal: Principal; siteIds?: number[] };
    },
  ): Promise<TargetDevice[]> {
    const sql = this.#sql;
    const guids = (by.guids ?? []).filter(isGuid).map((g) => g.toLowerCase());
    const hostnames = (by.hostnames ?? []).map((h) => h.toLowerCase());
    const parts = [];
    if (guids.length) parts.push(sql`d.guid = any(${guids}::uuid[])`);
    if (hostnames.length) parts.push(sql`lower(d.hostname) = any(${hostnames}::text[])`);
    if (by.scope) {
      const { principal, siteIds } = by.scope;
      parts.push(
        siteIds
          ? sql`(d.site_id = any(${siteIds}::int[]) and ${this.scopeFilter(principal)})`
          : this.scopeFilter(principal),
      );
    }
    if (!parts.length) return [];
    const where = parts.reduce((acc, part) => sql`${acc} or ${part}`);
    const rows = await sql<
      {
        guid: string;
        hostname: string;
        site_id: number | null;
        status: DeviceStatus;
        last_seen: Date | null;
      }[]
    >`select d.guid::text, d.hostname, d.site_id, d.status, d.last_seen from devices d
      where ${where} order by lower(d.hostname)`;
    return rows.map((r) => {
      const guid = fmtGuid(r.guid);
      return {
        guid,
        hostname: r.hostname,
        site_id: r.site_id,
        status: r.status,
        presence: this.presence.state(guid, r.last_seen),
      };
    });
  }

  /** Sets a device's description. */
  async setDescription(p: Principal, hostname: string, description: string): Promise<DeviceRecord> {
    const d = await this.visibleDeviceByHostname(p, hostname);
    await this.#sql`update devices set description = ${description} where guid = ${d.guid}`;
    return { ...d, description };
  }

  /** Every device's reported agent build hash (Admin tooling; not site-scoped). */
  async agentHashes(): Promise<
    { guid: string; hostname: string; site_id: number | null; agent_hash: string | null }[]
  > {
    const rows = await this.#sql<
      { guid: string; hostname: string; site_id: number | null; agent_hash: string | null }[]
    >`select guid::text as guid, hostname, site_id, agent_hash from devices order by hostname`;
    return rows.map((r) => ({ ...r, guid: fmtGuid(r.guid) }));
  }

  /** Stores the agent build hash a device reports. */
  async setAgentHash(guid: string, hash: string): Promise<void> {
    await this.#sql`update devices set agent_hash = ${hash} where guid = ${guid}`;
  }

  #shape(r: DeviceRecord): DeviceRecord {
    const guid = fmtGuid(r.guid);
    const presence = this.presence.state(guid, r.last_seen ? new Date(r.last_seen) : null);
    return { ...r, guid, presence, online: presence === "online" };
  }

  /**
   * Quarantine, unquarantine, revoke or purge. Each bumps `token_version` so every
   * outstanding access token fails on its next use; revoke and purge also end refresh
   * token families (through the registered hooks); purge leaves a barrier row so the
   * GUID cannot come back without a fresh approval.
   */
  async contain(
    guid: string,
    action: ContainmentAction,
    actor: Principal,
  ): Promise<DeviceRecord | null> {
    const sql = this.#sql;
    const now = this.#now();
    const d = await this.visibleDevice(actor, guid);
    const from = d.status;
    if (action === "quarantine" && from !== "active") {
      throw conflict("invalid_device_state", `device is ${from}, not active`);
    }
    if (action === "unquarantine" && from !== "quarantined") {
      throw conflict("invalid_device_state", `device is ${from}, not quarantined`);
    }
    if (action === "revoke" && from === "revoked") {
      throw conflict("invalid_device_state", "device is already revoked");
    }
    let result: DeviceRecord | null = null;
    if (action === "purge") {
      await sql.begin(async (tx) => {
        const [row] = await tx<
          {
            token_version: number;
            hostname: string;
            agent_id: string | null;
            ssl_key_fingerprint: string | null;
          }[]
        >`
          delete from devices where guid = ${guid}
          returning token_version, hostname, agent_id, ssl_key_fingerprint`;
        if (!row) throw notFound(`no device ${guid}`);
        await tx`
          insert into device_purge_barriers (guid, required_token_version, purged_at, purged_by,
            last_hostname, last_agent_id, ssl_key_fingerprint)
          values (${guid}, ${row.token_version + 1}, ${now}, ${actor.name}, ${row.hostname},
            ${row.agent_id}, ${row.ssl_key_fingerprint})
          on conflict (guid) do update set required_token_version = excluded.required_token_version,
            purged_at = excluded.purged_at, purged_by = excluded.purged_by,
            last_hostname = excluded.last_hostname, last_agent_id = excluded.last_agent_id,
            ssl_key_fingerprint = excluded.ssl_key_fingerprint`;
      });
    } else {
      const status = action === "quarantine"
        ? "quarantined"
        : action === "unquarantine"
        ? "active"
        : "revoked";
      const r = await sql`
        update devices set status = ${status}, token_version = token_version + 1,
          status_changed_at = ${now}
        where guid = ${guid}`;
      if (!r.count) throw notFound(`no device ${guid}`);
      result = await this.device(guid);
    }
    for (const hook of this.#hooks) await hook(fmtGuid(guid), action);
    await this.#events.publish(deviceContained, {
      guid: fmtGuid(guid),
      hostname: d.hostname,
      site_id: d.site_id,
      action,
      by: actor.name,
    });
    return result;
  }

  /** Throws 409 unless the GUID may be re-admitted (used by enrollment). */
  async purgeBarrier(guid: string): Promise<{ required_token_version: number } | null> {
    const [r] = await this.#sql<{ required_token_version: number }[]>`
      select required_token_version from device_purge_barriers where guid = ${guid}`;
    return r ?? null;
  }
}

/**
 * What other plugins do to devices, as one service (`devicesKey`): the batched identity
 * lookup token authentication runs on every agent request, registration and re-keying
 * for enrollment, the telemetry writes of the realtime plugin (one set-based statement
 * per liveness flush) and the signs of life it loads. The `devices`, `device_keys` and
 * `device_purge_barriers` tables stay this plugin's; a plugin that must join devices in
 * SQL reads the published view `device_view` instead.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { fmtGuid } from "./service.ts";
import type { DeviceStatus } from "./types.ts";

/** The columns that identify and admit a device (token authentication). */
export interface DeviceIdentityRow {
  /** As stored (lower case). */
  guid: string;
  hostname: string;
  site_id: number | null;
  status: DeviceStatus;
  token_version: number;
  ssl_key_fingerprint: string | null;
}

/** Telemetry a heartbeat may update (columns of a device; `details` is merged per key). */
export interface HeartbeatFields {
  operating_system?: string;
  last_user?: string;
  uptime?: number;
  domain?: string;
  last_reboot?: string;
  cpu_percent?: number;
  memory_percent?: number;
  external_ip?: string;
  internal_ip?: string;
  device_type?: string;
  agent_hash?: string;
  /** Merged (shallow, per key) into the device's details document. */
  details?: Record<string, unknown>;
}

/** One device's heartbeat for {@link DeviceStore.recordHeartbeats}. */
export interface Heartbeat extends HeartbeatFields {
  guid: string;
  /** ISO time; the stored value only moves forward. */
  last_seen: string;
}

/** Summary columns a details report may set (each kept when null). */
export interface DetailsSummary {
  operating_system: string | null;
  device_type: string | null;
  domain: string | null;
  last_user: string | null;
  external_ip: string | null;
  internal_ip: string | null;
  connection_type: string | null;
  connection_endpoint: string | null;
}

/** A device as enrollment finds it, locked for the enrollment's transaction. */
export interface EnrollingDevice {
  guid: string;
  hostname: string;
  ssl_key_fingerprint: string | null;
  token_version: number;
  status: DeviceStatus;
}

/** Devices, for the plugins that work on them. */
export class DeviceStore {
  constructor(private readonly sql: Sql, private readonly clock: Clock) {}

  // ---------------------------------------------------------------- identity

  /** Identity rows of these GUIDs (any case; unknown ones are absent), in one query. */
  async identities(guids: readonly string[]): Promise<DeviceIdentityRow[]> {
    if (!guids.length) return [];
    return [
      ...await this.sql<DeviceIdentityRow[]>`
        select guid::text, hostname, site_id, status, token_version, ssl_key_fingerprint
        from devices where guid = any(${guids.map((g) => g.toLowerCase())}::uuid[])`,
    ];
  }

  /** The identity of the device that holds a hostname (case-insensitive), or null. */
  async byHostname(hostname: string): Promise<DeviceIdentityRow | null> {
    const [row] = await this.sql<DeviceIdentityRow[]>`
      select guid::text, hostname, site_id, status, token_version, ssl_key_fingerprint
      from devices where lower(hostname) = lower(${hostname})`;
    return row ?? null;
  }

  /**
   * The devices holding these hostnames (lower case → device, with its site's name), for
   * an approval queue that shows which request conflicts with which device.
   */
  async hostnameOwners(
    hostnames: readonly string[],
  ): Promise<Map<string, DeviceIdentityRow & { site_name: string | null }>> {
    const lower = [...new Set(hostnames.map((h) => h.toLowerCase()))];
    if (!lower.length) return new Map();
    const rows = await this.sql<(DeviceIdentityRow & { site_name: string | null })[]>`
      select d.guid::text, d.hostname, d.site_id, d.status, d.token_version,
        d.ssl_key_fingerprint, s.name as site_name
      from devices d left join site_view s on s.id = d.site_id
      where lower(d.hostname) = any(${lower}::text[])`;
    return new Map(rows.map((r) => [r.hostname.toLowerCase(), r]));
  }

  // ---------------------------------------------------------------- enrollment

  /** True when a purge barrier stands on this key or hostname (auto-approval stops). */
  async barred(hostname: string, fingerprint: string): Promise<boolean> {
    const [row] = await this.sql`
      select 1 from device_purge_barriers
      where ssl_key_fingerprint = ${fingerprint} or lower(last_hostname) = lower(${hostname})
      limit 1`;
    return !!row;
  }

  /** True when the GUID or the key was purged after `since` (a decision went stale). */
  async purgedSince(
    who: { guid: string | null; fingerprint: string },
    since: Date,
    tx: Sql = this.sql,
  ): Promise<boolean> {
    const [row] = await tx`
      select 1 from device_purge_barriers
      where (guid = ${who.guid ?? crypto.randomUUID()} or ssl_key_fingerprint = ${who.fingerprint})
        and purged_at > ${since}
      limit 1`;
    return !!row;
  }

  /** The device with this GUID, locked until the transaction ends; null when there is none. */
  async lockForEnrollment(guid: string, tx: Sql): Promise<EnrollingDevice | null> {
    const [row] = await tx<EnrollingDevice[]>`
      select guid::text, hostname, ssl_key_fingerprint, token_version, status from devices
      where guid = ${guid} for update`;
    return row ?? null;
  }

  /**
   * A new device: its hostname is the wanted one or the next free `host-N`, its
   * token_version starts above any a purged predecessor held, its key is recorded and the
   * barriers on the GUID and the key fall.
   */
  async register(
    d: { guid: string; hostname: string; siteId: number | null; fingerprint: string },
    tx: Sql,
  ): Promise<{ hostname: string; tokenVersion: number }> {
    const now = new Date(this.clock.now());
    const [barrier] = await tx<{ required_token_version: number }[]>`
      select required_token_version from device_purge_barriers where guid = ${d.guid}`;
    const tokenVersion = Math.max(1, barrier?.required_token_version ?? 1);
    const hostname = await this.freeHostname(d.hostname, d.guid, tx);
    await tx`
      insert into devices (guid, hostname, site_id, created_at, last_enrollment_at,
        ssl_key_fingerprint, key_added_at, token_version, status, status_changed_at)
      values (${d.guid}, ${hostname}, ${d.siteId}, ${now}, ${now}, ${d.fingerprint}, ${now},
        ${tokenVersion}, 'active', ${now})`;
    await this.#recordKey(d.guid, d.fingerprint, now, tx);
    return { hostname, tokenVersion };
  }

  /**
   * An enrolled device enrolls again: a new key (or `reactivate`, an operator's explicit
   * approval of a contained device) bumps token_version and makes it active; its site is
   * the approval's. Returns the token version and whether the old tokens must end.
   */
  async rekey(
    device: EnrollingDevice,
    d: { siteId: number | null; fingerprint: string; reactivate: boolean },
    tx: Sql,
  ): Promise<{ tokenVersion: number; rotated: boolean }> {
    const now = new Date(this.clock.now());
    const keyChanged = device.ssl_key_fingerprint !== null &&
      device.ssl_key_fingerprint !== d.fingerprint;
    const rotated = keyChanged || d.reactivate;
    const tokenVersion = device.token_version + (rotated ? 1 : 0);
    await tx`
      update devices set ssl_key_fingerprint = ${d.fingerprint}, last_enrollment_at = ${now},
        key_added_at = ${device.ssl_key_fingerprint === d.fingerprint ? tx`key_added_at` : now},
        token_version = ${tokenVersion}, site_id = ${d.siteId},
        status = ${rotated ? "active" : device.status},
        status_changed_at = ${rotated ? now : tx`status_changed_at`}
      where guid = ${device.guid}`;
    await this.#recordKey(device.guid, d.fingerprint, now, tx);
    return { tokenVersion, rotated };
  }

  async #recordKey(guid: string, fingerprint: string, now: Date, tx: Sql): Promise<void> {
    await tx`
      insert into device_keys (guid, ssl_key_fingerprint, added_at) values (${guid}, ${fingerprint}, ${now})
      on conflict (guid, ssl_key_fingerprint) do update set retired_at = null`;
    await tx`
      update device_keys set retired_at = ${now}
      where guid = ${guid} and ssl_key_fingerprint <> ${fingerprint} and retired_at is null`;
    await tx`delete from device_purge_barriers where guid = ${guid} or ssl_key_fingerprint = ${fingerprint}`;
  }

  /** `host`, then `host-1` … `host-50`, then the GUID itself. */
  async freeHostname(wanted: string, guid: string, tx: Sql = this.sql): Promise<string> {
    const candidates = [wanted, ...Array.from({ length: 50 }, (_, i) => `${wanted}-${i + 1}`)];
    const taken = new Set(
      (await tx<{ h: string }[]>`
        select lower(hostname) as h from devices
        where lower(hostname) = any(${candidates.map((c) => c.toLowerCase())}::text[])`).map((r) =>
        r.h
      ),
    );
    return candidates.find((c) => !taken.has(c.toLowerCase())) ?? fmtGuid(guid);
  }

  // ---------------------------------------------------------------- telemetry

  /** Every device's last sign of life as stored (the realtime plugin's start and sweeps). */
  async signsOfLife(): Promise<
    { guid: string; hostname: string; site_id: number | null; last_seen: Date | null }[]
  > {
    return [
      ...await this.sql<
        { guid: string; hostname: string; site_id: number | null; last_seen: Date | null }[]
      >`select guid::text, hostname, site_id, last_seen from devices`,
    ];
  }

  /**
   * Writes heartbeats in one statement: last_seen only moves forward, a field a heartbeat
   * did not carry keeps its value, details are merged per top-level key.
   */
  async recordHeartbeats(rows: readonly Heartbeat[]): Promise<void> {
    if (!rows.length) return;
    await this.sql`
      update devices d set
        last_seen = greatest(d.last_seen, v.last_seen),
        operating_system = coalesce(v.operating_system, d.operating_system),
        last_user = coalesce(v.last_user, d.last_user),
        uptime = coalesce(v.uptime, d.uptime),
        domain = coalesce(v.domain, d.domain),
        last_reboot = coalesce(v.last_reboot, d.last_reboot),
        cpu_percent = coalesce(v.cpu_percent, d.cpu_percent),
        memory_percent = coalesce(v.memory_percent, d.memory_percent),
        external_ip = coalesce(v.external_ip, d.external_ip),
        internal_ip = coalesce(v.internal_ip, d.internal_ip),
        device_type = coalesce(v.device_type, d.device_type),
        agent_hash = coalesce(v.agent_hash, d.agent_hash),
        details = case when v.details is null then d.details else d.details || v.details end
      from jsonb_to_recordset(${this.sql.json(rows as never)}::jsonb) as v(
        guid uuid, last_seen timestamptz, operating_system text, last_user text, uptime bigint,
        domain text, last_reboot timestamptz, cpu_percent real, memory_percent real,
        external_ip text, internal_ip text, device_type text, agent_hash text, details jsonb)
      where d.guid = v.guid`;
  }

  /** The stored details document of a device, or null when there is no such device. */
  async details(guid: string): Promise<Record<string, unknown> | null> {
    const [row] = await this.sql<{ details: Record<string, unknown> }[]>`
      select details from devices where guid = ${guid}`;
    return row?.details ?? null;
  }

  /**
   * Replaces the details document (merged by the caller) and sets the summary columns
   * it reports; `tx` lets the caller write its own rows (the software list) with it.
   */
  async writeDetails(
    guid: string,
    d: { details: Record<string, unknown>; summary: DetailsSummary; agentHash: string | null },
    tx: Sql = this.sql,
  ): Promise<void> {
    const s = d.summary;
    await tx`
      update devices set details = ${tx.json(d.details as never)},
        operating_system = coalesce(${s.operating_system}, operating_system),
        device_type = coalesce(${s.device_type}, device_type),
        domain = coalesce(${s.domain}, domain),
        last_user = coalesce(${s.last_user}, last_user),
        external_ip = coalesce(${s.external_ip}, external_ip),
        internal_ip = coalesce(${s.internal_ip}, internal_ip),
        connection_type = coalesce(${s.connection_type}, connection_type),
        connection_endpoint = coalesce(${s.connection_endpoint}, connection_endpoint),
        agent_hash = coalesce(${d.agentHash}, agent_hash)
      where guid = ${guid}`;
  }
}

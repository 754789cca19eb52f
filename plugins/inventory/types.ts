/**
 * Types and events the inventory plugin shares with other plugins.
 *
 * @module
 */
import { eventKey } from "../../core/events.ts";
import type { Presence } from "./presence.ts";

/** Containment actions (Admin). */
export type ContainmentAction = "quarantine" | "unquarantine" | "revoke" | "purge";

/** Device containment status. */
export type DeviceStatus = "active" | "quarantined" | "revoked" | "decommissioned";

/** Work another plugin must finish before a containment action answers. */
export type ContainmentHook = (guid: string, action: ContainmentAction) => Promise<void>;

/** A site as the API shows it. */
export interface SiteRecord {
  id: number;
  name: string;
  description: string;
  created_at: string;
  device_count: number;
  /** Devices of this site by presence (each row's derivation, see presence.ts). */
  online_count: number;
  offline_count: number;
  overdue_count: number;
  /** Clear code: only for admins, and only while the vault is unlocked. */
  enrollment_code: string | null;
  auto_approve_until: string | null;
}

/** A device row (timestamps as Date from the driver). */
export interface DeviceRecord {
  guid: string;
  hostname: string;
  description: string;
  site_id: number | null;
  site_name: string | null;
  site_description: string | null;
  created_at: Date;
  last_enrollment_at: Date | null;
  ssl_key_fingerprint: string | null;
  key_added_at: Date | null;
  token_version: number;
  status: DeviceStatus;
  status_changed_at: Date | null;
  agent_id: string | null;
  agent_hash: string | null;
  device_type: string | null;
  domain: string | null;
  external_ip: string | null;
  internal_ip: string | null;
  last_reboot: Date | null;
  last_seen: Date | null;
  cpu_percent: number | null;
  memory_percent: number | null;
  last_user: string | null;
  operating_system: string | null;
  uptime: string | number | null;
  connection_type: string | null;
  connection_endpoint: string | null;
  details: Record<string, unknown>;
  /** Online / offline / overdue (plugins/inventory/presence.ts). */
  presence: Presence;
  /** `presence === "online"`. */
  online: boolean;
  /** List rows only: sizes and names from the details document, which they leave out. */
  memory_modules?: number | null;
  volumes?: number | null;
  network_adapters?: number | null;
  software_items?: number | null;
  cpu_name?: string | null;
  agent_version?: string | null;
}

/** A device as a target of work (quick runs, jobs). */
export interface TargetDevice {
  /** Upper case. */
  guid: string;
  hostname: string;
  site_id: number | null;
  status: DeviceStatus;
  presence: Presence;
}

/** Published after a containment action. */
export const deviceContained = eventKey<{
  guid: string;
  hostname: string;
  site_id: number | null;
  action: ContainmentAction;
  by: string;
}>("inventory.device_contained");

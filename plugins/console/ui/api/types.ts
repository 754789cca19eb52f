/**
 * Shapes of the API answers the console reads (see `/api/openapi.json`).
 *
 * @module
 */

/** First-start phase (`GET /api/bootstrap/state`). */
export type Phase =
  | "aegis_setup_required"
  | "aegis_unlock_required"
  | "admin_setup_required"
  | "login_required";

/** `GET /api/bootstrap/state`. */
export interface BootstrapState {
  phase: Phase;
  aegis: { state: "unconfigured" | "locked" | "unlocked"; mode: "passphrase" | "keyfile" | null };
}

/** Operator role. */
export type Role = "Admin" | "User";

/** `GET /api/auth/me`. */
export interface Me {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  mfa_enabled: boolean;
  mfa_exempt: boolean;
  auth_source: string;
  passkey_count: number;
  site_ids: number[] | null;
  dev_mode: boolean;
  method: string;
}

/** `POST /api/auth/login` and `/api/auth/mfa/verify`. */
export type LoginReply =
  | { status: "ok"; username: string; role: Role; expires_at: string }
  | {
    status: "mfa_required";
    stage: "setup" | "verify";
    pending_token: string;
    username: string;
    role: Role;
    expires_in: number;
    secret?: string;
    otpauth_url?: string;
  };

/** A site row. */
export interface Site {
  id: number;
  name: string;
  description: string;
  created_at: string;
  device_count: number;
  online_count: number;
  offline_count: number;
  overdue_count: number;
  enrollment_code: string | null;
  auto_approve_until: string | null;
  /** Per-platform install commands, once the engine serves them. */
  install_commands?: InstallCommand[];
}

/** One platform's install command (a field the engine may add). */
export interface InstallCommand {
  platform: string;
  label?: string;
  command: string;
}

/** `GET /api/sites`. */
export interface SitesReply {
  sites: Site[];
  public_base_url: string | null;
}

/** A device's presence: the engine's one derivation of online / offline / overdue. */
export type DevicePresence = "online" | "offline" | "overdue";

/** Device containment. */
export type Containment = "active" | "quarantined" | "revoked" | "decommissioned";

/** A device row of `GET /api/devices`. */
export interface Device {
  guid: string;
  hostname: string;
  description: string;
  site_id: number | null;
  site_name: string | null;
  /** Upstream's two-state form of `presence`. */
  status: "Online" | "Offline";
  presence: DevicePresence;
  containment_status: Containment;
  token_version: number;
  ssl_key_fingerprint: string | null;
  last_seen: string | null;
  created_at: string;
  last_enrollment_at: string | null;
  agent_hash: string | null;
  agent_version: string | null;
  cpu: string | null;
  inventory_counts: {
    memory_modules: number | null;
    volumes: number | null;
    network_adapters: number | null;
    software_items: number | null;
  };
  summary: {
    agent_id?: string | null;
    device_type?: string | null;
    domain?: string | null;
    external_ip?: string | null;
    internal_ip?: string | null;
    last_reboot?: string | null;
    last_user?: string | null;
    operating_system?: string | null;
    uptime?: number | null;
    cpu_percent?: number | null;
    memory_percent?: number | null;
  };
}

/** `GET /api/devices/{guid}`. */
export interface DeviceDetail extends Device {
  details: Record<string, unknown>;
}

/** `GET /api/devices`. */
export interface DevicesReply {
  devices: Device[];
  total: number;
}

/** An approval row. */
export interface Approval {
  id: string;
  approval_reference: string;
  guid: string | null;
  hostname_claimed: string;
  ssl_key_fingerprint_claimed: string;
  site_id: number | null;
  site_name: string | null;
  status: "pending" | "approved" | "denied" | "completed" | "expired";
  created_at: string;
  updated_at: string;
  expires_at: string;
  approved_by_username: string | null;
  conflict_resolution: string | null;
  remote_addr: string | null;
  hostname_conflict: {
    guid: string | null;
    site_id: number | null;
    site_name: string | null;
    fingerprint_match: boolean;
    requires_prompt: boolean;
  } | null;
  alternate_hostname: string | null;
  conflict_requires_prompt: boolean;
}

/** A wrong-code row (`status=wrong_code`, Admin). */
export interface WrongCode {
  id: number;
  hostname_claimed: string | null;
  ssl_key_fingerprint_claimed: string;
  enrollment_code_mask: string;
  remote_addr: string | null;
  first_seen_at: string;
  last_seen_at: string;
  attempt_count: number;
  last_error: string | null;
}

/** A variable definition of an assembly. */
export interface VariableDef {
  name: string;
  label?: string;
  type?: "string" | "number" | "boolean" | "credential";
  default?: string | number | boolean | null;
  required?: boolean;
  description?: string;
}

/** An assembly list item. */
export interface AssemblyItem {
  assembly_guid: string;
  domain: "official" | "community" | "user_created";
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: "script" | "workflow" | "ansible";
  assembly_type: "powershell" | "batch" | "bash" | "workflow" | "ansible" | null;
  tags: string[];
}

/** `GET /api/assemblies/{guid}`. */
export interface AssemblyDetail extends AssemblyItem {
  metadata: { variables?: VariableDef[]; timeout_seconds?: number } & Record<string, unknown>;
}

/** A stored credential (flags only). */
export interface Credential {
  id: number;
  name: string;
  description: string;
  site_id: number | null;
  credential_type: string;
  username: string | null;
}

/** An activity row (a quick run or job run on one device). */
export interface Activity {
  id: number;
  job_id: number;
  device_guid: string | null;
  hostname: string;
  site_id: number | null;
  assembly_guid: string | null;
  script_name: string;
  script_type: string;
  run_mode: string;
  requested_by: string | null;
  status: string;
  stdout: string | null;
  stderr: string | null;
  exit_code: number | null;
  activity_kind: string;
  ran_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number | null;
}

/** A watchdog incident. */
export interface Incident {
  id: string;
  watchdog_id: string;
  watchdog_name: string;
  device_guid: string;
  hostname: string;
  severity: string;
  state: "open" | "suppressed" | "resolved";
  title: string;
  message: string;
  opened_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  trigger_count: number;
}

/** `GET /api/devices/{guid}/watchdogs`. */
export interface DeviceWatchdogs {
  device_guid: string;
  hostname: string;
  incidents: Incident[];
  assignments: Array<{
    watchdog_id: string;
    name: string;
    severity: string;
    state: string;
    consecutive_matches: number;
    current_incident_id: string | null;
  }>;
  overrides: Array<{
    id: string;
    watchdog_id: string;
    state: string;
    reason: string;
    created_by: string | null;
    expires_at: string | null;
  }>;
}

/** A live session of the signed-in operator. */
export interface OperatorSession {
  id: string;
  username: string;
  method: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  current: boolean;
}

/** An API token (never the value, except right after creation). */
export interface ApiToken {
  id: string;
  name: string;
  read_only: boolean;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
  token?: string;
}

/** A registered passkey. */
export interface Passkey {
  id: string;
  label: string;
  created_at: string;
  last_used_at: string | null;
}

/** A saved device list view. */
export interface DeviceListView {
  id: number;
  name: string;
  columns: string[];
  filters: Record<string, unknown>;
}

/** An operator's presence. */
export interface Presence {
  username: string;
  role?: string;
  current_page: string;
  at: string;
}

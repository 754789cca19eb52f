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
  /**
   * The install commands of the site's newest active install token (Admins; null when
   * there is no active token or no agent package was built).
   */
  install_commands?: InstallCommands | null;
}

/** Install commands of one install token (`agent_updates`). */
export interface InstallCommands {
  linux: string;
  macos: string;
  windows: string;
  token_id: string;
  expires_at: string;
  version: string;
}

/** An install token (never its value, except right after creation). */
export interface InstallToken {
  id: string;
  site_id: number;
  token_prefix: string;
  state: "active" | "expired" | "revoked" | "used_up";
  auto_approve: boolean;
  max_uses: number | null;
  use_count: number;
  refused_count?: number;
  note: string;
  created_by: string | null;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  last_used_at?: string | null;
  token?: string;
  install_commands?: InstallCommands | null;
}

/** A device's agent as `agent_updates` reports it. */
export interface DeviceAgentInfo {
  version: string | null;
  platform: string | null;
  channel: string;
  desired_version: string | null;
  update_state: "idle" | "queued" | "updating" | "succeeded" | "failed" | "rolled_back";
  target_version: string | null;
  last_error: string | null;
  last_check_at: string | null;
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
  /** The production agent's version and update state (agent_updates). */
  agent?: DeviceAgentInfo | null;
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

/** An assembly domain. */
export type AssemblyDomain = "official" | "community" | "user_created";

/** A script interpreter or assembly engine. */
export type AssemblyType = "powershell" | "batch" | "bash" | "python" | "workflow" | "ansible";

/** An assembly list item. */
export interface AssemblyItem {
  assembly_guid: string;
  source: AssemblyDomain;
  domain: AssemblyDomain;
  display_name: string;
  summary: string;
  category: string;
  assembly_kind: "script" | "workflow" | "ansible";
  assembly_type: AssemblyType | null;
  version: number;
  tags: string[];
  payload_type: string;
  payload_size_bytes: number;
  is_dirty: boolean;
  created_at: string;
  updated_at: string;
}

/** An attached file of an assembly (base64 content). */
export interface AssemblyFile {
  file_name: string;
  size?: number;
  mime_type?: string;
  data: string;
}

/** What `metadata` of an assembly holds (besides anything else). */
export interface AssemblyMetadata extends Record<string, unknown> {
  variables?: VariableDef[];
  files?: AssemblyFile[];
  timeout_seconds?: number;
  sites?: unknown;
}

/** `GET /api/assemblies/{guid}`. */
export interface AssemblyDetail extends AssemblyItem {
  metadata: AssemblyMetadata;
  payload: unknown;
  payload_checksum: string;
  checksum: string;
  state: {
    domain: AssemblyDomain;
    is_dirty: boolean;
    dirty_since: string | null;
    last_persisted: string | null;
    attempts: number;
    last_error: string | null;
  };
}

/** The write queue's state (every list answer carries it). */
export interface AssemblyQueue {
  dirty_count: number;
  pending_deletes: number;
  failing_count: number;
  oldest_dirty_since: string | null;
  last_flush_at: string | null;
  last_flush_error: string | null;
  flush_interval_seconds: number;
  flushing: boolean;
}

/** `GET /api/assemblies`. */
export interface AssembliesReply {
  items: AssemblyItem[];
  total: number;
  queue: AssemblyQueue;
}

/** `GET /api/dev-mode`. */
export interface DevModeState {
  enabled: boolean;
  expires_at: string | null;
  ttl_remaining: number;
}

/** A stored credential (flags only). */
export interface Credential {
  id: number;
  name: string;
  description: string;
  site_id: number | null;
  credential_type: string;
  connection_type: string;
  username: string | null;
  become_method: string | null;
  become_username: string | null;
  winrm_transport: string | null;
  metadata: Record<string, unknown>;
  has_password: boolean;
  has_private_key: boolean;
  has_private_key_passphrase: boolean;
  has_become_password: boolean;
  reset_required: boolean;
  created_at: string;
  updated_at: string;
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
  site_id?: number | null;
  severity: string;
  state: "open" | "suppressed" | "resolved";
  title: string;
  message: string;
  opened_at: string;
  updated_at?: string;
  last_matched_at?: string | null;
  resolved_at?: string | null;
  resolution_reason?: string | null;
  suppressed_reason?: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  trigger_count: number;
  rule_summary?: unknown;
  action_summary?: unknown;
}

/** Incident counts by state. */
export interface IncidentCounts {
  open: number;
  suppressed: number;
  resolved: number;
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

/** A device filter condition. */
export interface FilterCondition {
  field: string;
  operator: string;
  value: string | number;
  use_regex?: boolean;
  join_with?: "AND" | "OR";
  software_source?: string;
  version_operator?: string;
  version_value?: string;
}

/** A saved device filter. */
export interface DeviceFilter {
  id: number;
  name: string;
  description: string;
  criteria_mode: "basic" | "advanced";
  site_mode: "global" | "specific_sites" | "global_exclusions";
  site_ids: number[];
  basic_criteria: FilterCondition[];
  advanced_criteria: { groups: Array<{ join_with?: "AND" | "OR"; conditions: FilterCondition[] }> };
  archived: boolean;
  last_edited_by: string | null;
  created_at: string;
  updated_at: string;
  /** How many devices it matches now (lists asked `with_counts=true`). */
  match_count?: number | null;
}

/** One target of a scheduled job. */
export type JobTarget =
  | { kind: "device"; device_guid: string; hostname?: string; site_id?: number | null }
  | { kind: "filter"; filter_id: number }
  | { kind: "sites"; site_ids: number[] }
  | { kind: "all_devices" };

/** A job's schedule. */
export interface JobSchedule {
  type: string;
  start?: number | string | null;
  cron?: string | null;
  timezone?: string | null;
}

/** Result counts of a job's latest occurrence. */
export interface ResultCounts {
  pending: number;
  running: number;
  success: number;
  failed: number;
  expired: number;
  timed_out: number;
  skipped: number;
  total_targets: number;
}

/** A scheduled job as `GET /api/scheduled_jobs` lists it. */
export interface ScheduledJob {
  id: number;
  name: string;
  components: Array<
    {
      type: string;
      assembly_guid: string;
      variable_values?: Record<string, unknown>;
      name?: string;
    }
  >;
  targets: JobTarget[];
  schedule: JobSchedule;
  schedule_type?: string;
  start_ts?: number | null;
  duration: { stopAfterEnabled: boolean; expiration: string };
  execution_context: "system" | "current_user";
  credential_id: number | null;
  use_service_account?: boolean;
  enabled: boolean;
  job_kind: string;
  maintenance_window_only: boolean;
  created_by?: string;
  created_at: number | string;
  updated_at: number | string;
  last_run_ts: number | null;
  last_status: string | null;
  next_run_ts: number | null;
  result_counts: ResultCounts | null;
}

/** One run of a job on one device. */
export interface JobRun {
  id: number;
  scheduled_ts: number | null;
  started_ts: number | null;
  finished_ts: number | null;
  status: string;
  error: string | null;
  hostname: string;
  device_guid: string | null;
  activity_id: number | null;
  stdout?: string | null;
  stderr?: string | null;
}

/** One occurrence of a job. */
export interface JobOccurrence {
  id: number;
  scheduled_ts: number;
  status: string;
  skip_reason: string | null;
  manual: boolean;
  finished_ts: number | null;
}

/** A watchdog policy. */
export interface Watchdog {
  id: string;
  name: string;
  description: string;
  enabled: boolean;
  archived: boolean;
  severity: "info" | "warning" | "error";
  site_mode: "global" | "specific_sites" | "global_exclusions";
  site_ids: number[];
  targets: Array<
    { kind: "all_devices" } | { kind: "device"; device_guid: string } | {
      kind: "filter";
      filter_id: number;
    }
  >;
  criteria: { match_mode: "all" | "any"; rules: Array<Record<string, unknown> & { type: string }> };
  actions: { actions: Array<Record<string, unknown> & { type: string }> };
  evaluation_interval_seconds: number;
  cooldown_seconds: number;
  auto_resolve_after_seconds: number;
  min_consecutive_matches: number;
  boot_grace_seconds: number;
  last_edited_by: string | null;
  created_at: string;
  updated_at: string;
  last_evaluated_at: string | null;
}

/** A maintenance window. */
export interface MaintenanceWindow {
  id: number;
  name: string;
  cron: string;
  timezone: string;
  duration_minutes: number;
  site_id: number | null;
  filter_id: number | null;
  enabled: boolean;
  created_by: string;
  created_at: string;
  updated_at: string;
  open_now: boolean;
  open_until: string | null;
  next_open_at?: string | null;
}

/** An operator account (`GET /api/users`). */
export interface UserAccount {
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

/** One audit entry. */
export interface AuditEntry {
  id: number;
  at: string;
  actor_kind: string;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  target: string | null;
  outcome: string;
  details: Record<string, unknown>;
  request_id: string | null;
  ip: string | null;
}

/** `GET /api/aegis/status`. */
export interface AegisStatus {
  state: "unconfigured" | "locked" | "unlocked";
  mode: "passphrase" | "keyfile" | null;
  key_id: string | null;
  keys: Array<{ key_id: string; created_at: string; retired_at: string | null; values: number }>;
  sealed_columns: Array<{ table: string; column: string }>;
  sealed_values: number;
  rotation: {
    target_key_id: string;
    started_at: string;
    finished_at: string | null;
    moved: number;
    failed: number;
    remaining: number;
    running: boolean;
  } | null;
}

/** A directory provider. */
export interface DirectoryProvider extends Record<string, unknown> {
  id: string;
  name: string;
  type: "ldap" | "active_directory";
  enabled: boolean;
  priority: number;
  server_urls: string[];
  host_overrides: Record<string, string>;
  start_tls: boolean;
  tls_ca_pem: string | null;
  base_dn: string;
  bind_dn: string | null;
  bind_password_set: boolean;
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
  group_mappings: Array<{ group_dn: string; role: Role }>;
  site_mappings: Array<{ label: string; group_dns: string[]; site_ids: number[] }>;
  tested: boolean;
  needs_test?: boolean;
  user_count?: number;
  last_test_at?: string | null;
  last_test_ok?: boolean | null;
  last_sync_at?: string | null;
}

/** A notification channel. */
export interface AlertChannel {
  id: string;
  kind: "webhook" | "slack" | "teams" | "discord" | "email";
  name: string;
  enabled: boolean;
  rate_per_minute: number;
  digest_minutes: number;
  quiet_hours: QuietHours | null;
  config: Record<string, unknown>;
  secrets: Record<string, boolean>;
  needs_secrets: boolean;
  operator_mail?: boolean;
  stats?: {
    held: number;
    queued: number;
    sending: number;
    delivered: number;
    dead: number;
    last_delivered_at: string | null;
    last_error: string | null;
    last_error_at: string | null;
  };
  created_at?: string;
  updated_at?: string;
}

/** Quiet hours of a channel. */
export interface QuietHours {
  start: string;
  end: string;
  time_zone: string;
  days?: number[];
  breakthrough_severity?: "info" | "warning" | "error" | null;
}

/** An alert route. */
export interface AlertRoute {
  id: string;
  name: string;
  enabled: boolean;
  watchdog_id: string | null;
  min_severity: "info" | "warning" | "error";
  site_ids: number[];
  events: string[];
  channel_ids: string[];
}

/** One entry of the delivery log. */
export interface Delivery {
  id: string;
  channel_id: string;
  channel_name: string;
  channel_kind: string;
  kind: string;
  status: string;
  incident_id: string | null;
  severity: string | null;
  title: string | null;
  hostname: string | null;
  recipient: string | null;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  delivered_at: string | null;
  last_error: string | null;
  response_status: number | null;
  response_excerpt: string | null;
  held_reason: string | null;
  hold_until: string | null;
  created_at: string;
}

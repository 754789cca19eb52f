-- Sites, devices and their key history: the identity tables of upstream §7, with real
-- foreign keys. Enrollment codes are stored as a SHA-256 hash (lookup) plus an Aegis-sealed
-- copy (so admins can display them); never in clear.
create table sites (
  id integer generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  description text not null default '' check (length(description) <= 2000),
  created_at timestamptz not null,
  updated_at timestamptz not null,
  enrollment_code_hash text not null unique check (enrollment_code_hash ~ '^[0-9a-f]{64}$'),
  enrollment_code_sealed text,
  enrollment_code_rotated_at timestamptz not null,
  auto_approve_until timestamptz
);
create unique index sites_name_lower_idx on sites (lower(name));

create table devices (
  guid uuid primary key,
  hostname text not null check (length(hostname) between 1 and 255),
  description text not null default '' check (length(description) <= 4000),
  site_id integer references sites (id) on delete set null,
  created_at timestamptz not null,
  last_enrollment_at timestamptz,
  ssl_key_fingerprint text check (ssl_key_fingerprint ~ '^[0-9a-f]{64}$'),
  key_added_at timestamptz,
  token_version integer not null default 1 check (token_version > 0),
  status text not null default 'active'
    check (status in ('active', 'quarantined', 'revoked', 'decommissioned')),
  status_changed_at timestamptz,
  -- Telemetry columns (upstream §7), filled by the realtime plugin.
  agent_id text,
  agent_hash text,
  device_type text,
  domain text,
  external_ip text,
  internal_ip text,
  last_reboot timestamptz,
  last_seen timestamptz,
  cpu_percent real,
  memory_percent real,
  last_user text,
  operating_system text,
  uptime bigint,
  connection_type text,
  connection_endpoint text,
  agent_update_target_build_id text,
  agent_update_state text,
  agent_update_error text,
  agent_update_source text,
  -- memory, network, software, services, storage, cpu, sessions, processes, role health…
  details jsonb not null default '{}'::jsonb
);
create unique index devices_hostname_lower_idx on devices (lower(hostname));
create index devices_fingerprint_idx on devices (ssl_key_fingerprint);
create index devices_status_idx on devices (status);
create index devices_site_idx on devices (site_id);

create table device_keys (
  id bigint generated always as identity primary key,
  guid uuid not null references devices (guid) on delete cascade,
  ssl_key_fingerprint text not null check (ssl_key_fingerprint ~ '^[0-9a-f]{64}$'),
  added_at timestamptz not null,
  retired_at timestamptz,
  unique (guid, ssl_key_fingerprint)
);
create index device_keys_fingerprint_idx on device_keys (ssl_key_fingerprint);

-- A purged GUID (and its last key) cannot come back without a fresh operator approval;
-- when it does, its token_version starts above every token it ever held.
create table device_purge_barriers (
  guid uuid primary key,
  required_token_version integer not null check (required_token_version > 0),
  purged_at timestamptz not null,
  purged_by text,
  last_hostname text,
  last_agent_id text,
  ssl_key_fingerprint text
);
create index device_purge_barriers_fingerprint_idx on device_purge_barriers (ssl_key_fingerprint);
create index device_purge_barriers_hostname_idx on device_purge_barriers (lower(last_hostname));

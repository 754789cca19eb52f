-- The inventory's schema as 001-004 leave it, for a new database (migrate.ts runs this
-- instead of those files when the inventory has applied nothing yet): devices and their
-- key history with real foreign keys to sites (the sites plugin's table), device filters
-- and saved list views, and what enrollment needs of each site. Enrollment codes are
-- stored as a SHA-256 hash (lookup) plus an Aegis-sealed copy (so admins can display
-- them); never in clear.
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
  -- Telemetry columns (upstream §7), written through this plugin's telemetry methods.
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

-- Device filters (the targeting language of jobs and watchdogs) and saved list views.
create table device_filters (
  id integer generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  description text not null default '' check (length(description) <= 2000),
  archived boolean not null default false,
  criteria_mode text not null check (criteria_mode in ('basic', 'advanced')),
  site_mode text not null check (site_mode in ('global', 'specific_sites', 'global_exclusions')),
  basic_criteria jsonb not null default '[]'::jsonb,
  advanced_criteria jsonb not null default '{"groups": []}'::jsonb,
  last_edited_by text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index device_filters_name_lower_idx on device_filters (lower(name));

create table device_filter_sites (
  filter_id integer not null references device_filters (id) on delete cascade,
  site_id integer not null references sites (id) on delete cascade,
  primary key (filter_id, site_id)
);

create table device_list_views (
  id integer generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  columns jsonb not null default '[]'::jsonb,
  filters jsonb not null default '{}'::jsonb,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index device_list_views_name_lower_idx on device_list_views (lower(name));

-- Dotted version text → integer array for older/newer comparisons; never raises.
create function borealis_version_parts(v text) returns integer[]
language sql immutable parallel safe as $$
  select coalesce(array_agg(least(coalesce(nullif(substring(p from '^[0-9]{1,9}'), ''), '0')::bigint, 2147483647)::integer order by i), '{}')
  from unnest(string_to_array(coalesce(v, ''), '.')) with ordinality as t(p, i)
$$;

-- What enrollment needs of a site: its code and its auto-approval window.
create table site_enrollment (
  site_id integer primary key references sites (id) on delete cascade,
  enrollment_code_hash text not null unique check (enrollment_code_hash ~ '^[0-9a-f]{64}$'),
  -- Sealed with the place (sites, enrollment_code_sealed, <site id>) it was first sealed at.
  enrollment_code_sealed text,
  enrollment_code_rotated_at timestamptz not null,
  auto_approve_until timestamptz
);

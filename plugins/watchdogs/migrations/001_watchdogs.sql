-- Watchdogs (upstream §5, §7): monitoring policies, their sites and targets, per-device
-- overrides, per-device evaluation state and incidents. A device in the normal state with
-- no counters has NO state row, so a full evaluation of many devices reads and writes
-- only the devices that are not quiet.
create table watchdogs (
  id uuid primary key,
  name text not null check (length(name) between 1 and 200),
  description text not null default '' check (length(description) <= 4000),
  archived boolean not null default false,
  enabled boolean not null default true,
  severity text not null default 'warning' check (severity in ('info', 'warning', 'error')),
  match_mode text not null default 'all' check (match_mode in ('all', 'any')),
  site_mode text not null default 'global'
    check (site_mode in ('global', 'specific_sites', 'global_exclusions')),
  criteria_json jsonb not null,
  actions_json jsonb not null,
  evaluation_interval_seconds integer not null default 60
    check (evaluation_interval_seconds between 30 and 86400),
  cooldown_seconds integer not null default 900 check (cooldown_seconds between 0 and 604800),
  auto_resolve_after_seconds integer not null default 300
    check (auto_resolve_after_seconds between 0 and 604800),
  min_consecutive_matches integer not null default 1
    check (min_consecutive_matches between 1 and 100),
  boot_grace_seconds integer not null default 0 check (boot_grace_seconds between 0 and 86400),
  last_edited_by text,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  last_evaluated_at timestamptz
);
create unique index watchdogs_name_lower_idx on watchdogs (lower(name));

create table watchdog_sites (
  watchdog_id uuid not null references watchdogs (id) on delete cascade,
  site_id integer not null references sites (id) on delete cascade,
  primary key (watchdog_id, site_id)
);

create table watchdog_targets (
  id bigint generated always as identity primary key,
  watchdog_id uuid not null references watchdogs (id) on delete cascade,
  kind text not null check (kind in ('all_devices', 'device', 'filter')),
  target_json jsonb not null default '{}'::jsonb,
  created_at timestamptz not null
);
create index watchdog_targets_watchdog_idx on watchdog_targets (watchdog_id);

create table watchdog_device_overrides (
  id bigint generated always as identity primary key,
  watchdog_id uuid not null references watchdogs (id) on delete cascade,
  device_guid uuid not null references devices (guid) on delete cascade,
  hostname text not null,
  site_id integer,
  state text not null check (state in ('suppressed', 'disabled')),
  reason text not null default '' check (length(reason) <= 1000),
  created_by text,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  expires_at timestamptz,
  unique (watchdog_id, device_guid)
);
create index watchdog_device_overrides_device_idx on watchdog_device_overrides (device_guid);

create table watchdog_incidents (
  id uuid primary key,
  watchdog_id uuid not null references watchdogs (id) on delete cascade,
  device_guid uuid not null references devices (guid) on delete cascade,
  hostname text not null,
  site_id integer,
  severity text not null check (severity in ('info', 'warning', 'error')),
  state text not null check (state in ('open', 'suppressed', 'resolved')),
  title text not null,
  message text not null default '',
  sample_json jsonb not null default '{}'::jsonb,
  rule_summary_json jsonb not null default '[]'::jsonb,
  action_summary_json jsonb not null default '[]'::jsonb,
  opened_at timestamptz not null,
  updated_at timestamptz not null,
  last_matched_at timestamptz,
  resolved_at timestamptz,
  resolution_reason text,
  suppressed_reason text,
  acknowledged_at timestamptz,
  acknowledged_by text,
  trigger_count integer not null default 1 check (trigger_count >= 1),
  offline_only boolean not null default false
);
-- At most one unresolved incident per watchdog and device: a recurrence after
-- resolution opens a new row, a re-trigger while one is open refreshes it.
create unique index watchdog_incidents_active_idx on watchdog_incidents (watchdog_id, device_guid)
  where state <> 'resolved';
create index watchdog_incidents_state_idx on watchdog_incidents (state, opened_at desc);
create index watchdog_incidents_device_idx on watchdog_incidents (device_guid);

create table watchdog_device_state (
  watchdog_id uuid not null references watchdogs (id) on delete cascade,
  device_guid uuid not null references devices (guid) on delete cascade,
  state text not null
    check (state in ('normal', 'pending', 'triggered', 'suppressed', 'disabled', 'stale_data')),
  consecutive_matches integer not null default 0,
  first_match_at timestamptz,
  last_match_at timestamptz,
  clear_since timestamptz,
  last_sample_json jsonb not null default '{}'::jsonb,
  current_incident_id uuid references watchdog_incidents (id) on delete set null,
  last_action_at timestamptz,
  -- End of the maintenance window or override the device was last held by: matches
  -- count afresh after it, and an offline clock restarts there.
  held_until timestamptz,
  updated_at timestamptz not null,
  primary key (watchdog_id, device_guid)
);
create index watchdog_device_state_device_idx on watchdog_device_state (device_guid);

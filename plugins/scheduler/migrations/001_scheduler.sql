-- Scheduler: code-signing keys, activity history, scheduled jobs with their
-- occurrences and per-target runs (leased work items), maintenance windows.

create table scheduler_signing_keys (
  kid text primary key check (kid ~ '^[0-9a-f]{16}$'),
  public_spki text not null,
  -- Sealed by Aegis; NULL after a vault force-reset (a new key is made on next use).
  private_sealed text,
  created_at timestamptz not null,
  retired_at timestamptz
);

create table activity_history (
  id bigint generated always as identity primary key,
  device_guid uuid references devices (guid) on delete cascade,
  hostname text not null,
  site_id integer,
  assembly_guid text,
  script_name text not null default '',
  script_type text,
  run_mode text not null default 'system',
  requested_by text not null default '',
  -- A quick run's id (several targets share it); NULL for scheduled runs.
  quick_job_id uuid,
  status text not null
    check (status in ('Pending', 'Running', 'Success', 'Failed', 'Expired', 'Timed Out', 'Cancelled')),
  stdout text not null default '',
  stderr text not null default '',
  exit_code integer,
  queue_lane text,
  activity_kind text not null default 'script',
  metadata jsonb not null default '{}'::jsonb,
  ran_at timestamptz not null,
  started_at timestamptz,
  updated_at timestamptz not null,
  finished_at timestamptz,
  -- Past this moment a non-finished activity becomes Timed Out.
  deadline_at timestamptz not null
);
create index activity_history_device_idx on activity_history (device_guid, id desc);
create index activity_history_open_idx on activity_history (deadline_at)
  where status in ('Pending', 'Running');
create index activity_history_ran_at_idx on activity_history (ran_at);
create index activity_history_quick_idx on activity_history (quick_job_id);

create table scheduled_jobs (
  id bigint generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  components jsonb not null,
  targets jsonb not null,
  schedule_type text not null check (schedule_type in (
    'immediately', 'once', 'every_5_minutes', 'every_10_minutes', 'every_15_minutes',
    'every_30_minutes', 'every_hour', 'daily', 'weekly', 'monthly', 'yearly', 'cron')),
  start_ts timestamptz not null,
  cron text,
  timezone text not null default 'UTC',
  duration_stop_enabled boolean not null default false,
  expiration text not null default 'no_expire',
  execution_context text not null default 'system',
  credential_id integer,
  use_service_account boolean not null default true,
  job_kind text not null default 'automation',
  enabled boolean not null default true,
  maintenance_window_only boolean not null default false,
  -- Sites the creator could see (NULL: all); targets resolve inside them.
  allowed_site_ids integer[],
  created_by text not null default '',
  created_at timestamptz not null,
  updated_at timestamptz not null,
  last_occurrence_ts timestamptz
);

create table scheduled_job_occurrences (
  id bigint generated always as identity primary key,
  job_id bigint not null references scheduled_jobs (id) on delete cascade,
  scheduled_ts timestamptz not null,
  status text not null check (status in ('Running', 'Complete', 'Skipped')),
  skip_reason text,
  manual boolean not null default false,
  created_at timestamptz not null,
  finished_at timestamptz,
  unique (job_id, scheduled_ts)
);
create index scheduled_job_occurrences_open_idx on scheduled_job_occurrences (job_id)
  where status = 'Running';

create table scheduled_job_runs (
  id bigint generated always as identity primary key,
  job_id bigint not null references scheduled_jobs (id) on delete cascade,
  occurrence_id bigint not null references scheduled_job_occurrences (id) on delete cascade,
  scheduled_ts timestamptz not null,
  component_index integer not null default 0,
  device_guid uuid,
  hostname text not null,
  site_id integer,
  resolved_from_filter_id integer,
  status text not null check (status in (
    'Pending', 'Dispatching', 'Running', 'Success', 'Failed', 'Expired', 'Timed Out', 'Skipped')),
  error text,
  activity_id bigint references activity_history (id) on delete set null,
  lease_owner text,
  lease_expires_at timestamptz,
  dispatch_count integer not null default 0,
  -- A Pending run still waiting at this moment becomes Expired (NULL: never).
  expires_at timestamptz,
  -- Dispatch only while the device is inside a maintenance window.
  window_only boolean not null default false,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  started_ts timestamptz,
  finished_ts timestamptz
);
create index scheduled_job_runs_job_idx on scheduled_job_runs (job_id, scheduled_ts, hostname);
create index scheduled_job_runs_open_idx on scheduled_job_runs (status, lease_expires_at)
  where status in ('Pending', 'Dispatching', 'Running');
create index scheduled_job_runs_activity_idx on scheduled_job_runs (activity_id);
create index scheduled_job_runs_occurrence_idx on scheduled_job_runs (occurrence_id);

create table maintenance_windows (
  id bigint generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  cron text not null,
  timezone text not null default 'UTC',
  duration_minutes integer not null check (duration_minutes between 1 and 10080),
  site_id integer references sites (id) on delete cascade,
  filter_id integer references device_filters (id) on delete cascade,
  enabled boolean not null default true,
  created_by text not null default '',
  created_at timestamptz not null,
  updated_at timestamptz not null,
  check (site_id is null or filter_id is null)
);

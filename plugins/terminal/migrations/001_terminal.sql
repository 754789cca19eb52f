-- Remote terminal sessions and live device actions: the per-site policy, every session
-- (the audit record an operator's shell leaves: who, device, when, bytes), its optional
-- transcript sealed by the vault, device actions (service control, process kill, snapshot
-- refresh) and file transfers. History outlives the device: no foreign key to devices.
-- Sites and devices belong to the inventory plugin and are reached through its service
-- only, so no foreign key to sites either: a deleted site's policy is pruned hourly.

create table terminal_site_policies (
  site_id integer primary key,
  terminal_enabled boolean not null default true,
  require_reason boolean not null default false,
  record_transcripts boolean not null default false,
  files_enabled boolean not null default true,
  updated_by text,
  updated_at timestamptz not null
);

create table terminal_sessions (
  id uuid primary key,
  device_guid uuid not null,
  hostname text not null,
  site_id integer,
  operator_id text not null,
  operator_name text not null,
  reason text check (reason is null or length(reason) <= 500),
  run_as text not null check (run_as in ('system', 'user')),
  status text not null check (status in ('opening', 'open', 'detached', 'closed')),
  -- The engine instance holding the operator's socket (frames for the session go there).
  owner_instance text not null,
  recorded boolean not null default false,
  -- The window size the session opened with (the transcript's header).
  cols integer not null check (cols between 2 and 1000),
  rows integer not null check (rows between 1 and 500),
  mode text check (mode is null or mode in ('pty', 'line')),
  shell_user text,
  pid integer,
  created_at timestamptz not null,
  started_at timestamptz,
  detached_at timestamptz,
  ended_at timestamptz,
  end_reason text,
  exit_code integer,
  bytes_in bigint not null default 0,
  bytes_out bigint not null default 0
);
create index terminal_sessions_device_idx on terminal_sessions (device_guid, created_at desc);
create index terminal_sessions_live_idx on terminal_sessions (status) where status <> 'closed';
create index terminal_sessions_operator_idx on terminal_sessions (operator_id)
  where status <> 'closed';

-- Output of recorded sessions in asciicast v2 event lines, one sealed chunk per row at
-- (terminal_transcripts, sealed, id).
create table terminal_transcripts (
  id bigserial primary key,
  session_id uuid not null references terminal_sessions (id) on delete cascade,
  seq integer not null,
  sealed text,
  bytes integer not null,
  created_at timestamptz not null,
  unique (session_id, seq)
);
create index terminal_transcripts_created_idx on terminal_transcripts (created_at);

create table terminal_device_actions (
  id uuid primary key,
  device_guid uuid not null,
  hostname text not null,
  site_id integer,
  operator_id text not null,
  operator_name text not null,
  kind text not null check (kind in ('service', 'process_kill', 'refresh')),
  params jsonb not null,
  status text not null check (status in ('pending', 'succeeded', 'failed', 'timed_out')),
  result jsonb,
  created_at timestamptz not null,
  finished_at timestamptz
);
create index terminal_device_actions_device_idx
  on terminal_device_actions (device_guid, created_at desc);

create table terminal_transfers (
  id uuid primary key,
  device_guid uuid not null,
  hostname text not null,
  site_id integer,
  operator_id text not null,
  operator_name text not null,
  direction text not null check (direction in ('download', 'upload')),
  path text not null check (length(path) between 1 and 4096),
  status text not null check (status in ('running', 'succeeded', 'failed')),
  size bigint,
  bytes bigint not null default 0,
  sha256 text,
  error text,
  created_at timestamptz not null,
  finished_at timestamptz
);
create index terminal_transfers_device_idx on terminal_transfers (device_guid, created_at desc);

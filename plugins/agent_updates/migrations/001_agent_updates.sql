-- Agent packages the engine serves, install tokens, update channels and staged updates.
create table agent_releases (
  version text primary key,
  channel text not null default 'none' check (channel in ('stable', 'beta', 'none')),
  manifest_sha256 text not null,
  signature text not null,
  signing_kid text not null,
  platforms jsonb not null default '{}'::jsonb,
  built_at timestamptz not null,
  registered_at timestamptz not null
);

create table agent_install_tokens (
  id uuid primary key,
  site_id integer not null,
  token_hash text not null unique,
  token_sealed text,
  token_prefix text not null,
  auto_approve boolean not null default true,
  max_uses integer check (max_uses is null or max_uses > 0),
  use_count integer not null default 0,
  note text not null default '',
  created_by text not null,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_by text,
  last_used_at timestamptz,
  refused_count integer not null default 0,
  last_refused_at timestamptz
);
create index agent_install_tokens_site on agent_install_tokens (site_id, created_at desc);

create table agent_install_token_uses (
  token_id uuid not null references agent_install_tokens (id) on delete cascade,
  key_fingerprint text not null,
  hostname text not null,
  remote_addr text,
  used_at timestamptz not null,
  primary key (token_id, key_fingerprint)
);

create table agent_update_policies (
  scope text not null check (scope in ('site', 'device')),
  scope_id text not null,
  channel text not null check (channel in ('stable', 'beta', 'pinned')),
  pinned_version text,
  auto_update boolean not null default false,
  updated_at timestamptz not null,
  primary key (scope, scope_id),
  check (channel <> 'pinned' or pinned_version is not null)
);

create table agent_rollouts (
  id uuid primary key,
  version text not null references agent_releases (version),
  max_concurrency integer not null check (max_concurrency between 1 and 10000),
  created_by text not null,
  created_at timestamptz not null,
  status text not null default 'active' check (status in ('active', 'completed', 'cancelled'))
);

create table agent_update_devices (
  guid uuid primary key,
  site_id integer,
  version text,
  platform text,
  last_check_at timestamptz,
  state text not null default 'idle'
    check (state in ('idle', 'queued', 'updating', 'succeeded', 'failed', 'rolled_back')),
  target_version text,
  rollout_id uuid references agent_rollouts (id) on delete set null,
  state_changed_at timestamptz,
  last_error text
);
create index agent_update_devices_rollout on agent_update_devices (rollout_id, state);

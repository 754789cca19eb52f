-- The approval queue, wrong-code tracking and the enrollment proof replay cache.
create table device_approvals (
  id uuid primary key,
  approval_reference uuid not null unique,
  guid uuid,
  hostname_claimed text not null check (length(hostname_claimed) between 1 and 255),
  ssl_key_fingerprint_claimed text not null check (ssl_key_fingerprint_claimed ~ '^[0-9a-f]{64}$'),
  site_id integer references sites (id) on delete cascade,
  status text not null check (status in ('pending', 'approved', 'denied', 'expired', 'completed')),
  client_nonce bytea not null,
  server_nonce bytea not null,
  agent_pubkey_der bytea not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  expires_at timestamptz not null,
  decided_at timestamptz,
  approved_by_user_id text,
  approved_by_username text,
  conflict_resolution text check (conflict_resolution in ('overwrite', 'coexist', 'auto_merge_fingerprint')),
  remote_addr text,
  onboarding_job_id text,
  onboarding_run_id text,
  onboarding_target text
);
create index device_approvals_status_idx on device_approvals (status, created_at desc);
create index device_approvals_fingerprint_idx on device_approvals (ssl_key_fingerprint_claimed, status);
create index device_approvals_site_idx on device_approvals (site_id);
create index device_approvals_job_idx on device_approvals (onboarding_job_id);

create table enrollment_code_failures (
  id bigint generated always as identity primary key,
  hostname_claimed text,
  ssl_key_fingerprint_claimed text not null unique,
  enrollment_code_mask text not null,
  remote_addr text,
  first_seen_at timestamptz not null,
  last_seen_at timestamptz not null,
  attempt_count integer not null default 1,
  last_error text
);
create index enrollment_code_failures_seen_idx on enrollment_code_failures (last_seen_at);

create table enrollment_proof_replays (
  key text primary key,
  expires_at timestamptz not null
);

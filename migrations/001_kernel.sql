-- The kernel's own tables: the audit trail and the overflow store for large events.
create table audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor_kind text not null check (actor_kind in ('operator', 'device', 'system', 'anonymous')),
  actor_id text,
  actor_name text,
  action text not null check (length(action) between 1 and 200),
  target text,
  outcome text not null check (outcome in ('success', 'failure', 'denied')),
  details jsonb not null default '{}'::jsonb,
  request_id text,
  ip text
);
create index audit_log_at_idx on audit_log (at desc, id desc);
create index audit_log_actor_idx on audit_log (actor_id, at desc);
create index audit_log_action_idx on audit_log (action, at desc);

create table event_payloads (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  body jsonb not null,
  created_at timestamptz not null default now()
);
create index event_payloads_created_idx on event_payloads (created_at);

-- Alert delivery: channels (where messages go), routes (which incidents go where),
-- operators' own subscriptions, the outbox of incident events (written in the same
-- transaction as the incident change) and the deliveries made from it (the delivery log).

create table alert_channels (
  id uuid primary key,
  name text not null check (length(name) between 1 and 200),
  kind text not null check (kind in ('webhook', 'slack', 'discord', 'teams', 'email')),
  enabled boolean not null default true,
  -- What is not secret: mail server, sender, recipients; a webhook's scheme and host for display.
  config_json jsonb not null default '{}'::jsonb,
  -- One sealed JSON document at (alert_channels, secrets_sealed, id): the webhook URL (a
  -- chat webhook URL is a bearer credential), the signing secret, the SMTP password.
  -- NULL after a vault force-reset: the channel is disabled until an admin re-enters them.
  secrets_sealed text,
  rate_per_minute integer not null default 30 check (rate_per_minute between 1 and 10000),
  digest_minutes integer not null default 0 check (digest_minutes between 0 and 1440),
  quiet_hours_json jsonb,
  -- The email channel that carries operators' own alert mail (at most one).
  operator_mail boolean not null default false check (not operator_mail or kind = 'email'),
  created_by text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index alert_channels_name_idx on alert_channels (lower(name));
create unique index alert_channels_operator_mail_idx on alert_channels (operator_mail)
  where operator_mail;

-- A route sends the events of one watchdog (watchdog_id set), or of every watchdog that
-- has no enabled route of its own (a default route), to its channels.
create table alert_routes (
  id uuid primary key,
  name text not null check (length(name) between 1 and 200),
  enabled boolean not null default true,
  watchdog_id uuid references watchdogs (id) on delete cascade,
  min_severity text not null default 'info' check (min_severity in ('info', 'warning', 'error')),
  -- Empty: every site (and devices without one).
  site_ids integer[] not null default '{}',
  events text[] not null default '{opened,escalated,acknowledged,resolved}'
    check (cardinality(events) >= 1
      and events <@ array['opened', 'escalated', 'acknowledged', 'resolved']::text[]),
  created_by text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index alert_routes_watchdog_idx on alert_routes (watchdog_id);

create table alert_route_channels (
  route_id uuid not null references alert_routes (id) on delete cascade,
  channel_id uuid not null references alert_channels (id) on delete cascade,
  primary key (route_id, channel_id)
);
create index alert_route_channels_channel_idx on alert_route_channels (channel_id);

-- An operator's opt-in to alert mail at their own address (the address is the operators
-- plugin's); mail goes through the operator_mail channel, only for sites they can see.
create table alert_subscriptions (
  user_id uuid primary key references users (id) on delete cascade,
  enabled boolean not null default true,
  min_severity text not null default 'error' check (min_severity in ('info', 'warning', 'error')),
  events text[] not null default '{opened,escalated,resolved}'
    check (cardinality(events) >= 1
      and events <@ array['opened', 'escalated', 'acknowledged', 'resolved']::text[]),
  created_at timestamptz not null,
  updated_at timestamptz not null
);

-- The outbox: one row per incident event, inserted by the watchdogs write hook inside the
-- evaluation's transaction. The delivery worker fans each out into deliveries.
create table alert_events (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('opened', 'escalated', 'acknowledged', 'resolved')),
  incident_id uuid not null,
  watchdog_id uuid not null,
  site_id integer,
  severity text not null,
  -- The incident as it stood after the change, and what changed.
  payload_json jsonb not null,
  occurred_at timestamptz not null,
  -- A dispatcher's claim (so a second instance skips it) and when it was fanned out.
  claimed_until timestamptz,
  dispatched_at timestamptz
);
create index alert_events_pending_idx on alert_events (id) where dispatched_at is null;
create index alert_events_occurred_idx on alert_events (occurred_at);

-- One message to one channel (and, for operators' mail, one recipient): the delivery log.
create table alert_deliveries (
  id uuid primary key,
  -- Log order (several deliveries share one clock instant) and the log's page cursor.
  seq bigint generated always as identity unique,
  channel_id uuid not null references alert_channels (id) on delete cascade,
  event_id bigint references alert_events (id) on delete set null,
  recipient_user_id uuid references users (id) on delete cascade,
  -- The address it went to (operators' mail only).
  recipient text,
  kind text not null
    check (kind in ('opened', 'escalated', 'acknowledged', 'resolved', 'digest', 'test')),
  incident_id uuid,
  severity text,
  status text not null
    check (status in ('held', 'queued', 'sending', 'delivered', 'dead', 'digested')),
  -- Held for quiet hours or a digest until then; folded into the digest delivery digest_id.
  held_reason text check (held_reason in ('quiet_hours', 'digest')),
  hold_until timestamptz,
  digest_id uuid references alert_deliveries (id) on delete set null,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null,
  last_attempt_at timestamptz,
  claim_token uuid,
  claimed_until timestamptz,
  last_error text,
  response_status integer,
  response_excerpt text,
  -- A digest's items (other deliveries read their event).
  payload_json jsonb,
  created_at timestamptz not null,
  delivered_at timestamptz
);
-- Fanning one event out twice (a dispatcher whose claim ran out) adds nothing.
create unique index alert_deliveries_target_idx on alert_deliveries
  (event_id, channel_id, coalesce(recipient_user_id, '00000000-0000-0000-0000-000000000000'::uuid))
  where event_id is not null;
create index alert_deliveries_due_idx on alert_deliveries (channel_id, next_attempt_at, id)
  where status = 'queued';
create index alert_deliveries_held_idx on alert_deliveries (channel_id, hold_until)
  where status = 'held';
create index alert_deliveries_sending_idx on alert_deliveries (claimed_until)
  where status = 'sending';
create index alert_deliveries_attempted_idx on alert_deliveries (last_attempt_at);
create index alert_deliveries_log_idx on alert_deliveries (channel_id, seq desc);
create index alert_deliveries_incident_idx on alert_deliveries (incident_id);
create index alert_deliveries_created_idx on alert_deliveries (created_at);

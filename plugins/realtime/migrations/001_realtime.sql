-- Which engine instance holds each agent's socket, so a message sent through any
-- instance reaches the agent. Rows of an instance that died are ignored once its
-- heartbeat in realtime_instances is stale.
create table realtime_instances (
  instance_id uuid primary key,
  started_at timestamptz not null,
  alive_at timestamptz not null
);

create table agent_connections (
  guid uuid primary key references devices (guid) on delete cascade,
  instance_id uuid not null,
  agent_id text,
  service_mode text,
  connected_at timestamptz not null,
  remote_addr text
);
create index agent_connections_instance_idx on agent_connections (instance_id);

-- Messages for agents that are offline right now, held for a short window.
create table agent_outbox (
  id bigint generated always as identity primary key,
  guid uuid not null references devices (guid) on delete cascade,
  message jsonb not null,
  created_at timestamptz not null,
  expires_at timestamptz not null
);
create index agent_outbox_guid_idx on agent_outbox (guid, id);
create index agent_outbox_expires_idx on agent_outbox (expires_at);

-- Single-use tickets for clients that cannot send headers on a WebSocket upgrade.
create table agent_ws_tickets (
  ticket_hash text primary key check (ticket_hash ~ '^[0-9a-f]{64}$'),
  guid uuid not null references devices (guid) on delete cascade,
  token_version integer not null,
  expires_at timestamptz not null
);

-- Software inventory, normalized out of the details document (upstream §7).
create table device_software_inventory (
  id bigint generated always as identity primary key,
  device_guid uuid not null references devices (guid) on delete cascade,
  name text not null,
  name_normalized text not null,
  version text not null default '',
  source text not null default '',
  captured_at timestamptz not null
);
create index device_software_inventory_device_idx on device_software_inventory (device_guid);
create index device_software_inventory_name_idx on device_software_inventory (name_normalized);

-- When the cluster was last known alive: after a full outage, devices that were online
-- then get a grace period to reconnect instead of being shown offline at once.
create table realtime_cluster_state (
  id integer primary key check (id = 1),
  last_alive_at timestamptz not null
);

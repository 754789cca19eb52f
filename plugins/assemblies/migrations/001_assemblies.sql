-- The assembly catalog: one row per assembly in one of three domains. The content
-- (script text, workflow JSON, binary bytes) lives outside the row in the payload store
-- (<data dir>/Assemblies/Payloads/<payload_guid>/payload.<ext>); the row records its
-- size and SHA-256 so every read can prove the file is the one that was written.
create schema if not exists assemblies;

create table assemblies.assemblies (
  assembly_guid uuid primary key,
  domain text not null check (domain in ('official', 'community', 'user_created')),
  display_name text not null check (length(display_name) between 1 and 200),
  summary text not null default '' check (length(summary) <= 4000),
  category text not null default 'script' check (length(category) <= 100),
  assembly_kind text not null check (assembly_kind in ('script', 'workflow', 'ansible')),
  assembly_type text check (assembly_type in ('powershell', 'batch', 'bash', 'workflow', 'ansible')),
  version integer not null default 1 check (version >= 1),
  metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
  tags jsonb not null default '[]'::jsonb check (jsonb_typeof(tags) = 'array'),
  checksum text not null check (checksum ~ '^[0-9a-f]{64}$'),
  payload_guid uuid not null unique,
  payload_type text not null check (payload_type in ('script', 'workflow', 'binary', 'unknown')),
  payload_file_name text not null check (payload_file_name ~ '^payload\.[a-z0-9]{1,8}$'),
  payload_file_extension text not null check (payload_file_extension ~ '^[a-z0-9]{1,8}$'),
  payload_size_bytes bigint not null check (payload_size_bytes >= 0),
  payload_checksum text not null check (payload_checksum ~ '^[0-9a-f]{64}$'),
  payload_created_at timestamptz not null,
  payload_updated_at timestamptz not null,
  -- Official rows built by the catalog sync: the file they came from (relative path).
  source_path text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index assemblies_domain_kind_idx on assemblies.assemblies (domain, assembly_kind);
create index assemblies_category_idx on assemblies.assemblies (category);

-- Fingerprint of the shipped catalog last synced into the official domain, so boot only
-- rebuilds the domain when the files changed.
create table assemblies.catalog_state (
  id boolean primary key default true check (id),
  fingerprint text not null check (fingerprint ~ '^[0-9a-f]{64}$'),
  file_count integer not null check (file_count >= 0),
  synced_at timestamptz not null
);

-- Directory (LDAP / Active Directory) providers, their group mappings, and the cache of
-- accounts that sign in through them.
create table directory_providers (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 100),
  provider_type text not null check (provider_type in ('ldap', 'active_directory')),
  enabled boolean not null default false,
  priority integer not null default 100 check (priority between 0 and 100000),
  server_urls jsonb not null,
  start_tls boolean not null default false,
  tls_ca_pem text,
  base_dn text not null,
  bind_dn text,
  -- Sealed by Aegis at (directory_providers, bind_password_encrypted, id); never returned.
  bind_password_encrypted text,
  user_search_filter text not null,
  group_search_base text,
  username_attribute text not null,
  display_name_attribute text not null,
  mail_attribute text not null,
  member_of_attribute text not null,
  group_member_attribute text not null,
  -- An entry matching this filter is disabled in the directory.
  disabled_filter text,
  nested_groups boolean not null default true,
  connect_timeout_ms integer not null check (connect_timeout_ms between 100 and 60000),
  operation_timeout_ms integer not null check (operation_timeout_ms between 100 and 120000),
  -- Bumped by every change to how the provider connects or searches; a provider may be
  -- enabled only while tested_version = settings_version (its current settings passed).
  settings_version integer not null default 1,
  tested_version integer,
  last_test_at timestamptz,
  last_test_ok boolean,
  last_test_message text,
  last_sync_at timestamptz,
  last_sync_ok boolean,
  last_sync_message text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index directory_providers_name_key on directory_providers (lower(name));

create table directory_provider_group_mappings (
  id uuid primary key default gen_random_uuid(),
  provider_id uuid not null references directory_providers (id) on delete cascade,
  group_dn text not null,
  role text not null check (role in ('Admin', 'User')),
  position integer not null
);
create index directory_provider_group_mappings_provider_idx
  on directory_provider_group_mappings (provider_id);

create table directory_provider_site_mappings (
  id uuid primary key default gen_random_uuid(),
  provider_id uuid not null references directory_providers (id) on delete cascade,
  label text not null default '' check (length(label) <= 100),
  group_dns jsonb not null,
  site_ids jsonb not null,
  position integer not null
);
create index directory_provider_site_mappings_provider_idx
  on directory_provider_site_mappings (provider_id);

-- One row per operator account that comes from a provider. A provider cannot be deleted
-- while rows point at it (convert or delete those accounts first).
create table directory_users (
  user_id uuid primary key references users (id) on delete cascade,
  provider_id uuid not null references directory_providers (id) on delete restrict,
  dn text not null,
  -- entryUUID (OpenLDAP) or objectGUID (AD): the entry itself, even after a rename.
  subject text,
  mail text,
  groups jsonb not null default '[]'::jsonb,
  -- True when this plugin disabled the account (directory disabled it, it vanished, or
  -- it lost every mapped group); only then may a later login or sync re-enable it.
  disabled_by_directory boolean not null default false,
  disabled_reason text,
  disabled_at timestamptz,
  last_login_at timestamptz,
  last_sync_at timestamptz,
  created_at timestamptz not null
);
create index directory_users_provider_idx on directory_users (provider_id);

-- Stored credentials for remote execution. Secrets are Aegis envelopes bound to
-- (credentials, <column>, id). site_id has no foreign key here because the sites table
-- belongs to the inventory plugin, which loads after this one; inventory adds
-- credentials_site_fk (on delete set null).
create sequence credentials_id_seq;
create table credentials (
  id bigint primary key default nextval('credentials_id_seq'),
  name text not null check (length(name) between 1 and 200),
  description text not null default '',
  site_id integer,
  credential_type text not null check (credential_type in ('machine', 'domain', 'token')),
  connection_type text not null check (connection_type in ('ssh', 'windows', 'winrm')),
  username text,
  password_encrypted text,
  private_key_encrypted text,
  private_key_passphrase_encrypted text,
  become_method text,
  become_username text,
  become_password_encrypted text,
  metadata jsonb not null default '{}'::jsonb,
  winrm_transport text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
alter sequence credentials_id_seq owned by credentials.id;
create unique index credentials_name_key on credentials (lower(name));
create index credentials_site_idx on credentials (site_id);

-- The vault's state: one row describing how the key-encryption key (KEK) is derived,
-- plus the data keys (DEKs) it wraps. Sealed values name their DEK by key id, so old
-- DEKs stay until no registered column uses them.
create table aegis_state (
  id smallint primary key default 1 check (id = 1),
  mode text not null check (mode in ('passphrase', 'keyfile')),
  kdf_name text not null default 'scrypt' check (kdf_name = 'scrypt'),
  kdf_params jsonb not null,
  -- A fixed plaintext sealed under the KEK: proves a passphrase or key file is right.
  verification_token text not null,
  active_key_id text not null,
  -- Rotation progress: {target_key_id, started_at, finished_at?, moved, failed}.
  rotation jsonb,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table aegis_keys (
  key_id text primary key check (key_id ~ '^[a-z0-9]{8,32}$'),
  -- The DEK sealed under the KEK (base64 nonce ‖ ciphertext ‖ tag).
  wrapped_key text not null,
  created_at timestamptz not null,
  retired_at timestamptz
);

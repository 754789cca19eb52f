-- Engine signing keys, refresh token families and the cross-instance DPoP replay cache.
create table engine_signing_keys (
  kid text primary key check (kid ~ '^[0-9a-f]{16}$'),
  alg text not null check (alg in ('EdDSA')),
  public_jwk jsonb not null,
  private_sealed text not null,
  created_at timestamptz not null,
  -- Set when a newer key takes over signing; the key keeps verifying until
  -- retired_at + the access token lifetime.
  retired_at timestamptz
);

create table refresh_tokens (
  id uuid primary key,
  family_id uuid not null,
  guid uuid not null references devices (guid) on delete cascade,
  token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
  dpop_jkt text not null,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  absolute_expires_at timestamptz not null,
  last_used_at timestamptz,
  rotated_at timestamptz,
  revoked_at timestamptz,
  revoke_reason text
);
create index refresh_tokens_guid_idx on refresh_tokens (guid);
create index refresh_tokens_family_idx on refresh_tokens (family_id);
create index refresh_tokens_expiry_idx on refresh_tokens (absolute_expires_at);

-- Seen DPoP proofs (key thumbprint + jti) while they could still be accepted.
create table dpop_jti (
  key text primary key,
  expires_at timestamptz not null
);
create index dpop_jti_expires_idx on dpop_jti (expires_at);

-- A shared secret for stateless DPoP-Nonce values, so every instance accepts every
-- instance's nonces.
create table dpop_nonce_secret (
  id integer primary key check (id = 1),
  secret text not null,
  created_at timestamptz not null
);

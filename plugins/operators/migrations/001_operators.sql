-- Operator accounts, their sessions, API tokens, site assignments and login throttling.
create table users (
  id uuid primary key default gen_random_uuid(),
  username text not null check (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
  display_name text not null default '' check (length(display_name) <= 200),
  role text not null default 'User' check (role in ('Admin', 'User')),
  -- "$scrypt$ln=15,r=8,p=1$<salt>$<hash>": parameters travel with each hash so they can
  -- be raised and the password rehashed at the next login. NULL for directory users.
  password_hash text,
  -- An admin may exempt a user from MFA; new users need it.
  mfa_exempt boolean not null default false,
  mfa_enabled boolean not null default false,
  -- TOTP seed sealed by Aegis at (users, mfa_secret, id).
  mfa_secret text,
  -- The last TOTP time step accepted: each code works once.
  mfa_last_step bigint not null default 0,
  auth_source text not null default 'local' check (auth_source in ('local', 'directory')),
  disabled boolean not null default false,
  auth_reset_required boolean not null default false,
  last_login timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index users_username_key on users (lower(username));

-- site_id has no foreign key: the sites table belongs to the inventory plugin, which
-- requires this one and adds user_site_assignments_site_fk (on delete cascade).
create table user_site_assignments (
  user_id uuid not null references users (id) on delete cascade,
  site_id integer not null,
  assigned_at timestamptz not null,
  primary key (user_id, site_id)
);
create index user_site_assignments_site_idx on user_site_assignments (site_id);

-- A session's bearer value is 256 random bits; only its SHA-256 is stored.
create table operator_sessions (
  id uuid primary key default gen_random_uuid(),
  token_hash text not null unique,
  user_id uuid not null references users (id) on delete cascade,
  method text not null,
  created_at timestamptz not null,
  last_seen_at timestamptz not null,
  expires_at timestamptz not null,
  revoked_at timestamptz,
  ip text,
  user_agent text,
  -- Dev Mode grant held server-side, so it survives restarts and spans instances.
  dev_mode_until timestamptz
);
create index operator_sessions_user_idx on operator_sessions (user_id, created_at desc);

create table api_tokens (
  id uuid primary key default gen_random_uuid(),
  token_hash text not null unique,
  user_id uuid not null references users (id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  read_only boolean not null default false,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_tokens_user_idx on api_tokens (user_id);

-- Pending second-factor state after a correct password (5 minutes).
create table mfa_pending (
  token_hash text primary key,
  user_id uuid not null references users (id) on delete cascade,
  stage text not null check (stage in ('setup', 'verify')),
  -- Setup stage: the new TOTP seed sealed at (mfa_pending, secret, token_hash).
  secret text,
  attempts integer not null default 0,
  expires_at timestamptz not null
);

-- Failed-login counters per submitted username (known or not) and per client address.
create table login_throttle (
  kind text not null check (kind in ('user', 'ip')),
  key text not null,
  failures integer not null default 0,
  last_failure_at timestamptz not null,
  locked_until timestamptz,
  primary key (kind, key)
);

-- Passkeys (WebAuthn credentials) and the single-use challenges behind them.
create table user_passkeys (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references users (id) on delete cascade,
  credential_id text not null unique,
  public_key text not null,
  sign_count bigint not null default 0,
  label text not null default 'Passkey' check (length(label) between 1 and 100),
  transports jsonb not null default '[]'::jsonb,
  aaguid text,
  created_at timestamptz not null,
  last_used_at timestamptz
);
create index user_passkeys_user_idx on user_passkeys (user_id);

create table webauthn_challenges (
  id uuid primary key default gen_random_uuid(),
  challenge text not null unique,
  purpose text not null check (purpose in ('register', 'authenticate')),
  user_id uuid references users (id) on delete cascade,
  expires_at timestamptz not null
);

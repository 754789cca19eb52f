-- Host overrides: {"dc1.corp.example": "10.0.0.5", …}. A server URL whose host name is a key
-- is reached at that address, while TLS (SNI and the certificate's name) still uses the
-- host name. Keys are lower-case host names, values IPv4 / IPv6 literals (checked by the
-- API; the database only insists on an object).
alter table directory_providers
  add column host_overrides jsonb not null default '{}'::jsonb
  check (jsonb_typeof(host_overrides) = 'object');

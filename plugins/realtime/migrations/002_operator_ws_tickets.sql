-- Single-use, 30-second tickets that open the operator socket without a cookie: a
-- console on another origin signs in with a bearer token, which a browser cannot send
-- on a WebSocket. Only the SHA-256 of a ticket is stored; the principal it was issued
-- to is checked against its session again when it is redeemed.
create table operator_ws_tickets (
  ticket_hash text primary key check (ticket_hash ~ '^[0-9a-f]{64}$'),
  credential_id text not null,
  principal jsonb not null,
  expires_at timestamptz not null
);

-- Rewritten by each engine's periodic write probe, so readiness knows whether the
-- database can write (a full disk or a read-only data dir still answers reads).
create table kernel_write_probe (
  probe_key text primary key,
  probed_at timestamptz not null
);

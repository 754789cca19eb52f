-- Leases of cluster-singleton background tasks: one engine instance holds each task,
-- renewing the lease at every run; another takes over once it expires or is released.
create table task_leases (
  name text primary key,
  holder text not null,
  expires_at timestamptz not null
);

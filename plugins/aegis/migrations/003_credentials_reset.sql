-- Set by a vault force-reset on credentials whose secrets were destroyed; cleared when
-- an admin stores a secret again.
alter table credentials add column reset_required boolean not null default false;

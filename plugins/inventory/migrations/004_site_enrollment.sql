-- Sites moved to a plugin of their own (plugins/sites), below the vault and the operators,
-- so that every owner declares its own foreign keys to them. What enrollment needs of a
-- site (its code and auto-approval window) stays here, in a table of this plugin; the
-- table 001 created is handed over with the columns the sites plugin keeps. The sites
-- plugin, the vault (credentials) and the operators (site assignments) declared their
-- keys in their own migrations, which ran before this one. New databases start from
-- baseline_004.sql instead.
create table site_enrollment (
  site_id integer primary key references sites (id) on delete cascade,
  enrollment_code_hash text not null unique check (enrollment_code_hash ~ '^[0-9a-f]{64}$'),
  -- Sealed with the place (sites, enrollment_code_sealed, <site id>) it was first sealed at.
  enrollment_code_sealed text,
  enrollment_code_rotated_at timestamptz not null,
  auto_approve_until timestamptz
);
insert into site_enrollment (site_id, enrollment_code_hash, enrollment_code_sealed,
  enrollment_code_rotated_at, auto_approve_until)
select id, enrollment_code_hash, enrollment_code_sealed, enrollment_code_rotated_at,
  auto_approve_until
from sites;
alter table sites
  drop column enrollment_code_hash,
  drop column enrollment_code_sealed,
  drop column enrollment_code_rotated_at,
  drop column auto_approve_until;

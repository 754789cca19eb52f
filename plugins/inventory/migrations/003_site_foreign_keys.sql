-- Site ids held by the operators and aegis plugins (which load before inventory and
-- cannot name its table) get their foreign keys here: deleting a site removes its
-- operator assignments and detaches credentials scoped to it.
-- Rows naming sites that no longer exist (possible before this migration) are cleaned
-- first, the same way.
delete from user_site_assignments a
where not exists (select 1 from sites s where s.id = a.site_id);

alter table user_site_assignments
  add constraint user_site_assignments_site_fk
  foreign key (site_id) references sites (id) on delete cascade;

update credentials c set site_id = null
where c.site_id is not null and not exists (select 1 from sites s where s.id = c.site_id);

alter table credentials
  add constraint credentials_site_fk
  foreign key (site_id) references sites (id) on delete set null;

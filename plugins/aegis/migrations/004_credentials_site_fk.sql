-- A credential scoped to a deleted site loses its scope. The sites table now belongs to
-- the sites plugin, which this plugin requires, so the key is declared here; on a
-- database where the inventory plugin added it (its 003) it is declared again, the same.
alter table credentials drop constraint if exists credentials_site_fk;
update credentials c set site_id = null
where c.site_id is not null and not exists (select 1 from site_view s where s.id = c.site_id);
alter table credentials
  add constraint credentials_site_fk
  foreign key (site_id) references sites (id) on delete set null;

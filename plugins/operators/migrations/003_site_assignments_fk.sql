-- Deleting a site removes its operators' assignments. The sites table now belongs to the
-- sites plugin, which this plugin requires, so the key is declared here; on a database
-- where the inventory plugin added it (its 003) it is declared again, the same.
alter table user_site_assignments drop constraint if exists user_site_assignments_site_fk;
delete from user_site_assignments a
where not exists (select 1 from site_view s where s.id = a.site_id);
alter table user_site_assignments
  add constraint user_site_assignments_site_fk
  foreign key (site_id) references sites (id) on delete cascade;

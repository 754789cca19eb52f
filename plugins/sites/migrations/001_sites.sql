-- Sites: the foundation every site-scoped owner points its foreign keys at (the vault's
-- credentials, operators' site assignments, inventory's devices, …). Before this plugin
-- the inventory plugin created the table (inventory/001_identity.sql); on such a
-- database it is there already, and inventory/004_site_enrollment.sql moves the
-- enrollment columns it added into a table of its own.
create table if not exists sites (
  id integer generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  description text not null default '' check (length(description) <= 2000),
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index if not exists sites_name_lower_idx on sites (lower(name));

-- The read view other plugins may join (never write): a site's id, name, description and
-- creation time. The table behind it stays this plugin's to change.
create view site_view as select id, name, description, created_at from sites;

-- Device filters (the targeting language of jobs and watchdogs) and saved list views.
create table device_filters (
  id integer generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  description text not null default '' check (length(description) <= 2000),
  archived boolean not null default false,
  criteria_mode text not null check (criteria_mode in ('basic', 'advanced')),
  site_mode text not null check (site_mode in ('global', 'specific_sites', 'global_exclusions')),
  basic_criteria jsonb not null default '[]'::jsonb,
  advanced_criteria jsonb not null default '{"groups": []}'::jsonb,
  last_edited_by text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index device_filters_name_lower_idx on device_filters (lower(name));

create table device_filter_sites (
  filter_id integer not null references device_filters (id) on delete cascade,
  site_id integer not null references sites (id) on delete cascade,
  primary key (filter_id, site_id)
);

create table device_list_views (
  id integer generated always as identity primary key,
  name text not null check (length(name) between 1 and 200),
  columns jsonb not null default '[]'::jsonb,
  filters jsonb not null default '{}'::jsonb,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create unique index device_list_views_name_lower_idx on device_list_views (lower(name));

-- Dotted version text → integer array for older/newer comparisons; never raises.
create function borealis_version_parts(v text) returns integer[]
language sql immutable parallel safe as $$
  select coalesce(array_agg(least(coalesce(nullif(substring(p from '^[0-9]{1,9}'), ''), '0')::bigint, 2147483647)::integer order by i), '{}')
  from unnest(string_to_array(coalesce(v, ''), '.')) with ordinality as t(p, i)
$$;

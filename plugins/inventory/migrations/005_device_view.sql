-- The read view other plugins may query (never write) when they must read many devices
-- in one statement (a watchdog evaluation reads the telemetry of the whole fleet). The
-- devices table behind it stays this plugin's to change.
create view device_view as
select guid, hostname, site_id, status, created_at, last_seen, last_reboot, uptime,
  cpu_percent, memory_percent, details
from devices;

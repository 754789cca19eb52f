-- A reclaimed run whose script was already sent (activity_id set) is not sent again: the
-- engine asks the agent with a `quick_job_status` frame first. dispatch_count keeps
-- meaning "script frames sent"; status queries are counted apart.
alter table scheduled_job_runs add column status_query_count integer not null default 0;
-- When the outstanding (unanswered) status query was sent; NULL when none is outstanding.
-- While it is set the lease is not renewed, so an agent that does not answer within the
-- lease is asked again at the next reclaim.
alter table scheduled_job_runs add column status_query_at timestamptz;

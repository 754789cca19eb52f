-- Which engine instance sends a quick run's scripts, and when each was handed to
-- realtime. An activity still without dispatched_at after its sender stopped was never
-- sent: it is failed at once instead of staying Running until its deadline.
alter table activity_history add column dispatch_owner text;
alter table activity_history add column dispatched_at timestamptz;
update activity_history set dispatched_at = ran_at;
create index activity_history_undispatched_idx on activity_history (ran_at)
  where dispatched_at is null and status in ('Pending', 'Running');

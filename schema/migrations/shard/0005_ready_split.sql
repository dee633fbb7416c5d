-- A pending task has one lease-order index entry, not two: tasks without a group in
-- tasks_ready, grouped ones in tasks_group_ready (so groups cost no extra row write).
DROP INDEX tasks_ready;
CREATE INDEX tasks_ready ON tasks (priority DESC, ready_at, seq) WHERE status = 'pending' AND group_key IS NULL;

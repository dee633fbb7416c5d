-- Fair leasing between groups (tasks with a group_key): the next ready task of one group.
-- Partial: tasks without a group pay nothing for it.
CREATE INDEX tasks_group_ready ON tasks (group_key, priority DESC, ready_at, seq) WHERE status = 'pending' AND group_key IS NOT NULL;

-- Dead letters and blocked tasks are listed by status in id order; both are rare among a
-- shard's tasks, so a partial index each costs a write only when a task enters or leaves.
CREATE INDEX tasks_failed ON tasks (id) WHERE status = 'failed';
CREATE INDEX tasks_blocked ON tasks (id) WHERE status = 'blocked';

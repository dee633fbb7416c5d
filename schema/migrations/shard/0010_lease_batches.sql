-- A lease's expiry is registered once per lease call (a row of `leases`, keyed by when it expires)
-- instead of once per task in tasks_due: leasing a task writes its row and no index entry. Tasks
-- running now are registered here in parts of 1,000 before the index stops covering them.
CREATE TABLE leases (
  expires_at INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  ids TEXT NOT NULL,
  PRIMARY KEY (expires_at, seq)
) WITHOUT ROWID;
INSERT INTO leases (expires_at, seq, ids)
  SELECT coalesce(min(due_at), 0), part, json_group_array(id)
  FROM (SELECT id, due_at, (row_number() OVER (ORDER BY id) - 1) / 1000 AS part FROM tasks WHERE status = 'running')
  GROUP BY part;
DROP INDEX tasks_due;
CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL AND status <> 'running';

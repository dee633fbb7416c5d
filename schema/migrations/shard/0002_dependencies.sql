-- Dependencies (see docs/ARCHITECTURE.md, "Dependencies across shards").
-- deps_waiting: JSON ids of dependencies not yet resolved (a blocked task);
-- on_dependency_failure: 'run' (NULL means cancel); has_dependents: 1 once an edge names this task.
ALTER TABLE tasks ADD COLUMN deps_waiting TEXT;
ALTER TABLE tasks ADD COLUMN on_dependency_failure TEXT;
ALTER TABLE tasks ADD COLUMN has_dependents INTEGER;

-- Edges kept by the dependency's shard: who to tell when `dep` finishes.
CREATE TABLE edges (
  dep_id TEXT NOT NULL,
  dependent_id TEXT NOT NULL,
  PRIMARY KEY (dep_id, dependent_id)
) WITHOUT ROWID;

-- Messages to other shards, written in the transaction of the change they report and
-- delivered (alarm-driven, retried with backoff) until the receiver acknowledges them.
CREATE TABLE mail (
  seq INTEGER PRIMARY KEY,
  target TEXT NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL
);
CREATE INDEX mail_next ON mail (next_at);

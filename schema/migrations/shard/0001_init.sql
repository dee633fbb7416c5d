-- One row per task. WITHOUT ROWID: the id is the key, so an insert writes the
-- row once instead of a rowid row plus an id index entry.
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  payload TEXT NOT NULL,
  priority INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  backoff TEXT NOT NULL,
  timeout_ms INTEGER NOT NULL,
  run_at INTEGER NOT NULL,
  ready_at INTEGER,
  seq INTEGER NOT NULL,
  due_at INTEGER,
  depends_on TEXT,
  parent_id TEXT,
  idempotency_key TEXT,
  group_key TEXT,
  worker_id TEXT,
  lease_token TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  progress TEXT,
  result TEXT,
  error TEXT,
  tags TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
) WITHOUT ROWID;

-- Lease order. Partial: only pending tasks pay for an entry.
CREATE INDEX tasks_ready ON tasks (priority DESC, ready_at, seq) WHERE status = 'pending';

-- Everything the alarm must look at: delayed runs, lease expiries, retention.
CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL;

CREATE UNIQUE INDEX tasks_idempotency ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- One row per state-changing call, holding all its events; flushed to D1 history.
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  events TEXT NOT NULL
);

CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- Schedules: a cron (in a time zone) that enqueues a task template on a queue.
CREATE TABLE schedules (
  queue TEXT NOT NULL,
  id TEXT NOT NULL,
  cron TEXT NOT NULL,
  timezone TEXT NOT NULL,
  -- JSON: the task to enqueue (payload as JSON text), as the shard's enqueue takes it
  task TEXT NOT NULL,
  overlap TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  -- the next fire time (ms), NULL while paused or when the cron has no next time
  next_at INTEGER,
  last_fire_at INTEGER,
  last_task_id TEXT,
  fired INTEGER NOT NULL DEFAULT 0,
  skipped INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (queue, id)
) WITHOUT ROWID;
CREATE INDEX schedules_next ON schedules (next_at) WHERE next_at IS NOT NULL;

-- The tenant this registry belongs to (the alarm needs it to address the tenant's shards).
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

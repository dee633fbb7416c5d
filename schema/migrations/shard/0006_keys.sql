-- Idempotency keys get a table of their own, held by the key's home shard
-- (fnv1a(key) % shards): the task may live in another shard (its group's), so
-- one place must say which task a key names. The tasks column stays for display.
CREATE TABLE idem_keys (
  key TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Expired keys are swept in the order they expire.
CREATE INDEX idem_keys_created ON idem_keys (created_at);

INSERT OR REPLACE INTO idem_keys (key, task_id, created_at)
  SELECT idempotency_key, id, created_at FROM tasks WHERE idempotency_key IS NOT NULL ORDER BY created_at;

-- A key no longer needs a unique index on tasks (nor an index at all).
DROP INDEX tasks_idempotency;

-- The tenant's queues and their settings (JSON of QueueSettings).
CREATE TABLE queues (
  name TEXT PRIMARY KEY,
  settings TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

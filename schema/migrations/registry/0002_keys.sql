-- The tenant's API keys, for listing (the hash lives only in the key's AccessKey object).
CREATE TABLE keys (
  id TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  name TEXT NOT NULL,
  limits TEXT,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The credential this object guards (absent for JWT subjects, which are only rate limited).
CREATE TABLE credential (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  id TEXT NOT NULL,
  tenant TEXT NOT NULL,
  role TEXT NOT NULL,
  name TEXT NOT NULL,
  -- SHA-256 of the whole key, hex; the key itself is never stored
  hash TEXT NOT NULL,
  limits TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

-- The current rate-limit windows.
CREATE TABLE usage (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  minute_start INTEGER NOT NULL,
  minute_count INTEGER NOT NULL,
  hour_start INTEGER NOT NULL,
  hour_count INTEGER NOT NULL
);

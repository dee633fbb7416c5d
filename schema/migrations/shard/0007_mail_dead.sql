-- Messages to other shards that failed every delivery attempt: kept for inspection for the
-- queue's retention, then swept, so one poison message neither blocks the rest nor lives forever.
CREATE TABLE mail_dead (
  seq INTEGER PRIMARY KEY,
  target TEXT NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  died_at INTEGER NOT NULL
);

-- History rows that D1 refused (with the database up) or that could not be made: kept, with
-- the reason, for the queue's retention, so one bad row never holds up the history behind it.
CREATE TABLE history_dead (
  seq INTEGER PRIMARY KEY,
  task_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  body TEXT NOT NULL,
  died_at INTEGER NOT NULL
);

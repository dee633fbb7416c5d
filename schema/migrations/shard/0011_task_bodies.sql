-- A payload over 512 characters is kept here, written once when its task is made; the task's row
-- holds '' (never a JSON text) in its place. Every lease and completion writes the task's row
-- again, and SQLite writes a row whole: a wide row fills a page on its own and past ~1 KB spills
-- into overflow pages (tasks is WITHOUT ROWID), all of which were written again on each change.
CREATE TABLE task_bodies (
  id TEXT PRIMARY KEY,
  payload TEXT NOT NULL
) WITHOUT ROWID;

-- Whatever deletes a task (retention, a purge) deletes its body with it.
CREATE TRIGGER task_bodies_delete AFTER DELETE ON tasks WHEN old.payload = '' BEGIN
  DELETE FROM task_bodies WHERE id = old.id;
END;

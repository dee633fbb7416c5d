-- Full-text search over each task's name and payload text (its JSON values, flattened).
-- A custom migration: drizzle cannot declare FTS5 tables. `id` is stored, not indexed, so a
-- match joins `tasks` on its primary key; its rowid is `tasks.doc`, handed out by `counters`.
CREATE VIRTUAL TABLE `task_text` USING fts5(`id` UNINDEXED, `name`, `body`, columnsize=0);
--> statement-breakpoint
INSERT INTO `counters` (`name`, `value`) VALUES ('doc', 0);

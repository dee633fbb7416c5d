CREATE TABLE `history_dead` (
	`seq` integer PRIMARY KEY NOT NULL,
	`task_id` text NOT NULL,
	`reason` text NOT NULL,
	`body` text NOT NULL,
	`died_at` integer NOT NULL
);

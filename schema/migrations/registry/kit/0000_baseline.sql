-- drizzle-kit's picture of these tables when its snapshot was taken; NOT applied (the hand-written
-- files one folder up are the history; drizzle-kit writes no WITHOUT ROWID). See drizzle.config.ts.
CREATE TABLE `keys` (
	`id` text PRIMARY KEY NOT NULL,
	`role` text NOT NULL,
	`name` text NOT NULL,
	`limits` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `queues` (
	`name` text PRIMARY KEY NOT NULL,
	`settings` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `schedules` (
	`queue` text NOT NULL,
	`id` text NOT NULL,
	`cron` text NOT NULL,
	`timezone` text NOT NULL,
	`task` text NOT NULL,
	`overlap` text NOT NULL,
	`paused` integer DEFAULT 0 NOT NULL,
	`next_at` integer,
	`last_fire_at` integer,
	`last_task_id` text,
	`fired` integer DEFAULT 0 NOT NULL,
	`skipped` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`queue`, `id`)
);
--> statement-breakpoint
CREATE INDEX `schedules_next` ON `schedules` (`next_at`) WHERE next_at IS NOT NULL;--> statement-breakpoint
CREATE TABLE `tenant` (
	`one` integer PRIMARY KEY NOT NULL,
	`limits` text
);
--> statement-breakpoint
CREATE TABLE `workers` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`queues` text NOT NULL,
	`concurrency` integer NOT NULL,
	`registered_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`current_tasks` text NOT NULL,
	`completed` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`busy_ms` integer DEFAULT 0 NOT NULL
);

-- drizzle-kit's picture of these tables when its snapshot was taken; NOT applied (the hand-written
-- files one folder up are the history; drizzle-kit writes no WITHOUT ROWID). See drizzle.config.ts.
CREATE TABLE `children` (
	`parent_id` text NOT NULL,
	`child_id` text NOT NULL,
	`status` text NOT NULL,
	`result` text,
	PRIMARY KEY(`parent_id`, `child_id`)
);
--> statement-breakpoint
CREATE TABLE `edges` (
	`dep_id` text NOT NULL,
	`dependent_id` text NOT NULL,
	PRIMARY KEY(`dep_id`, `dependent_id`)
);
--> statement-breakpoint
CREATE TABLE `idem_keys` (
	`key` text PRIMARY KEY NOT NULL,
	`task_id` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `idem_keys_created` ON `idem_keys` (`created_at`);--> statement-breakpoint
CREATE TABLE `mail` (
	`seq` integer PRIMARY KEY NOT NULL,
	`target` text NOT NULL,
	`body` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `mail_next` ON `mail` (`next_at`);--> statement-breakpoint
CREATE TABLE `mail_dead` (
	`seq` integer PRIMARY KEY NOT NULL,
	`target` text NOT NULL,
	`body` text NOT NULL,
	`attempts` integer NOT NULL,
	`died_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `outbox` (
	`seq` integer PRIMARY KEY NOT NULL,
	`at` integer NOT NULL,
	`events` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tasks` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`payload` text NOT NULL,
	`priority` integer NOT NULL,
	`status` text NOT NULL,
	`attempts` integer NOT NULL,
	`max_attempts` integer NOT NULL,
	`backoff` text NOT NULL,
	`timeout_ms` integer NOT NULL,
	`run_at` integer NOT NULL,
	`ready_at` integer,
	`seq` integer NOT NULL,
	`due_at` integer,
	`depends_on` text,
	`parent_id` text,
	`idempotency_key` text,
	`group_key` text,
	`worker_id` text,
	`lease_token` text,
	`cancel_requested` integer DEFAULT 0 NOT NULL,
	`progress` text,
	`result` text,
	`error` text,
	`tags` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`deps_waiting` text,
	`on_dependency_failure` text,
	`has_dependents` integer,
	`wait_for_children` integer,
	`sealed` integer,
	`children` text
);
--> statement-breakpoint
CREATE INDEX `tasks_ready` ON `tasks` ("priority" DESC,`ready_at`,`seq`) WHERE status = 'pending' AND group_key IS NULL;--> statement-breakpoint
CREATE INDEX `tasks_group_ready` ON `tasks` (`group_key`,"priority" DESC,`ready_at`,`seq`) WHERE status = 'pending' AND group_key IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_due` ON `tasks` (`due_at`) WHERE due_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX `tasks_failed` ON `tasks` (`id`) WHERE status = 'failed';--> statement-breakpoint
CREATE INDEX `tasks_blocked` ON `tasks` (`id`) WHERE status = 'blocked';
CREATE TABLE `leases` (
	`expires_at` integer NOT NULL,
	`seq` integer NOT NULL,
	`ids` text NOT NULL,
	PRIMARY KEY(`expires_at`, `seq`)
);
--> statement-breakpoint
DROP INDEX `tasks_due`;--> statement-breakpoint
CREATE INDEX `tasks_due` ON `tasks` (`due_at`) WHERE due_at IS NOT NULL AND status <> 'running';
-- drizzle-kit's picture of these tables when its snapshot was taken; NOT applied (the hand-written
-- files one folder up are the history; drizzle-kit writes no WITHOUT ROWID). See drizzle.config.ts.
CREATE TABLE `credential` (
	`one` integer PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`tenant` text NOT NULL,
	`role` text NOT NULL,
	`name` text NOT NULL,
	`hash` text NOT NULL,
	`limits` text,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	`tenant_limits` text
);
--> statement-breakpoint
CREATE TABLE `usage` (
	`one` integer PRIMARY KEY NOT NULL,
	`minute_start` integer NOT NULL,
	`minute_count` integer NOT NULL,
	`hour_start` integer NOT NULL,
	`hour_count` integer NOT NULL
);

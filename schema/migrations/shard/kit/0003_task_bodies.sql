CREATE TABLE `task_bodies` (
	`id` text PRIMARY KEY NOT NULL,
	`payload` text NOT NULL
);

import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { Role } from "./access";
import { meta } from "./shard";

/**
 * The tables of a tenant's QueueRegistry object (drizzle: the one source of
 * their rows; migrations are hand-written in `schema/migrations/registry`, since
 * these tables are `WITHOUT ROWID`, which drizzle-kit cannot express). A test
 * checks every table here against the migrated database.
 */

/** The tenant's queues and their settings (JSON text of QueueSettings). */
export const queues = sqliteTable("queues", {
  name: text("name").primaryKey(),
  settings: text("settings").notNull(),
  createdAt: integer("created_at").notNull(),
});

/** The tenant's API keys: records only (each key's hash lives in its AccessKey object). */
export const keys = sqliteTable("keys", {
  id: text("id").primaryKey(),
  role: text("role").$type<Role>().notNull(),
  name: text("name").notNull(),
  /** JSON text of Limits */
  limits: text("limits"),
  createdAt: integer("created_at").notNull(),
});

/** The tenant's default rate limits (one row). */
export const tenant = sqliteTable("tenant", {
  one: integer("one").primaryKey(),
  limits: text("limits"),
});

/** Registered consumers, with what they reported at their last heartbeat. */
export const workers = sqliteTable("workers", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** JSON text of string[] */
  queues: text("queues").notNull(),
  concurrency: integer("concurrency").notNull(),
  registeredAt: integer("registered_at").notNull(),
  lastSeenAt: integer("last_seen_at").notNull(),
  /** JSON text of task ids */
  currentTasks: text("current_tasks").notNull(),
  completed: integer("completed").notNull().default(0),
  failed: integer("failed").notNull().default(0),
  busyMs: integer("busy_ms").notNull().default(0),
});
export type WorkerRow = typeof workers.$inferSelect;

/** Cron schedules, each with its next fire time (null while paused). */
export const schedules = sqliteTable(
  "schedules",
  {
    queue: text("queue").notNull(),
    id: text("id").notNull(),
    cron: text("cron").notNull(),
    timezone: text("timezone").notNull(),
    /** JSON text: the task to enqueue (payload as JSON text), as the shard's enqueue takes it */
    task: text("task").notNull(),
    overlap: text("overlap").$type<"skip" | "allow">().notNull(),
    paused: integer("paused").notNull().default(0),
    nextAt: integer("next_at"),
    lastFireAt: integer("last_fire_at"),
    lastTaskId: text("last_task_id"),
    fired: integer("fired").notNull().default(0),
    skipped: integer("skipped").notNull().default(0),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.queue, t.id] }),
    index("schedules_next")
      .on(t.nextAt)
      .where(sql`next_at IS NOT NULL`),
  ],
);
export type ScheduleRow = typeof schedules.$inferSelect;

/** Named values of the registry (its tenant): the same key-value table as a shard's. */
export { meta };

export const REGISTRY_TABLES = { queues, keys, tenant, workers, schedules, meta };

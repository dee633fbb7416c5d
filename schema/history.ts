import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { Status } from "./shard";

/**
 * Task history in D1: the latest state of every task of every tenant, its
 * event timeline, and (in a custom migration, since drizzle cannot declare
 * virtual tables) the FTS5 index `task_text` over each task's name and payload
 * text. Shards write here from their outbox (durable/history.ts); the API
 * searches here (worker/search.ts).
 *
 * D1 bills rows written, and every index entry is a row written, so each index
 * here pays for itself in a query the API answers (see docs/ARCHITECTURE.md,
 * "History"). `tasks` and `task_events` are `WITHOUT ROWID` (added to the
 * generated migration by hand: drizzle cannot declare it), which saves the
 * implicit index a rowid table keeps for its primary key.
 */

/** The latest state of one task, as its shard last reported it. */
export const tasks = sqliteTable(
  "tasks",
  {
    tenant: text("tenant").notNull(),
    /** the task id: time-sortable, so id order is creation order */
    id: text("id").notNull(),
    /** the task's rowid in `task_text`, to delete it from there */
    doc: integer("doc").notNull(),
    queue: text("queue").notNull(),
    name: text("name").notNull(),
    /** JSON text; '' when the payload is long and kept in `task_payloads` */
    payload: text("payload").notNull(),
    priority: integer("priority").notNull(),
    status: text("status").$type<Status>().notNull(),
    attempts: integer("attempts").notNull(),
    maxAttempts: integer("max_attempts").notNull(),
    /** JSON text of a Backoff */
    backoff: text("backoff").notNull(),
    timeoutMs: integer("timeout_ms").notNull(),
    runAt: integer("run_at").notNull(),
    /** JSON text of task ids */
    dependsOn: text("depends_on"),
    /** JSON text of the dependencies still open */
    waitingOn: text("waiting_on"),
    onDependencyFailure: text("on_dependency_failure").$type<"run">(),
    parentId: text("parent_id"),
    waitForChildren: integer("wait_for_children"),
    sealed: integer("sealed"),
    /** JSON text of ChildCounts */
    children: text("children"),
    idempotencyKey: text("idempotency_key"),
    groupKey: text("group_key"),
    workerId: text("worker_id"),
    cancelRequested: integer("cancel_requested").notNull(),
    /** JSON text */
    progress: text("progress"),
    /** JSON text */
    result: text("result"),
    /** JSON text of {message, stack?} */
    error: text("error"),
    /** JSON text of string[] */
    tags: text("tags"),
    createdAt: integer("created_at").notNull(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
    /** when the current lease ends, while running */
    expiresAt: integer("expires_at"),
    /** ms from when the task could first run to its (last) start; computed, not stored */
    waitMs: integer("wait_ms").generatedAlwaysAs(sql`started_at - run_at`, { mode: "virtual" }),
    /** ms its last run took; computed, not stored */
    runMs: integer("run_ms").generatedAlwaysAs(sql`finished_at - started_at`, { mode: "virtual" }),
    /** the shard's outbox position this row reflects: an older write never replaces a newer one */
    version: integer("version").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenant, t.id] }),
    // Status filters, in priority order or (one range per priority, merged) in creation order.
    index("tasks_status").on(t.tenant, t.status, t.priority, t.id),
    // A queue's tasks in creation order.
    index("tasks_queue").on(t.tenant, t.queue, t.id),
    // Finished tasks by finish time; live ones pay for no entry.
    index("tasks_finished")
      .on(t.tenant, t.finishedAt, t.id)
      .where(sql`finished_at IS NOT NULL`),
  ],
);

export type HistoryRow = typeof tasks.$inferSelect;

/**
 * A task's timeline: one row per task per flush, holding that flush's events
 * in order (JSON text of TimelineEvent[]). `seq` is the shard's position of the
 * row's first event, `lastSeq` of its last: a flush sent again after an
 * unanswered try writes the same rows, or the same rows with more events.
 */
export const taskEvents = sqliteTable(
  "task_events",
  {
    tenant: text("tenant").notNull(),
    taskId: text("task_id").notNull(),
    seq: integer("seq").notNull(),
    lastSeq: integer("last_seq").notNull(),
    events: text("events").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.taskId, t.seq] })],
);

/**
 * The payload of a task whose payload is longer than INLINE_PAYLOAD_MAX bytes
 * (durable/task-rows.ts), written once when history first sees the task; its
 * `tasks` row holds '' instead, so the writes of its later changes stay narrow.
 * `WITHOUT ROWID` and a trigger that deletes it with its task are added to the
 * generated migration by hand.
 */
export const taskPayloads = sqliteTable(
  "task_payloads",
  {
    tenant: text("tenant").notNull(),
    id: text("id").notNull(),
    /** JSON text */
    payload: text("payload").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.id] })],
);

/** Named counters; `doc` hands out `task_text` rowids, a block per flush. */
export const counters = sqliteTable("counters", {
  name: text("name").primaryKey(),
  value: integer("value").notNull(),
});

/** Per-tenant history settings; a tenant without a row keeps the default. */
export const tenants = sqliteTable("tenants", {
  tenant: text("tenant").primaryKey(),
  historyDays: integer("history_days").notNull(),
});

/** Every D1 table drizzle declares (a test checks each against the migrated database). */
export const HISTORY_TABLES = { tasks, taskPayloads, taskEvents, counters, tenants };

/** How long history keeps a finished task, unless the tenant says otherwise. */
export const HISTORY_DAYS_DEFAULT = 30;

import { getTableColumns, sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The task as a QueueShard stores it: one row of the shard's `tasks` table.
 * JSON-valued fields stay JSON text here; they are parsed only at the edge of
 * the system (the API view), so the engine never pays to parse a payload.
 */

export const STATUS = {
  scheduled: "scheduled",
  blocked: "blocked",
  pending: "pending",
  running: "running",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
} as const;
export type Status = keyof typeof STATUS;
export const STATUSES = Object.keys(STATUS) as Status[];

export const TERMINAL: ReadonlySet<Status> = new Set(["completed", "failed", "cancelled"]);

export const BAND = { high: [8, 10], medium: [4, 7], low: [1, 3] } as const;
export type Band = keyof typeof BAND;

export function bandOf(priority: number): Band {
  if (priority >= BAND.high[0]) return "high";
  if (priority >= BAND.medium[0]) return "medium";
  return "low";
}

export interface Backoff {
  baseMs: number;
  factor: number;
  maxMs: number;
}

/**
 * The shard's tables, as drizzle declares them: the one source of their row
 * types and column names. Migrations stay hand-written SQL in
 * `schema/migrations/shard` (drizzle-kit cannot express `WITHOUT ROWID` tables,
 * descending index keys or partial indexes' exact text the way they were made);
 * a test checks every table here against the migrated database.
 */
export const tasks = sqliteTable(
  "tasks",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    /** JSON text; '' when the payload is long and kept in `task_bodies` */
    payload: text("payload").notNull(),
    priority: integer("priority").notNull(),
    status: text("status").$type<Status>().notNull(),
    /** runs started so far (counted at lease time) */
    attempts: integer("attempts").notNull(),
    maxAttempts: integer("max_attempts").notNull(),
    /** JSON text of a Backoff */
    backoff: text("backoff").notNull(),
    timeoutMs: integer("timeout_ms").notNull(),
    /** when the task may first run (ms since epoch) */
    runAt: integer("run_at").notNull(),
    /** when it last became ready; with `seq` it orders tasks of equal priority */
    readyAt: integer("ready_at"),
    seq: integer("seq").notNull(),
    /**
     * When the shard must next look at this task: `runAt` while scheduled, the
     * lease expiry while running (found through `leases`, not the index); null
     * otherwise (retention is swept by id order).
     */
    dueAt: integer("due_at"),
    /** JSON text of task ids */
    dependsOn: text("depends_on"),
    parentId: text("parent_id"),
    idempotencyKey: text("idempotency_key"),
    groupKey: text("group_key"),
    workerId: text("worker_id"),
    /** the fencing token of the latest lease; never leaves the shard except in a lease */
    leaseToken: text("lease_token"),
    cancelRequested: integer("cancel_requested").notNull().default(0),
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
    /** JSON text of the ids of dependencies not yet resolved; set while `blocked` */
    depsWaiting: text("deps_waiting"),
    /** what a failed or cancelled dependency does: `run` anyway; null means cancel */
    onDependencyFailure: text("on_dependency_failure").$type<"run">(),
    /** 1 once another task depends on this one (its shard holds the edges) */
    hasDependents: integer("has_dependents"),
    /** 1: runs only after its children finish (and it is sealed) */
    waitForChildren: integer("wait_for_children"),
    /** 1 once no more children will come */
    sealed: integer("sealed"),
    /** JSON text of ChildCounts, once it has children */
    children: text("children"),
  },
  (t) => [
    // Lease order; partial, so only pending tasks pay for an entry (grouped ones in their own index).
    index("tasks_ready")
      .on(sql`${t.priority} DESC`, t.readyAt, t.seq)
      .where(sql`status = 'pending' AND group_key IS NULL`),
    index("tasks_group_ready")
      .on(t.groupKey, sql`${t.priority} DESC`, t.readyAt, t.seq)
      .where(sql`status = 'pending' AND group_key IS NOT NULL`),
    // What the alarm must look at besides leases: delayed runs. A running task's expiry is
    // registered once per lease call in `leases` instead, so a lease writes no entry here.
    index("tasks_due")
      .on(t.dueAt)
      .where(sql`due_at IS NOT NULL AND status <> 'running'`),
    index("tasks_failed")
      .on(t.id)
      .where(sql`status = 'failed'`),
    index("tasks_blocked")
      .on(t.id)
      .where(sql`status = 'blocked'`),
  ],
);

/**
 * The payload of a task whose payload is longer than INLINE_PAYLOAD_MAX bytes (durable/task-rows.ts),
 * written once when the task is made; its `tasks` row holds '' instead. WITHOUT ROWID (in the
 * applied SQL), and a trigger deletes it with its task.
 */
export const taskBodies = sqliteTable("task_bodies", {
  id: text("id").primaryKey(),
  /** JSON text */
  payload: text("payload").notNull(),
});

/** The task as a QueueShard stores it: one row of `tasks`. */
export type TaskRow = typeof tasks.$inferSelect;

/** One row per state-changing call, holding all its events; flushed to D1 history. */
export const outbox = sqliteTable("outbox", {
  seq: integer("seq").primaryKey(),
  at: integer("at").notNull(),
  events: text("events").notNull(),
});

/**
 * The tasks one call leased, in one row (one write per lease call, not per task): when the
 * first of their leases expires, the shard looks at each; those still running past their own
 * `due_at` (heartbeats move it) expire, those still running on time are registered again.
 */
export const leases = sqliteTable(
  "leases",
  {
    expiresAt: integer("expires_at").notNull(),
    /** a random number: tells apart lease calls that expire in the same millisecond */
    seq: integer("seq").notNull(),
    /** JSON text of task ids */
    ids: text("ids").notNull(),
  },
  // WITHOUT ROWID (in the applied SQL): expiry order is the key, so a row is one write with no index entry
  (t) => [primaryKey({ columns: [t.expiresAt, t.seq] })],
);

/** Named values of the object (settings, sweep, address…); the QueueRegistry has the same table. */
export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** `dependent` waits on `dep` (a task of this shard). */
export const edges = sqliteTable("edges", { depId: text("dep_id").notNull(), dependentId: text("dependent_id").notNull() }, (t) => [
  primaryKey({ columns: [t.depId, t.dependentId] }),
]);

/** Messages to other shards, until acknowledged; `target` is `queue:shard`. */
export const mail = sqliteTable(
  "mail",
  {
    seq: integer("seq").primaryKey(),
    target: text("target").notNull(),
    body: text("body").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAt: integer("next_at").notNull(),
  },
  (t) => [index("mail_next").on(t.nextAt)],
);

/** Messages that failed every attempt, kept for the queue's retention. */
export const mailDead = sqliteTable("mail_dead", {
  seq: integer("seq").primaryKey(),
  target: text("target").notNull(),
  body: text("body").notNull(),
  attempts: integer("attempts").notNull(),
  diedAt: integer("died_at").notNull(),
});

/** History rows D1 refused or that could not be made, with why; kept for the queue's retention. */
export const historyDead = sqliteTable("history_dead", {
  seq: integer("seq").primaryKey(),
  taskId: text("task_id").notNull(),
  reason: text("reason").notNull(),
  /** JSON text of what was to be written */
  body: text("body").notNull(),
  diedAt: integer("died_at").notNull(),
});

/** A parent's record of each child: `active`, or how it finished, with its result. */
export const children = sqliteTable(
  "children",
  { parentId: text("parent_id").notNull(), childId: text("child_id").notNull(), status: text("status").notNull(), result: text("result") },
  (t) => [primaryKey({ columns: [t.parentId, t.childId] })],
);

/** Idempotency keys held by their home shard: the task each names, and when it was claimed. */
export const idemKeys = sqliteTable(
  "idem_keys",
  { key: text("key").primaryKey(), taskId: text("task_id").notNull(), createdAt: integer("created_at").notNull() },
  (t) => [index("idem_keys_created").on(t.createdAt)],
);

/** Every table of the shard, by name (a test checks each against the migrated database). */
export const SHARD_TABLES = { tasks, taskBodies, leases, outbox, meta, edges, mail, mailDead, historyDead, children, idemKeys };

/** A parent's children by outcome; `total - completed - failed - cancelled` are still active. */
export interface ChildCounts {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** Column names in SQL, keyed by the row's field names (from the drizzle table). */
export const TASK_COLUMNS = Object.fromEntries(Object.entries(getTableColumns(tasks)).map(([field, column]) => [field, column.name])) as {
  readonly [K in keyof TaskRow]: string;
};

export const TASK_FIELDS = Object.keys(TASK_COLUMNS) as (keyof TaskRow)[];

/** At most `count` task starts in any window of `perMs`. */
export interface StartLimit {
  count: number;
  perMs: number;
}

/** Flow control for one group of a queue's tasks (tasks with the same groupKey). */
export interface GroupLimits {
  concurrency?: number | null;
  startLimit?: StartLimit | null;
}

/** Per-queue settings, held by the QueueRegistry and passed to shards with each call. */
export interface QueueSettings {
  /** grows with every change, so a shard can tell a stale cached copy from a newer one */
  version: number;
  shards: number;
  paused: boolean;
  defaults: { maxAttempts: number; backoff: Backoff; timeoutMs: number };
  retentionDays: number;
  idempotencyWindowMs: number;
  /** most tasks running at once across the queue (null: no cap) */
  concurrency: number | null;
  /** most task starts per interval across the queue */
  startLimit: StartLimit | null;
  /** per-group limits: one default for every group, overrides by group key */
  groupLimits: { default: GroupLimits | null; overrides: Record<string, GroupLimits> };
  /**
   * Earlier shard counts and when each ended (ms), for the last 30 days: an
   * idempotency key's home shard depends on the count, so keys claimed before a
   * change are looked up at their old home. Not part of the API's view.
   */
  shardHistory: { shards: number; until: number }[];
}

/**
 * Every shard count a key's home may have been computed with: the current one
 * and those of the last 30 days (clocks of different machines may disagree
 * about which side of a change a claim fell on, so all are candidates).
 */
export function shardCounts(settings: QueueSettings, now = Date.now()): number[] {
  const recent = settings.shardHistory.filter((h) => h.until > now - SHARD_HISTORY_MS);
  return [...new Set([settings.shards, ...recent.map((h) => h.shards)])];
}

/** The shard count in effect at time `t` (ms). */
export function shardsAt(settings: QueueSettings, t: number): number {
  for (const h of [...settings.shardHistory].sort((a, b) => a.until - b.until)) if (t < h.until) return h.shards;
  return settings.shards;
}

/** How long an earlier shard count is remembered: longer than any idempotency window (30 days at most). */
export const SHARD_HISTORY_MS = 31 * 86_400_000;

export const DEFAULT_SETTINGS: QueueSettings = {
  version: 0,
  shards: 1,
  paused: false,
  defaults: {
    maxAttempts: 3,
    backoff: { baseMs: 1000, factor: 2, maxMs: 600_000 },
    timeoutMs: 30_000,
  },
  retentionDays: 7,
  idempotencyWindowMs: 24 * 3600_000,
  concurrency: null,
  startLimit: null,
  groupLimits: { default: null, overrides: {} },
  shardHistory: [],
};

/** Stored settings read back: fields added since they were written take their defaults. */
export function settingsFrom(json: string): QueueSettings {
  const stored = JSON.parse(json) as Partial<QueueSettings>;
  return { ...DEFAULT_SETTINGS, ...stored, defaults: { ...DEFAULT_SETTINGS.defaults, ...stored.defaults } };
}

/** One line of the shard's outbox: what changed, for history and live metrics. */
export interface TaskEvent {
  type: EventType;
  id: string;
  at: number;
  /** the fields that changed, with their new values (the whole task for `enqueued`) */
  changes: Partial<Omit<TaskRow, "leaseToken">>;
}

export type EventType =
  | "enqueued"
  | "promoted"
  | "unblocked"
  | "sealed"
  | "dependency_resolved"
  | "child_added"
  | "child_finished"
  | "leased"
  | "heartbeat"
  | "progress"
  | "completed"
  | "retrying"
  | "failed"
  | "expired"
  | "released"
  | "cancel_requested"
  | "cancelled"
  | "retried"
  | "deleted"
  | "purged";

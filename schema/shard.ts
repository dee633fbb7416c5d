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

export interface TaskRow {
  id: string;
  name: string;
  /** JSON text */
  payload: string;
  priority: number;
  status: Status;
  /** runs started so far (counted at lease time) */
  attempts: number;
  maxAttempts: number;
  /** JSON text of a Backoff */
  backoff: string;
  timeoutMs: number;
  /** when the task may first run (ms since epoch) */
  runAt: number;
  /** when it last became ready; with `seq` it orders tasks of equal priority */
  readyAt: number | null;
  seq: number;
  /**
   * When the shard must next look at this task: `runAt` while scheduled, the
   * lease expiry while running; null otherwise (retention is swept by id order).
   */
  dueAt: number | null;
  /** JSON text of task ids */
  dependsOn: string | null;
  /** JSON text of the ids of dependencies not yet resolved; set while `blocked` */
  depsWaiting: string | null;
  /** what a failed or cancelled dependency does: `run` anyway; null means cancel */
  onDependencyFailure: "run" | null;
  /** 1 once another task depends on this one (its shard holds the edges) */
  hasDependents: number | null;
  parentId: string | null;
  /** 1: runs only after its children finish (and it is sealed) */
  waitForChildren: number | null;
  /** 1 once no more children will come */
  sealed: number | null;
  /** JSON text of ChildCounts, once it has children */
  children: string | null;
  idempotencyKey: string | null;
  groupKey: string | null;
  workerId: string | null;
  /** the fencing token of the latest lease; never leaves the shard except in a lease */
  leaseToken: string | null;
  cancelRequested: number;
  /** JSON text */
  progress: string | null;
  /** JSON text */
  result: string | null;
  /** JSON text of {message, stack?} */
  error: string | null;
  /** JSON text of string[] */
  tags: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** A parent's children by outcome; `total - completed - failed - cancelled` are still active. */
export interface ChildCounts {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** Column names in SQL, keyed by the row's field names. */
export const TASK_COLUMNS: { readonly [K in keyof TaskRow]: string } = {
  id: "id",
  name: "name",
  payload: "payload",
  priority: "priority",
  status: "status",
  attempts: "attempts",
  maxAttempts: "max_attempts",
  backoff: "backoff",
  timeoutMs: "timeout_ms",
  runAt: "run_at",
  readyAt: "ready_at",
  seq: "seq",
  dueAt: "due_at",
  dependsOn: "depends_on",
  depsWaiting: "deps_waiting",
  onDependencyFailure: "on_dependency_failure",
  hasDependents: "has_dependents",
  parentId: "parent_id",
  waitForChildren: "wait_for_children",
  sealed: "sealed",
  children: "children",
  idempotencyKey: "idempotency_key",
  groupKey: "group_key",
  workerId: "worker_id",
  leaseToken: "lease_token",
  cancelRequested: "cancel_requested",
  progress: "progress",
  result: "result",
  error: "error",
  tags: "tags",
  createdAt: "created_at",
  startedAt: "started_at",
  finishedAt: "finished_at",
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
}

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

import type { Status, TaskEvent, TaskRow } from "../../schema/shard";

/**
 * What the engine needs from storage. Two implementations: SqlStore (the
 * QueueShard's SQLite) and MemoryStore (plain objects, for unit tests); one
 * behaviour suite runs on both.
 */
/** Which tasks `list` reads, in id order. */
export interface ListOptions {
  status?: Status;
  /** ids after this one */
  after?: string;
  /** finished at or before this time (ms) */
  finishedBy?: number;
  limit: number;
}

export interface ShardStore {
  /** Runs `fn` atomically: every write inside commits together or not at all. */
  transaction<T>(fn: () => T): T;
  get(id: string): TaskRow | null;
  /** Hint that `get` will be called for these ids in this transaction (lets SQL read them in one query). */
  prefetch(ids: string[]): void;
  /** The task an idempotency key names here, and when it was claimed. */
  getKey(key: string): KeyRow | null;
  /** Claims `key` for task `taskId` (replacing an expired claim). */
  putKey(key: string, taskId: string, at: number): void;
  /** Frees `key` if it still names `taskId`. */
  deleteKey(key: string, taskId: string): void;
  /** Drops at most `limit` keys claimed at or before `before`; answers how many. */
  dropKeys(before: number, limit: number): number;
  /** When the oldest key here was claimed. */
  oldestKeyAt(): number | null;
  insert(row: TaskRow): void;
  update(id: string, changes: Partial<TaskRow>): void;
  delete(id: string): void;
  /** Pending tasks without a group in lease order: priority desc, then readyAt, then seq. */
  ready(limit: number): TaskRow[];
  /** Pending tasks of any group created at or before `createdBy`, in no particular order (purge). */
  pending(limit: number, createdBy: number): TaskRow[];
  /** For each group ("" = no group), its next pending task in lease order, if any (one read for many groups). */
  readyHeads(groups: string[]): TaskRow[];
  /** How many tasks are pending and running, per group ("" = no group). */
  flowCounts(): { group: string; status: "pending" | "running"; n: number }[];
  /** Scheduled tasks created at or before `createdBy`, soonest first (purge). */
  scheduled(limit: number, createdBy: number): TaskRow[];
  /**
   * Tasks whose dueAt has come, soonest first. `anyRunning` false: no task is running (the state's
   * count), so no lease can have expired, and a store that keeps lease expiries apart drops them unread.
   */
  due(now: number, limit: number, anyRunning: boolean): TaskRow[];
  nextDueAt(): number | null;
  /** Tasks in id (creation) order after `after`, optionally of one status. */
  list(options: ListOptions): TaskRow[];
  counts(): Partial<Record<Status, number>>;
  /** When the pending task that has been ready longest became ready (null: none pending). */
  oldestReadyAt(): number | null;
  maxSeq(): number;
  appendOutbox(at: number, events: TaskEvent[]): void;
  /** Outbox entries not yet flushed to history. */
  outboxSize(): number;
  /** Outbox entries after `after` (a seq), oldest first: each call's events in the order they happened. */
  readOutbox(after: number, limit: number): OutboxRow[];
  /** Drops the outbox entries up to `upTo` (a seq): history has them. */
  deleteOutbox(upTo: number): void;
  /** When the oldest outbox entry was written (null: the outbox is empty). */
  oldestOutboxAt(): number | null;
  /** A history row that could not be written: kept aside with why. */
  buryHistory(taskId: string, reason: string, body: string, at: number): void;
  countDeadHistory(): number;
  getMeta(key: string): string | null;
  setMeta(key: string, value: string): void;
  /** Remembers that `dependent` waits on `dep` (a task of this shard); twice is once. */
  addDependent(dep: string, dependent: string): void;
  /** The dependents recorded for `dep`, removed as they are returned. */
  takeDependents(dep: string): string[];
  /** A message for another shard (`target` = `queue:shard`), to deliver from `at` on. */
  appendMail(target: string, body: string, at: number): void;
  /** Messages due for delivery, oldest first. */
  dueMail(now: number, limit: number): MailRow[];
  nextMailAt(): number | null;
  deleteMail(seqs: number[]): void;
  /** A failed delivery: try again at `nextAt`. */
  retryMail(seq: number, attempts: number, nextAt: number): void;
  /** A message that failed its last attempt: moved out of delivery, kept for inspection. */
  buryMail(seq: number, attempts: number, at: number): void;
  /** Drops dead messages and set-aside history rows that died at or before `before`. */
  sweepDead(before: number): void;
  countDeadMail(): number;
  /** Drops the records of `parent`'s children (the parent is gone). */
  deleteChildren(parent: string): void;
  getChild(parent: string, child: string): ChildRow | null;
  /** Inserts or replaces the record of `child` under `parent`. */
  putChild(parent: string, child: string, status: string, result: string | null): void;
  /** Children of `parent` in id order after `after`. */
  listChildren(parent: string, after: string | undefined, limit: number): ChildRow[];
}

export interface ChildRow {
  child: string;
  /** `active`, or how the child finished */
  status: string;
  /** JSON text */
  result: string | null;
}

export interface OutboxRow {
  seq: number;
  at: number;
  events: TaskEvent[];
  /** characters of the events' JSON */
  size: number;
}

export interface KeyRow {
  taskId: string;
  createdAt: number;
}

export interface MailRow {
  seq: number;
  target: string;
  body: string;
  attempts: number;
}

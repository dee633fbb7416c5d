import type { ChildCounts, QueueSettings, TaskRow } from "../../schema/shard";
import type { NewTask } from "./types";

/**
 * The queue's rules as pure functions of (row, input, now): what a task looks
 * like when made, when it is ready, whether a lease holds, what a run that did
 * not complete turns into. The engine applies them inside its transactions.
 */

export const DAY = 86_400_000;

/** The fields that make a task ready: it joins the lease order at `at`, numbered `seq`. */
export function readyPatch(at: number, seq: number): Partial<TaskRow> {
  return { status: "pending", readyAt: at, seq, dueAt: null };
}

/** The fields that make a task wait for `runAt` (the alarm promotes it then). */
export function schedulePatch(runAt: number): Partial<TaskRow> {
  return { status: "scheduled", runAt, readyAt: null, dueAt: runAt };
}

/** A new task's row, before it is made ready, scheduled or blocked (`status` is filled in after). */
export function newRow(id: string, input: NewTask, settings: QueueSettings, now: number): TaskRow {
  const defaults = settings.defaults;
  const runAt = input.runAt ?? now + (input.delayMs ?? 0);
  return {
    id,
    name: input.name,
    payload: input.payload,
    priority: input.priority ?? 5,
    status: "scheduled",
    attempts: 0,
    maxAttempts: input.maxAttempts ?? defaults.maxAttempts,
    backoff: JSON.stringify(input.backoff ?? defaults.backoff),
    timeoutMs: input.timeoutMs ?? defaults.timeoutMs,
    runAt,
    readyAt: null,
    seq: 0,
    dueAt: runAt,
    dependsOn: input.dependsOn && input.dependsOn.length > 0 ? JSON.stringify(input.dependsOn) : null,
    depsWaiting: null,
    onDependencyFailure: input.onDependencyFailure === "run" ? "run" : null,
    hasDependents: null,
    parentId: input.parentId ?? null,
    waitForChildren: input.waitForChildren ? 1 : null,
    sealed: null,
    children: null,
    idempotencyKey: input.idempotencyKey ?? null,
    groupKey: input.groupKey ?? null,
    workerId: null,
    leaseToken: null,
    cancelRequested: 0,
    progress: null,
    result: null,
    error: null,
    tags: input.tags && input.tags.length > 0 ? JSON.stringify(input.tags) : null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
  };
}

/** The dependencies a new task still waits for: the ones it names, less those seen completed. */
export function openDependencies(input: NewTask): string[] {
  const satisfied = new Set(input.satisfied);
  return [...new Set(input.dependsOn ?? [])].filter((d) => !satisfied.has(d));
}

/**
 * Whether `leaseToken` holds the task's lease at `now`: the task runs under that
 * token and its expiry has not come (a lease ends at its expiry, processed or not).
 */
export function holdsLease(row: TaskRow, leaseToken: string, now: number): boolean {
  return row.status === "running" && row.leaseToken === leaseToken && (row.dueAt === null || row.dueAt > now);
}

/**
 * Whether `leaseToken` ended the task's last run by failing or releasing it (a run that expired or
 * was retried by hand has no token left): a fail or release sent again with it, its first answer
 * lost, answers with the task as stored instead of `stale_lease`. A completed task answers a
 * completion the same way (Lifecycle.completeOne) and nothing else.
 */
export function endedBy(row: TaskRow, leaseToken: string): boolean {
  return row.leaseToken === leaseToken && row.status !== "running" && row.status !== "completed";
}

/** What a run that did not complete becomes: cancelled (asked for), retried (attempts left), or failed for good. */
export function afterRun(row: TaskRow, retryable: boolean): "cancelled" | "retry" | "failed" {
  if (row.cancelRequested) return "cancelled";
  return retryable && row.attempts < row.maxAttempts ? "retry" : "failed";
}

/** The fields of `patch` that change `row`. */
export function changesOf(row: TaskRow, patch: Partial<TaskRow>): Partial<TaskRow> {
  const after = { ...row, ...patch };
  const changes: Partial<TaskRow> = {};
  for (const key of Object.keys(patch) as (keyof TaskRow)[]) {
    if (after[key] !== row[key]) (changes as Record<string, unknown>)[key] = after[key];
  }
  return changes;
}

export function childCounts(row: TaskRow): ChildCounts {
  return row.children ? (JSON.parse(row.children) as ChildCounts) : { total: 0, completed: 0, failed: 0, cancelled: 0 };
}

/** Whether nothing holds a blocked task any more: no open dependency and, for a parent that waits, sealed with every child finished. */
export function free(row: TaskRow): boolean {
  const counts = childCounts(row);
  const childrenDone = !row.waitForChildren || (row.sealed === 1 && counts.completed + counts.failed + counts.cancelled === counts.total);
  return row.depsWaiting === null && childrenDone;
}

/** Delivery retries back off from 100 ms, doubling, to at most a minute. */
export function mailRetryDelay(attempts: number): number {
  return Math.min(60_000, 100 * 2 ** Math.min(attempts, 10));
}

export function min(a: number | null, b: number): number {
  return a === null ? b : Math.min(a, b);
}

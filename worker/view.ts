import type { Task } from "../schema/api";
import { bandOf, type ChildCounts, type TaskRow } from "../schema/shard";
import { parseTaskId } from "../durable/core/ids";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const json = (text: string | null) => (text === null ? null : (JSON.parse(text) as unknown));

/** A stored task as the API shows it: JSON parsed, times in ISO-8601, the lease token left out. */
export function taskView(row: TaskRow): Task {
  return {
    id: row.id,
    queue: parseTaskId(row.id)?.queue ?? "",
    name: row.name,
    payload: json(row.payload),
    priority: row.priority,
    band: bandOf(row.priority),
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    backoff: JSON.parse(row.backoff) as Task["backoff"],
    timeoutMs: row.timeoutMs,
    runAt: iso(row.runAt)!,
    parentId: row.parentId,
    dependsOn: (json(row.dependsOn) as string[] | null) ?? [],
    waitingOn: (json(row.depsWaiting) as string[] | null) ?? [],
    onDependencyFailure: row.onDependencyFailure ?? "cancel",
    waitForChildren: row.waitForChildren === 1,
    sealed: row.sealed === 1,
    children: childView(json(row.children) as ChildCounts | null),
    idempotencyKey: row.idempotencyKey,
    groupKey: row.groupKey,
    workerId: row.workerId,
    cancelRequested: row.cancelRequested === 1,
    progress: json(row.progress),
    result: json(row.result),
    error: json(row.error) as Task["error"],
    tags: (json(row.tags) as string[] | null) ?? [],
    createdAt: iso(row.createdAt)!,
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    expiresAt: row.status === "running" ? iso(row.dueAt) : null,
  };
}

function childView(c: ChildCounts | null): Task["children"] {
  const counts = c ?? { total: 0, completed: 0, failed: 0, cancelled: 0 };
  return { ...counts, active: counts.total - counts.completed - counts.failed - counts.cancelled };
}

/** The cursor of a page: the last item's, when the page is full (there may be more). */
export function nextCursor<T>(page: T[], limit: number, cursorOf: (item: T) => string): string | null {
  return page.length === limit ? cursorOf(page[page.length - 1]) : null;
}

export { iso, json };

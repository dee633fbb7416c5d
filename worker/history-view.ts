import { and, asc, eq, getTableColumns, gte } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Task } from "../schema/api";
import { taskEvents, tasks, type HistoryRow } from "../schema/history";
import type { TaskRow } from "../schema/shard";
import type { TimelineEvent } from "../durable/core/timeline";
import { QueueError } from "../durable/core/errors";
import { iso, taskView } from "./view";

/** A `tasks` row of D1 as search reads it (camelCase fields, the generated columns too). */
export type HistoryRecord = HistoryRow;

/** Columns of history's `tasks` (all by default), named as drizzle names its fields (one source for raw SQL and the query builder). */
export const historySelect = (fields?: Iterable<string>) => {
  const wanted = fields ? new Set(fields) : null;
  return Object.entries(getTableColumns(tasks))
    .filter(([field]) => wanted === null || wanted.has(field))
    .map(([field, column]) => (field === "payload" ? `${PAYLOAD} AS payload` : `t.${column.name} AS ${field}`))
    .join(", ");
};

/** The task's payload, from `task_payloads` where its row holds none (a long payload, durable/history.ts). */
const PAYLOAD =
  "CASE t.payload WHEN '' THEN (SELECT p.payload FROM task_payloads p WHERE p.tenant = t.tenant AND p.id = t.id) ELSE t.payload END";
export const HISTORY_SELECT = historySelect();

// historyTask: a history row. output: the task as the API shows it (the same view as a live task's).
export function historyTask(row: HistoryRecord): Task {
  const asRow = {
    ...row,
    depsWaiting: row.waitingOn,
    dueAt: row.expiresAt,
    seq: 0,
    readyAt: null,
    leaseToken: null,
    hasDependents: null,
  } as unknown as TaskRow;
  return taskView(asRow);
}

// historyGet: D1, tenant, task id. output: the task as history last saw it, or null.
export async function historyGet(db: D1Database, tenant: string, id: string): Promise<Task | null> {
  const row = await db
    .prepare(`SELECT ${HISTORY_SELECT} FROM tasks t WHERE t.tenant = ? AND t.id = ?`)
    .bind(tenant, id)
    .first<HistoryRecord>();
  return row ? historyTask(row) : null;
}

/** A timeline entry as the API shows it: times in ISO-8601. */
function eventView(e: TimelineEvent) {
  const { at, runAt, expiresAt, ...rest } = e;
  return {
    ...rest,
    at: iso(at)!,
    ...(runAt !== undefined ? { runAt: iso(runAt)! } : {}),
    ...(expiresAt !== undefined && expiresAt !== null ? { expiresAt: iso(expiresAt)! } : {}),
  };
}

/** Rows of `task_events` read per query while filling a page. */
const EVENT_ROWS = 50;

// timeline: D1, tenant, task id, cursor (`seq.index` of the last event shown), page size.
// output: the events after the cursor, oldest first, and the next cursor; null when history has no event of the task.
export async function timeline(db: D1Database, tenant: string, id: string, cursor: string | undefined, limit: number) {
  let [seq, index] = [0, -1];
  if (cursor !== undefined) {
    const m = /^(\d{1,17})\.(\d{1,6})$/.exec(cursor);
    if (!m)
      throw new QueueError("validation_failed", "The cursor is not one a timeline gave.", [
        { pointer: "?cursor", detail: "not a timeline cursor" },
      ]);
    [seq, index] = [Number(m[1]), Number(m[2])];
  }
  const items: ReturnType<typeof eventView>[] = [];
  let lastAt = "";
  for (let from = seq; ;) {
    const rows = await drizzle(db)
      .select({ seq: taskEvents.seq, events: taskEvents.events })
      .from(taskEvents)
      .where(and(eq(taskEvents.tenant, tenant), eq(taskEvents.taskId, id), gte(taskEvents.seq, from)))
      .orderBy(asc(taskEvents.seq))
      .limit(EVENT_ROWS);
    if (rows.length === 0 && from === 0) return null;
    for (const row of rows) {
      const events = JSON.parse(row.events) as TimelineEvent[];
      for (let i = row.seq === seq ? index + 1 : 0; i < events.length; i++) {
        if (items.length === limit) return { items, nextCursor: lastAt };
        items.push(eventView(events[i]));
        lastAt = `${row.seq}.${i}`;
      }
    }
    if (rows.length < EVENT_ROWS) return { items, nextCursor: null };
    from = rows[rows.length - 1].seq + 1;
  }
}

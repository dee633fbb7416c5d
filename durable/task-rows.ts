import { TASK_COLUMNS, TASK_FIELDS, type TaskRow } from "../schema/shard";

/**
 * A payload of more than this many bytes (UTF-8, as SQLite stores it) is kept in `task_bodies`,
 * written once, and the task's row holds '' instead (durable/task-writes.ts): a lease and a
 * completion each write the row again, whole. Measured here (`npm run bench:payloads`), rows of
 * 512-byte payloads cost little more than tiny ones; 1 KB ones halved end-to-end throughput.
 */
export const INLINE_PAYLOAD_MAX = 512;

/** Whether a payload (JSON text) is kept apart from its task's row: more than INLINE_PAYLOAD_MAX bytes in UTF-8. */
export function longPayload(text: string): boolean {
  if (text.length > INLINE_PAYLOAD_MAX) return true;
  if (text.length * 3 <= INLINE_PAYLOAD_MAX) return false; // at most 3 bytes a UTF-16 unit
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3; // a surrogate pair: 3 + 3 counted for 4, an overcount on the safe side
  }
  return bytes > INLINE_PAYLOAD_MAX;
}

/** The task's payload, from its body where the row holds none. */
const PAYLOAD = "CASE payload WHEN '' THEN (SELECT b.payload FROM task_bodies b WHERE b.id = tasks.id) ELSE payload END";

const column = (f: keyof TaskRow) => (f === "payload" ? `${PAYLOAD} AS payload` : TASK_COLUMNS[f] === f ? f : `${TASK_COLUMNS[f]} AS ${f}`);

/** Every task column, each as its field's name (a task row's SELECT; a `WHERE`, `ORDER BY` or `LIMIT` follows). */
export const SELECT = `SELECT ${TASK_FIELDS.map(column).join(", ")} FROM tasks`;

/** Each task field's place among SELECT's columns. */
const AT = Object.fromEntries(TASK_FIELDS.map((f, i) => [f, i])) as Record<keyof TaskRow, number>;

/**
 * A task row from a cursor's raw values (SELECT's columns). One object literal gives every row one
 * shape: measured in a Durable Object here, reading 200 rows of 35 columns costs ~3 µs a row this
 * way against ~8 through the cursor's own objects (`toArray`), and a lease and a completion each
 * read their tasks' rows whole.
 */
function taskRow(v: SqlStorageValue[]): TaskRow {
  const row = {
    id: v[AT.id],
    name: v[AT.name],
    payload: v[AT.payload],
    priority: v[AT.priority],
    status: v[AT.status],
    attempts: v[AT.attempts],
    maxAttempts: v[AT.maxAttempts],
    backoff: v[AT.backoff],
    timeoutMs: v[AT.timeoutMs],
    runAt: v[AT.runAt],
    readyAt: v[AT.readyAt],
    seq: v[AT.seq],
    dueAt: v[AT.dueAt],
    dependsOn: v[AT.dependsOn],
    parentId: v[AT.parentId],
    idempotencyKey: v[AT.idempotencyKey],
    groupKey: v[AT.groupKey],
    workerId: v[AT.workerId],
    leaseToken: v[AT.leaseToken],
    cancelRequested: v[AT.cancelRequested],
    progress: v[AT.progress],
    result: v[AT.result],
    error: v[AT.error],
    tags: v[AT.tags],
    createdAt: v[AT.createdAt],
    startedAt: v[AT.startedAt],
    finishedAt: v[AT.finishedAt],
    depsWaiting: v[AT.depsWaiting],
    onDependencyFailure: v[AT.onDependencyFailure],
    hasDependents: v[AT.hasDependents],
    waitForChildren: v[AT.waitForChildren],
    sealed: v[AT.sealed],
    children: v[AT.children],
  } satisfies Record<keyof TaskRow, SqlStorageValue>;
  return row as TaskRow;
}

/** The task rows a cursor over SELECT's columns yields, read to its end. */
export function taskRows(cursor: SqlStorageCursor<Record<string, SqlStorageValue>>): TaskRow[] {
  const rows: TaskRow[] = [];
  for (const values of cursor.raw()) rows.push(taskRow(values));
  return rows;
}

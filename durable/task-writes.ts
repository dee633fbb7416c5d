import { TASK_COLUMNS, TASK_FIELDS, type TaskRow } from "../schema/shard";
import { chunks } from "./core/chunks";

/**
 * DO SQLite binds at most 100 parameters per statement; each `exec` also has a
 * fixed cost (~8 µs here) and each bound value ~0.7 µs. So a transaction's task
 * writes are buffered (durable/sql-store.ts) and written as few multi-row
 * statements, binding only the columns that are set.
 */
export const MAX_PARAMS = 100;

export interface Statement {
  sql: string;
  params: unknown[];
}

/**
 * The statements that write buffered task changes: deletes, then updates
 * grouped by the columns they change, then inserts grouped by the columns they
 * set (unset ones take their defaults unbound), each within MAX_PARAMS.
 */
export function taskWrites(
  deletes: Iterable<string>,
  updates: Iterable<[string, Partial<TaskRow>]>,
  inserts: Iterable<TaskRow>,
): Statement[] {
  const out: Statement[] = [];
  for (const ids of chunks([...deletes], MAX_PARAMS)) {
    out.push({ sql: `DELETE FROM tasks WHERE id IN (${ids.map(() => "?").join(", ")})`, params: ids });
  }
  const changed = [...updates].map(([id, changes]) => ({ id, ...changes }) as Partial<TaskRow> & { id: string });
  // Updates grouped by the fields they change (besides id).
  for (const [fields, rows] of groupByFields(changed, (r) => (Object.keys(r) as (keyof TaskRow)[]).filter((f) => f !== "id"))) {
    if (fields.length === 0) continue;
    const names = ["id", ...fields.map((f) => TASK_COLUMNS[f])];
    const tuple = `(${names.map(() => "?").join(", ")})`;
    const set = fields.map((f) => `${TASK_COLUMNS[f]} = v.${TASK_COLUMNS[f]}`).join(", ");
    for (const part of chunks(rows, Math.floor(MAX_PARAMS / names.length))) {
      // One statement updates many rows, each with its own values.
      out.push({
        sql: `WITH v(${names.join(", ")}) AS (VALUES ${part.map(() => tuple).join(", ")}) UPDATE tasks SET ${set} FROM v WHERE tasks.id = v.id`,
        params: part.flatMap((r) => [r.id, ...fields.map((f) => r[f] ?? null)]),
      });
    }
  }
  for (const [fields, rows] of groupByFields(inserts, (r) => TASK_FIELDS.filter((f) => r[f] !== null))) {
    const columns = fields.map((f) => TASK_COLUMNS[f]).join(", ");
    const tuple = `(${fields.map(() => "?").join(", ")})`;
    for (const part of chunks(rows, Math.floor(MAX_PARAMS / fields.length))) {
      out.push({
        sql: `INSERT INTO tasks (${columns}) VALUES ${part.map(() => tuple).join(", ")}`,
        params: part.flatMap((r) => fields.map((f) => r[f])),
      });
    }
  }
  return out;
}

/** Rows grouped by the fields `fieldsOf` picks for each, so each group can share one statement. */
function groupByFields<R>(rows: Iterable<R>, fieldsOf: (row: R) => (keyof TaskRow)[]) {
  const groups = new Map<string, [(keyof TaskRow)[], R[]]>();
  for (const row of rows) {
    const fields = fieldsOf(row);
    const key = fields.join(",");
    const group = groups.get(key) ?? groups.set(key, [fields, []]).get(key)!;
    group[1].push(row);
  }
  return groups.values();
}

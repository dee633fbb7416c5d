import { TASK_COLUMNS, TASK_FIELDS, type TaskRow } from "../schema/shard";
import { chunks } from "./core/chunks";
import { jsonArrays, jsonRows } from "./json-rows";
import { longPayload } from "./task-rows";

/**
 * DO SQLite binds at most 100 parameters per statement; each `exec` also has a
 * fixed cost (~8 µs here) and each bound value ~0.7 µs. So a transaction's task
 * writes are buffered (durable/sql-store.ts) and written as few statements as
 * their columns allow: the rows of each as one JSON parameter (an array of
 * arrays, read once each through durable/json-rows.ts), never a value bound
 * per column. Measured in a Durable Object here, 200 rows of 25 columns: ~15 µs
 * a row inserted with bound values, ~9 with one JSON parameter.
 */
export const MAX_PARAMS = 100;

/** The rows' values (JSON arrays, in `fields` order) as statement parameters (durable/json-rows.ts). */
const jsonParams = <R>(rows: R[], values: (row: R) => unknown[]) =>
  jsonArrays(rows.map((r) => JSON.stringify(values(r)))).map((a) => a.json);

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
    const set = fields.map((f) => `${TASK_COLUMNS[f]} = u.${TASK_COLUMNS[f]}`).join(", ");
    // One statement updates many rows, each with its own values; its rows drive, each finding its task by id.
    const sql = `${jsonRows("?")}, u(${names.join(", ")}) AS (SELECT ${names.map((_, i) => `v ->> ${i}`).join(", ")} FROM r)
UPDATE tasks SET ${set} FROM u WHERE tasks.id = u.id`;
    for (const json of jsonParams(rows, (r) => [r.id, ...fields.map((f) => r[f] ?? null)])) out.push({ sql, params: [json] });
  }
  // A long payload goes to its own row, written once; the task's row, written again at each change, holds ''.
  const bodies: [string, string][] = [];
  const made = [...inserts].map((r) => {
    if (!longPayload(r.payload)) return r;
    bodies.push([r.id, r.payload]);
    return { ...r, payload: "" };
  });
  for (const json of jsonParams(bodies, (b) => b)) {
    out.push({ sql: `${jsonRows("?")}\nINSERT INTO task_bodies (id, payload) SELECT v ->> 0, v ->> 1 FROM r ORDER BY k`, params: [json] });
  }
  for (const [fields, rows] of groupByFields(made, (r) => TASK_FIELDS.filter((f) => r[f] !== null))) {
    const sql = `${jsonRows("?")}
INSERT INTO tasks (${fields.map((f) => TASK_COLUMNS[f]).join(", ")}) SELECT ${fields.map((_, i) => `v ->> ${i}`).join(", ")} FROM r ORDER BY k`;
    for (const json of jsonParams(rows, (r) => fields.map((f) => r[f]))) out.push({ sql, params: [json] });
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

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
    const part = sharedApart(rows, fields);
    const names = ["id", ...part.varying.map((f) => TASK_COLUMNS[f])];
    const set = [
      ...part.shared.map((f) => `${TASK_COLUMNS[f]} = ?`),
      ...part.varying.map((f) => `${TASK_COLUMNS[f]} = u.${TASK_COLUMNS[f]}`),
    ].join(", ");
    // One statement updates many rows, each with its own values; its rows drive, each finding its task by id.
    const sql = `${jsonRows("?")}, u(${names.join(", ")}) AS (SELECT ${names.map((_, i) => `v ->> ${i}`).join(", ")} FROM r)
UPDATE tasks SET ${set} FROM u WHERE tasks.id = u.id`;
    for (const json of jsonParams(rows, (r) => [r.id, ...part.varying.map((f) => r[f] ?? null)])) {
      out.push({ sql, params: [json, ...part.values] });
    }
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
    const part = sharedApart(rows, fields);
    const columns = [...part.varying, ...part.shared].map((f) => TASK_COLUMNS[f]);
    const values = [...part.varying.map((_, i) => `v ->> ${i}`), ...part.shared.map(() => "?")];
    const sql = `${jsonRows("?")}
INSERT INTO tasks (${columns.join(", ")}) SELECT ${values.join(", ")} FROM r ORDER BY k`;
    for (const json of jsonParams(rows, (r) => part.varying.map((f) => r[f]))) out.push({ sql, params: [json, ...part.values] });
  }
  return out;
}

/**
 * The fields of a group's rows (each setting `fields`): those of one value in every row are
 * `shared`, bound once as parameters, and the rest `varying`, read from each row's JSON: a batch's
 * tasks mostly share their status, times, settings and worker, so each row's JSON holds its id,
 * payload and token, and SQLite parses a third of it (`node bench/sql.mjs`, enqueue, lease and
 * completion in one Durable Object: 26,700–27,100 tasks/s to 29,000–29,300). A lone row shares
 * nothing (its values go in its JSON: one statement's text for any lone row). Which fields a
 * batch shares shapes the statement's text, so a field set has a few texts in workerd's statement
 * cache rather than one.
 */
function sharedApart<R extends Partial<TaskRow>>(rows: R[], fields: (keyof TaskRow)[]) {
  const value = (r: R, f: keyof TaskRow) => r[f] ?? null;
  // Bound, a JS number is a REAL (an INTEGER column's affinity makes a whole one an integer again)
  // and a boolean is no number: only what binds as its JSON reads is shared.
  const bindsAsRead = (v: unknown) => v === null || typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
  const shared =
    rows.length < 2
      ? []
      : fields
          .filter((f) => f !== "id" && bindsAsRead(value(rows[0], f)) && rows.every((r) => value(r, f) === value(rows[0], f)))
          .slice(0, MAX_PARAMS - 1);
  const varying = fields.filter((f) => !shared.includes(f));
  return { shared, varying, values: shared.map((f) => value(rows[0], f)) };
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

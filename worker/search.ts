import { BAND, STATUSES, type Status } from "../schema/shard";
import type { SearchFilters, Sort } from "../schema/api-history";
import { QueueError } from "../durable/core/errors";
import { ulidTimePrefix } from "../durable/core/ids";
import { HISTORY_SELECT, historyTask, type HistoryRecord } from "./history-view";

/**
 * Search over D1 history: one SQL statement per request, built from the
 * filters, with the index chosen here (INDEXED BY), not left to a planner that
 * has no statistics:
 *
 * - `q`: the FTS5 match drives (matches joined to `tasks` by primary key),
 *   then the other filters and the sort.
 * - `sort=finished`: `tasks_finished` (finished tasks only).
 * - a status filter, or `sort=priority`: `tasks_status` (tenant, status,
 *   priority, id), one range per status (and, for creation order, per
 *   priority), each already in order, read in one D1 batch and merged here
 *   (D1 refuses compound SELECTs of more than 5 terms): every range reads at
 *   most one page.
 * - a queue filter: `tasks_queue`; otherwise the primary key (tenant, id),
 *   which is creation order since ids are time-sortable.
 *
 * Pages are keyset: the cursor holds the last row's sort key and id, so rows
 * arriving while a client pages through never make it skip or repeat one.
 */

const PRIORITIES = Array.from({ length: 10 }, (_, i) => i + 1);
/** A task's id time may be ahead of its createdAt by clock steps; a `createdTo` bound allows this much. */
const ID_SLACK_MS = 60_000;

class Params {
  readonly values: unknown[] = [];
  /** A numbered parameter (`?N`), so one value can appear in many places of a statement. */
  add(value: unknown): string {
    this.values.push(value);
    return `?${this.values.length}`;
  }
}

interface Cursor {
  sort: Sort;
  key: number | null;
  id: string;
}

const encodeCursor = (c: Cursor) =>
  btoa(JSON.stringify([c.sort, c.key, c.id]))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");

function decodeCursor(text: string, sort: Sort): Cursor {
  try {
    const [s, key, id] = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/"))) as [Sort, number | null, string];
    if (s === sort && typeof id === "string" && (key === null || typeof key === "number")) return { sort: s, key, id };
  } catch {
    // fall through
  }
  throw new QueueError("validation_failed", "The cursor is not one this search gave (cursors keep their search's sort).", [
    { pointer: "?cursor", detail: "not a cursor of this search" },
  ]);
}

/** Signs of FTS5 syntax: quotes, prefix stars, parentheses, `^`, operators, `name:` / `body:` filters. */
const FTS_SYNTAX = /["*()^]|\b(AND|OR|NOT|NEAR)\b|\b(name|body)\s*:/;

// ftsQuery: the `q` a user typed. output: an FTS5 query. Text with any FTS5 syntax is passed as it is
// (and refused with a 400 if it is not valid); plain text is taken word by word, each word matched
// as written (`cust-1`, `ada@example.com`, `a:b`), so a search box never needs quoting.
export function ftsQuery(q: string): string {
  if (FTS_SYNTAX.test(q)) return q;
  return q
    .split(/\s+/)
    .filter((w) => w !== "")
    .map((w) => `"${w}"`)
    .join(" ");
}

/** The priorities a search may return (priority and band filters intersected); null: any. */
function prioritiesOf(f: SearchFilters): number[] | null {
  let out: number[] | null = f.priority && f.priority.length > 0 ? [...new Set(f.priority)] : null;
  if (f.band && f.band.length > 0) {
    const inBands = PRIORITIES.filter((p) => f.band!.some((b) => p >= BAND[b][0] && p <= BAND[b][1]));
    out = out === null ? inBands : out.filter((p) => inBands.includes(p));
  }
  return out;
}

const list = (values: (string | number)[], p: Params) => values.map((v) => p.add(v)).join(", ");

/** Ranges of tasks_status one search may read at most; a wider status filter reads in creation order and skips rows. */
const MAX_RANGES = 30;

export interface SearchPlan {
  /** one statement, or one per index range (sent in one D1 batch, merged here) */
  statements: { sql: string; params: unknown[] }[];
  /** the index the statements were built for (a test checks the plans use it) */
  index: string;
}

// searchPlan: the tenant, validated filters, the columns to read (default: all). output: the SQL to run.
// errors: validation_failed for a cursor this search did not give.
export function searchPlan(tenant: string, f: SearchFilters, columns = HISTORY_SELECT): SearchPlan {
  const p = new Params();
  const t = p.add(tenant);
  const sort = f.sort;
  const desc = sort.startsWith("-");
  const field = sort.replace("-", "") as "created" | "finished" | "priority";
  const cursor = f.cursor ? decodeCursor(f.cursor, sort) : null;
  const priorities = prioritiesOf(f);
  const statuses = f.status && f.status.length > 0 ? [...new Set(f.status)] : null;

  // Filters every row is checked against (the index may make some of them ranges).
  const where: string[] = [`t.tenant = ${t}`];
  if (priorities !== null) where.push(priorities.length === 0 ? "0" : `t.priority IN (${list(priorities, p)})`);
  if (statuses !== null) where.push(`t.status IN (${list(statuses, p)})`);
  if (f.queue && f.queue.length > 0) where.push(`t.queue IN (${list([...new Set(f.queue)], p)})`);
  if (f.workerId !== undefined) where.push(`t.worker_id = ${p.add(f.workerId)}`);
  for (const tag of new Set(f.tag ?? [])) where.push(`EXISTS (SELECT 1 FROM json_each(t.tags) WHERE value = ${p.add(tag)})`);
  if (f.createdFrom !== undefined) where.push(`t.id >= ${p.add(ulidTimePrefix(f.createdFrom))}`, `t.created_at >= ${p.add(f.createdFrom)}`);
  if (f.createdTo !== undefined)
    where.push(`t.id < ${p.add(ulidTimePrefix(f.createdTo + ID_SLACK_MS))}`, `t.created_at <= ${p.add(f.createdTo)}`);
  if (f.startedFrom !== undefined) where.push(`t.started_at >= ${p.add(f.startedFrom)}`);
  if (f.startedTo !== undefined) where.push(`t.started_at <= ${p.add(f.startedTo)}`);
  if (f.finishedFrom !== undefined) where.push(`t.finished_at >= ${p.add(f.finishedFrom)}`);
  if (f.finishedTo !== undefined) where.push(`t.finished_at <= ${p.add(f.finishedTo)}`);
  if (field === "finished") where.push("t.finished_at IS NOT NULL");

  const keyColumn = field === "created" ? null : field === "finished" ? "t.finished_at" : "t.priority";
  const dir = desc ? "DESC" : "ASC";
  const order = keyColumn ? `${keyColumn} ${dir}, t.id ${dir}` : `t.id ${dir}`;
  if (cursor) {
    const op = desc ? "<" : ">";
    if (keyColumn) where.push(`(${keyColumn}, t.id) ${op} (${p.add(cursor.key)}, ${p.add(cursor.id)})`);
    else where.push(`t.id ${op} ${p.add(cursor.id)}`);
  }
  const limit = p.add(f.limit + 1); // one more than a page: tells whether there is a next one
  const select = `SELECT ${columns}`;
  const one = (from: string, index: string, extra: string[] = [], params = p.values) => ({
    statements: [{ sql: `${select} FROM ${from} WHERE ${[...extra, ...where].join(" AND ")} ORDER BY ${order} LIMIT ${limit}`, params }],
    index,
  });

  if (f.q !== undefined) {
    const match = p.add(ftsQuery(f.q));
    return one(`task_text CROSS JOIN tasks t ON t.tenant = ${t} AND t.id = task_text.id`, "task_text", [`task_text MATCH ${match}`]);
  }
  if (field === "finished") return one("tasks t INDEXED BY tasks_finished", "tasks_finished");
  if (statuses !== null || field === "priority") {
    // One range of tasks_status per status (per status and priority, for creation order), each read in order.
    const ranges: [Status, number | null][] = [];
    for (const status of statuses ?? STATUSES) {
      if (field === "priority") ranges.push([status, null]);
      else for (const priority of priorities ?? PRIORITIES) ranges.push([status, priority]);
    }
    if (ranges.length <= MAX_RANGES) {
      const statements = ranges.map(([status, priority]) => {
        const q = new Params();
        q.values.push(...p.values);
        const range = [`t.status = ${q.add(status)}`, ...(priority === null ? [] : [`t.priority = ${q.add(priority)}`])];
        return one("tasks t INDEXED BY tasks_status", "tasks_status", range, q.values).statements[0];
      });
      return { statements, index: "tasks_status" };
    }
  }
  if (f.queue && f.queue.length > 0) return one("tasks t INDEXED BY tasks_queue", "tasks_queue");
  return one("tasks t", "primary key");
}

/** The value a row sorts by besides its id (null: creation order is id order). */
function sortKey(sort: Sort, r: HistoryRecord): number | null {
  const field = sort.replace("-", "");
  return field === "finished" ? r.finishedAt : field === "priority" ? r.priority : null;
}

/** Order of rows under `sort`, for merging ranges read apart. */
function compare(sort: Sort) {
  const desc = sort.startsWith("-") ? -1 : 1;
  return (a: HistoryRecord, b: HistoryRecord) =>
    desc * ((sortKey(sort, a) ?? 0) - (sortKey(sort, b) ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// search: the D1 binding, tenant, filters. output: a page of tasks and the cursor of the next.
// errors: validation_failed (bad FTS5 query syntax, foreign cursor).
export async function search(db: D1Database, tenant: string, f: SearchFilters) {
  const { rows, nextCursor } = await searchRows(db, tenant, f);
  return { items: rows.map(historyTask), nextCursor };
}

/** A page of history rows as D1 holds them, and the cursor of the next (reports read these). */
export async function searchRows(
  db: D1Database,
  tenant: string,
  f: SearchFilters,
  columns?: string,
): Promise<{ rows: HistoryRecord[]; nextCursor: string | null }> {
  if (prioritiesOf(f)?.length === 0) return { rows: [], nextCursor: null }; // priority and band exclude each other
  const { statements } = searchPlan(tenant, f, columns);
  let rows: HistoryRecord[];
  try {
    const prepared = statements.map((s) => db.prepare(s.sql).bind(...s.params));
    const results = prepared.length === 1 ? [await prepared[0].all<HistoryRecord>()] : await db.batch<HistoryRecord>(prepared);
    rows = results.flatMap((r) => r.results);
    if (results.length > 1) rows.sort(compare(f.sort));
  } catch (e) {
    const message = (e as Error).message;
    if (f.q !== undefined && /fts5|syntax error|unterminated|no such column|unknown special query|malformed MATCH/i.test(message)) {
      throw new QueueError(
        "validation_failed",
        `The search text is not a valid query: ${message.replace(/^D1_ERROR: /, "").replace(/: SQLITE_ERROR$/, "")}.`,
        [{ pointer: "?q", detail: 'not a valid full-text query: use words, "a phrase", prefix*, AND, OR, NOT' }],
      );
    }
    throw e;
  }
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > f.limit && last ? encodeCursor({ sort: f.sort, key: sortKey(f.sort, last), id: last.id }) : null;
  return { rows: page, nextCursor };
}

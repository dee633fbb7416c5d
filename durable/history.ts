import type { TaskRow } from "../schema/shard";
import { parseTaskId } from "./core/ids";
import type { DeadHistory } from "./core/outbox";
import type { EventsRow, HistoryPlan, HistoryTask, TaskChanges } from "./core/timeline";
import { jsonArrays, jsonRows } from "./json-rows";
import { rollupStatements } from "./rollups";
import { longPayload } from "./task-rows";

/**
 * Writes a flush's plan to D1, TASKS_PER_CALL tasks per D1 batch (each
 * atomic). Each statement takes its rows as one JSON parameter (D1 binds at
 * most 100 parameters), expanded with `json_each`, so a batch of hundreds of
 * tasks is a handful of statements. The plan covers the whole flush (a task
 * changed many times is written once); only the writing is cut up, so no one
 * D1 call runs long: D1 executes a batch start to end, and on the local stack
 * it shares one thread with every shard.
 *
 * A task the batch saw made is inserted whole; one made before is updated
 * with what changed (the outbox holds every change, so no row is read).
 * Idempotent: a task row is written only over an older version, an events row
 * only over one with fewer events, FTS text only for a row that has none. So a
 * batch sent again (D1 took it, or part of it, but the answer was lost)
 * changes nothing, and the shard deletes its outbox entries only after D1 has
 * answered every call.
 *
 * When D1 refuses a batch for something in its rows (a constraint, a value too
 * big: REFUSAL) while it answers a probe, the batch is split by task until the
 * rows D1 refuses stand alone; they are set aside (the shard's `history_dead`)
 * and never hold up the rest. Any other failure is D1 being unavailable: the
 * caller backs off and sends the batch again later, whole.
 */

/** Tasks per D1 call: ~6 rows each, so a call writes a few thousand rows (tens of ms locally). */
const TASKS_PER_CALL = 500;
/** Characters of a set-aside row kept for inspection (the shard's rows are at most 2 MB). */
const DEAD_BODY_MAX = 256 * 1024;

/**
 * Errors that say the rows themselves are wrong, so sending them again would fail again:
 * constraints (triggers included), values too big, wrong types, malformed JSON. Anything
 * else (network, overload, timeouts, restarts) is D1 being unavailable for now.
 */
const REFUSAL = /SQLITE_(CONSTRAINT|TOOBIG|MISMATCH|RANGE)|too big|too large|datatype mismatch|malformed JSON/i;

/** The `tasks` columns a write sets, in the order of each row's JSON array. */
const COLUMNS = [
  "id",
  "queue",
  "name",
  "payload",
  "priority",
  "status",
  "attempts",
  "max_attempts",
  "backoff",
  "timeout_ms",
  "run_at",
  "depends_on",
  "waiting_on",
  "on_dependency_failure",
  "parent_id",
  "wait_for_children",
  "sealed",
  "children",
  "idempotency_key",
  "group_key",
  "worker_id",
  "cancel_requested",
  "progress",
  "result",
  "error",
  "tags",
  "created_at",
  "started_at",
  "finished_at",
  "expires_at",
] as const;

/** Columns a task's later writes may change (the rest are fixed when it is made), by the task field that holds each. */
const CHANGING: Record<string, keyof TaskChanges> = {
  status: "status",
  attempts: "attempts",
  run_at: "runAt",
  waiting_on: "depsWaiting",
  sealed: "sealed",
  children: "children",
  worker_id: "workerId",
  cancel_requested: "cancelRequested",
  progress: "progress",
  result: "result",
  error: "error",
  started_at: "startedAt",
  finished_at: "finishedAt",
  expires_at: "dueAt",
};

const UPSERT = `${jsonRows("?2")}
INSERT INTO tasks (tenant, doc, version, ${COLUMNS.join(", ")})
SELECT ?1, (SELECT value FROM counters WHERE name = 'doc') - ?3 + ?4 + k, ?5, ${COLUMNS.map((_, i) => `v ->> ${i}`).join(", ")}
FROM r WHERE true
ON CONFLICT (tenant, id) DO UPDATE SET ${Object.keys(CHANGING)
  .map((c) => `${c} = excluded.${c}`)
  .join(", ")}, version = excluded.version
WHERE excluded.version > tasks.version`;

/** Columns that may not be NULL, and what a row that only carries changes puts there (never stored: see `update`). */
const REQUIRED: Record<string, string> = {
  doc: "0",
  queue: "''",
  name: "''",
  payload: "''",
  priority: "0",
  status: "''",
  attempts: "0",
  max_attempts: "0",
  backoff: "''",
  timeout_ms: "0",
  run_at: "0",
  cancel_requested: "0",
  created_at: "0",
};

/**
 * What changed in tasks made before this batch: an upsert that always
 * conflicts (rows are taken only where the task is already in history), so the
 * batch's rows drive and each finds its task by primary key whatever the
 * planner's statistics say (an UPDATE … FROM leaves the join order to them:
 * with statistics of a few tasks per tenant it walks the tenant's tasks and
 * probes the batch). One statement per set of changed columns, so a
 * heartbeat's write touches no index it does not change.
 */
function update(columns: string[]): string {
  const insert = [...new Set([...Object.keys(REQUIRED), ...columns])];
  // Each row is [id, ...the columns' values], read by position (a key lookup per column cost more).
  const value = (c: string) => (columns.includes(c) ? `v ->> ${columns.indexOf(c) + 1}` : REQUIRED[c]);
  return `${jsonRows("?2")}
INSERT INTO tasks (tenant, id, version, ${insert.join(", ")})
SELECT ?1, v ->> 0, ?3, ${insert.map(value).join(", ")} FROM r
WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.tenant = ?1 AND t.id = r.v ->> 0)
ON CONFLICT (tenant, id) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(", ")}, version = excluded.version
WHERE excluded.version > tasks.version`;
}

// CROSS JOIN: the batch's rows drive, each finding its task by primary key (not every task of the tenant).
const TEXT = `${jsonRows("?2")}
INSERT INTO task_text (rowid, id, name, body)
SELECT t.doc, t.id, r.v ->> 1, r.v ->> 2 FROM r CROSS JOIN tasks t ON t.tenant = ?1 AND t.id = r.v ->> 0
WHERE NOT EXISTS (SELECT 1 FROM task_text x WHERE x.rowid = t.doc)`;

/**
 * A long payload, written once beside its task's row (which holds ''); a batch sent again changes
 * nothing. Not beside a row that already holds its payload (written before task_payloads existed,
 * then sent again): nothing would read it, nor delete it with the row.
 */
const PAYLOADS = `${jsonRows("?2")}
INSERT INTO task_payloads (tenant, id, payload) SELECT ?1, v ->> 0, v ->> 1 FROM r
WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.tenant = ?1 AND t.id = r.v ->> 0 AND t.payload <> '')
ON CONFLICT DO NOTHING`;

const EVENTS = `${jsonRows("?2")}
INSERT INTO task_events (tenant, task_id, seq, last_seq, events)
SELECT ?1, v ->> 0, v ->> 1, v ->> 2, v -> 3 FROM r WHERE true
ON CONFLICT (tenant, task_id, seq) DO UPDATE SET last_seq = excluded.last_seq, events = excluded.events
WHERE excluded.last_seq > task_events.last_seq`;

const IDS = "SELECT value FROM json_each(?2)";
const DELETES = [
  `DELETE FROM task_text WHERE rowid IN (SELECT doc FROM tasks WHERE tenant = ?1 AND id IN (${IDS}))`,
  `DELETE FROM task_events WHERE tenant = ?1 AND task_id IN (${IDS})`,
  `DELETE FROM tasks WHERE tenant = ?1 AND id IN (${IDS})`,
];

/** When the lease of a task with these fields ends: only running tasks have one. */
function expiresAt(c: TaskChanges): number | null | undefined {
  if (c.status !== undefined) return c.status === "running" ? (c.dueAt ?? null) : null;
  return c.dueAt; // a heartbeat: the task is running
}

/** The changed columns of a task made before this batch, keyed by column. */
function changedColumns(c: TaskChanges): Record<string, unknown> {
  const out: Record<string, unknown> = { id: c.id };
  for (const [column, field] of Object.entries(CHANGING)) {
    const value = field === "dueAt" ? expiresAt(c) : c[field];
    if (value !== undefined) out[column] = value;
  }
  return out;
}

/** A full row's values; `long`: its payload is kept in task_payloads (the row holds ''). */
const rowValues = (r: TaskRow, long: boolean): unknown[] => [
  r.id,
  queueOf(r.id),
  r.name,
  long ? "" : r.payload,
  r.priority,
  r.status,
  r.attempts,
  r.maxAttempts,
  r.backoff,
  r.timeoutMs,
  r.runAt,
  r.dependsOn,
  r.depsWaiting,
  r.onDependencyFailure,
  r.parentId,
  r.waitForChildren,
  r.sealed,
  r.children,
  r.idempotencyKey,
  r.groupKey,
  r.workerId,
  r.cancelRequested,
  r.progress,
  r.result,
  r.error,
  r.tags,
  r.createdAt,
  r.startedAt,
  r.finishedAt,
  r.status === "running" ? r.dueAt : null,
];

/** The queue a task id names. */
const queueOf = (id: string) => parseTaskId(id)?.queue ?? "";

/** What one task contributes to a batch; the unit the batch is split by when D1 refuses it. */
interface Piece {
  id: string;
  task: HistoryTask | null;
  events: EventsRow[];
  deleted: boolean;
}

function pieces(plan: HistoryPlan): Piece[] {
  const byId = new Map<string, Piece>();
  const piece = (id: string) => byId.get(id) ?? byId.set(id, { id, task: null, events: [], deleted: false }).get(id)!;
  for (const t of plan.tasks) piece(t.row.id).task = t;
  for (const e of plan.events) piece(e.taskId).events.push(e);
  for (const id of plan.deletes) piece(id).deleted = true;
  return [...byId.values()];
}

function statements(db: D1Database, tenant: string, version: number, list: Piece[]): D1PreparedStatement[] {
  const tasks = list.flatMap((p) => (p.task?.full ? [p.task] : []));
  const out: D1PreparedStatement[] = [];
  const changed = new Map<string, string[]>();
  for (const p of list) {
    if (!p.task || p.task.full) continue;
    const row = changedColumns(p.task.row);
    const columns = Object.keys(row).filter((c) => c !== "id");
    if (columns.length === 0) continue;
    const key = columns.join(",");
    const rows = changed.get(key) ?? changed.set(key, []).get(key)!;
    rows.push(JSON.stringify([row.id, ...columns.map((c) => row[c])]));
  }
  for (const [key, rows] of changed) {
    const sql = update(key.split(","));
    for (const chunk of jsonArrays(rows)) out.push(db.prepare(sql).bind(tenant, chunk.json, version));
  }
  if (tasks.length > 0) {
    out.push(db.prepare("UPDATE counters SET value = value + ?1 WHERE name = 'doc'").bind(tasks.length));
    // A long payload goes to its own row, written once; the task's row, written again at each later change, holds ''.
    const long = new Set(tasks.filter((t) => longPayload(t.row.payload!)));
    for (const chunk of jsonArrays([...long].map((t) => JSON.stringify([t.row.id, t.row.payload])))) {
      out.push(db.prepare(PAYLOADS).bind(tenant, chunk.json));
    }
    let offset = 1;
    for (const chunk of jsonArrays(tasks.map((t) => JSON.stringify(rowValues(t.row as TaskRow, long.has(t)))))) {
      out.push(db.prepare(UPSERT).bind(tenant, chunk.json, tasks.length, offset, version));
      offset += chunk.count;
    }
    const texts = tasks.flatMap((t) => (t.text ? [JSON.stringify([t.row.id, t.text.name, t.text.body])] : []));
    for (const chunk of jsonArrays(texts)) out.push(db.prepare(TEXT).bind(tenant, chunk.json));
  }
  // Each row's events go in as a JSON array (not a string inside one), read back as text with `->`.
  const events = list.flatMap((p) => p.events.map((e) => `[${JSON.stringify(e.taskId)},${e.seq},${e.lastSeq},${e.json}]`));
  for (const chunk of jsonArrays(events)) out.push(db.prepare(EVENTS).bind(tenant, chunk.json));
  const deletes = list.filter((p) => p.deleted).map((p) => p.id);
  if (deletes.length > 0) out.push(...deleteStatements(db, tenant, deletes));
  return out;
}

/** Statements that remove tasks from history: their FTS text, their timeline, their row. */
export function deleteStatements(db: D1Database, tenant: string, ids: string[]): D1PreparedStatement[] {
  return DELETES.map((sql) => db.prepare(sql).bind(tenant, JSON.stringify(ids)));
}

/** The statements a plan becomes (for tests that check their query plans). */
export const planStatements = (db: D1Database, tenant: string, plan: HistoryPlan) => statements(db, tenant, plan.upTo, pieces(plan));

export interface HistoryWritten {
  /** rows D1 reports written (its bill) */
  rowsWritten: number;
  /** rows set aside: D1 refused them while it was up */
  dead: DeadHistory[];
  /** of those, rows of analytics rollups (durable/rollups.ts) */
  rollupRows: number;
  /** time spent building statements here (not waiting for D1), ms */
  buildMs: number;
}

/** D1 is down (or unreachable): nothing of the batch was written, try again later. */
export class HistoryUnavailable extends Error {}

// writeHistory: the D1 binding, the tenant, the shard writing (`queue:shard`), a plan. output: rows
// written and rows set aside. The task rows go first, then the plan's analytics rollups, which read them.
// errors: HistoryUnavailable when D1 does not answer (the whole batch is to be sent again).
export async function writeHistory(db: D1Database, tenant: string, source: string, plan: HistoryPlan): Promise<HistoryWritten> {
  const out: HistoryWritten = { rowsWritten: 0, rollupRows: 0, dead: [], buildMs: 0 };
  const all = pieces(plan);
  if (plan.tasks.length + plan.events.length + plan.deletes.length === 0) return out; // nothing to write or count, nor a version to move
  // A flush of one call's worth (most of them): its rows and the rollups that read them in one D1
  // call, one round trip and one commit instead of two. A refused row sends it the careful way below.
  if (all.length <= TASKS_PER_CALL && (await together(db, tenant, source, plan, all, out))) return out;
  for (let i = 0; i < all.length; i += TASKS_PER_CALL) await send(db, tenant, plan.upTo, all.slice(i, i + TASKS_PER_CALL), out);
  try {
    for (const r of await db.batch(rollupStatements(db, tenant, source, plan))) out.rollupRows += r.meta.rows_written ?? 0;
  } catch (e) {
    throw new HistoryUnavailable(`D1 is unavailable: ${(e as Error).message}`);
  }
  out.rowsWritten += out.rollupRows;
  return out;
}

/** The whole plan and its rollups as one D1 batch: true once written, false when D1 refused a row in it (nothing written). */
async function together(
  db: D1Database,
  tenant: string,
  source: string,
  plan: HistoryPlan,
  all: Piece[],
  out: HistoryWritten,
): Promise<boolean> {
  const t0 = performance.now();
  const rows = statements(db, tenant, plan.upTo, all);
  const rollups = rollupStatements(db, tenant, source, plan);
  out.buildMs += performance.now() - t0;
  let results: D1Result[];
  try {
    results = await db.batch([...rows, ...rollups]);
  } catch (e) {
    await refusedRows(db, e);
    return false;
  }
  results.forEach((r, i) => {
    if (i < rows.length) out.rowsWritten += r.meta.rows_written ?? 0;
    else out.rollupRows += r.meta.rows_written ?? 0;
  });
  out.rowsWritten += out.rollupRows;
  return true;
}

async function send(db: D1Database, tenant: string, version: number, list: Piece[], out: HistoryWritten): Promise<void> {
  if (list.length === 0) return;
  try {
    const t0 = performance.now();
    const batch = statements(db, tenant, version, list);
    out.buildMs += performance.now() - t0;
    if (batch.length > 0) for (const r of await db.batch(batch)) out.rowsWritten += r.meta.rows_written ?? 0;
    return;
  } catch (e) {
    const message = await refusedRows(db, e);
    if (list.length === 1) {
      const p = list[0];
      out.dead.push({ taskId: p.id, reason: `D1 refused the row: ${message}`, body: JSON.stringify(p).slice(0, DEAD_BODY_MAX) });
      return;
    }
  }
  const half = Math.ceil(list.length / 2);
  await send(db, tenant, version, list.slice(0, half), out);
  await send(db, tenant, version, list.slice(half), out);
}

/** A batch's error, when D1 refused rows in it (and still answers); otherwise HistoryUnavailable is thrown: the batch is to be sent again later. */
async function refusedRows(db: D1Database, e: unknown): Promise<string> {
  const message = (e as Error).message;
  if (!REFUSAL.test(message) || !(await answers(db))) throw new HistoryUnavailable(`D1 is unavailable: ${message}`);
  return message;
}

/** Whether D1 answers at all: tells a refused row from an outage. */
async function answers(db: D1Database): Promise<boolean> {
  try {
    await db.prepare("SELECT 1").first();
    return true;
  } catch {
    return false;
  }
}

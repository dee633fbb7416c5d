import { parseTaskId } from "./core/ids";
import type { HistoryPlan } from "./core/timeline";
import { jsonArrays, jsonRows } from "./json-rows";

/**
 * The analytics rollups a flush adds (schema/analytics.ts): per queue and
 * minute and hour, what the plan's events count as (durable/core/tally.ts:
 * enqueued, finished, retried — the shard's totals' definition), and the
 * wait and run times of the tasks it saw finish, binned in SQL against
 * `hist_bins` from the rows the same flush has just written.
 *
 * Exactly once: each count carries the outbox position it comes from, and
 * every statement adds only what lies past the shard's ledger position; the
 * last one moves the ledger to the plan's end — in the same atomic D1 batch
 * as the task rows when the flush is one slice, else one of its own sent
 * after them. A flush sent again adds nothing, and one sent again
 * over more entries (new ones arrived meanwhile) adds only those.
 */

/** Bucket sizes: minutes (`m`) for short ranges, hours (`h`) for the rest. */
export const RES = { m: 60_000, h: 3_600_000 } as const;

/** The shard's ledger position: what it has counted already (-1: nothing). ?1 tenant, ?2 source. */
const COUNTED = "coalesce((SELECT up_to FROM rollup_ledger WHERE tenant = ?1 AND source = ?2), -1)";
const BUCKETS = `(SELECT 'm' AS res, ${RES.m} AS size UNION ALL SELECT 'h', ${RES.h})`;

/** Marks ?3 (JSON [position, at, queue, kind]) past the ledger, summed per bucket and queue. */
const COUNTS = `${jsonRows("?3")}
INSERT INTO rollups (tenant, res, at, queue, enqueued, completed, failed, cancelled, retried)
SELECT ?1, b.res, ((r.v ->> 1) / b.size) * b.size, r.v ->> 2,
  sum(r.v ->> 3 = 'enqueued'), sum(r.v ->> 3 = 'completed'), sum(r.v ->> 3 = 'failed'), sum(r.v ->> 3 = 'cancelled'), sum(r.v ->> 3 = 'retried')
FROM r CROSS JOIN ${BUCKETS} b
WHERE (r.v ->> 0) > ${COUNTED}
GROUP BY b.res, 3, 4
ON CONFLICT (tenant, res, at, queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued, completed = completed + excluded.completed,
  failed = failed + excluded.failed, cancelled = cancelled + excluded.cancelled, retried = retried + excluded.retried`;

/** Wait and run times of the tasks ?3 names (JSON [position, id]) past the ledger, from their rows in `tasks`, binned. */
const HIST = `${jsonRows("?3")}
INSERT INTO rollup_hist (tenant, res, at, queue, kind, bin, n)
SELECT ?1, b.res, (t.finished_at / b.size) * b.size, t.queue, k.kind,
  (SELECT bin FROM hist_bins WHERE lo <= max(0, CASE k.kind WHEN 'wait' THEN t.wait_ms ELSE t.run_ms END) ORDER BY lo DESC LIMIT 1) AS h,
  count(*)
FROM r JOIN tasks t ON t.tenant = ?1 AND t.id = r.v ->> 1
CROSS JOIN ${BUCKETS} b
CROSS JOIN (SELECT 'wait' AS kind UNION ALL SELECT 'run') k
WHERE t.started_at IS NOT NULL AND t.finished_at IS NOT NULL AND (r.v ->> 0) > ${COUNTED}
GROUP BY b.res, 3, t.queue, k.kind, h
ON CONFLICT (tenant, res, at, queue, kind, bin) DO UPDATE SET n = n + excluded.n`;

const LEDGER = `INSERT INTO rollup_ledger (tenant, source, up_to) VALUES (?1, ?2, ?3)
ON CONFLICT (tenant, source) DO UPDATE SET up_to = max(up_to, excluded.up_to)`;

/** The D1 statements that add a plan's marks to the rollups, each once per `source` (the shard) and outbox position. */
export function rollupStatements(db: D1Database, tenant: string, source: string, plan: HistoryPlan): D1PreparedStatement[] {
  const marks = plan.marks.map(([pos, id, at, kind]) => JSON.stringify([pos, at, parseTaskId(id)?.queue ?? "", kind]));
  // Times of the tasks that ran and ended (a cancelled task may never have run).
  const timed = plan.marks.filter((m) => m[3] === "completed" || m[3] === "failed").map(([pos, id]) => JSON.stringify([pos, id]));
  const out: D1PreparedStatement[] = [];
  for (const { json } of jsonArrays(marks)) out.push(db.prepare(COUNTS).bind(tenant, source, json));
  for (const { json } of jsonArrays(timed)) out.push(db.prepare(HIST).bind(tenant, source, json));
  out.push(db.prepare(LEDGER).bind(tenant, source, plan.upTo));
  return out;
}

import { parseTaskId } from "./core/ids";
import type { HistoryPlan } from "./core/timeline";

/**
 * The analytics rollups a flush adds (schema/analytics.ts): per queue and
 * minute and hour, what the plan saw enqueued, finished and retried, and the
 * wait and run times of the tasks it saw finish, binned in SQL against
 * `hist_bins` from the rows the same flush has just written.
 *
 * Exactly once: every statement adds only while the shard's ledger entry is
 * below the plan's position, and the last one moves it there — one atomic D1
 * batch, sent after the task rows. A flush sent again adds nothing.
 */

/** Bucket sizes: minutes (`m`) for short ranges, hours (`h`) for the rest. */
export const RES = { m: 60_000, h: 3_600_000 } as const;

/** Counts of one queue in one bucket. */
interface Counts {
  enqueued: number;
  completed: number;
  failed: number;
  cancelled: number;
  retried: number;
}

/** Adds nothing once the ledger has this position (?1 tenant, ?2 source, ?3 position). */
const UNCOUNTED = "NOT EXISTS (SELECT 1 FROM rollup_ledger WHERE tenant = ?1 AND source = ?2 AND up_to >= ?3)";

const COUNTS = `INSERT INTO rollups (tenant, res, at, queue, enqueued, completed, failed, cancelled, retried)
SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
FROM json_each(?4) WHERE ${UNCOUNTED}
ON CONFLICT (tenant, res, at, queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued, completed = completed + excluded.completed,
  failed = failed + excluded.failed, cancelled = cancelled + excluded.cancelled, retried = retried + excluded.retried`;

/** Wait and run times of the finished tasks ?4 names (JSON ids), from their rows in `tasks`, binned. */
const HIST = `INSERT INTO rollup_hist (tenant, res, at, queue, kind, bin, n)
SELECT ?1, r.res, (t.finished_at / r.size) * r.size, t.queue, k.kind,
  (SELECT bin FROM hist_bins WHERE lo <= max(0, CASE k.kind WHEN 'wait' THEN t.wait_ms ELSE t.run_ms END) ORDER BY lo DESC LIMIT 1) AS b,
  count(*)
FROM json_each(?4) j JOIN tasks t ON t.tenant = ?1 AND t.id = j.value
CROSS JOIN (SELECT 'm' AS res, ${RES.m} AS size UNION ALL SELECT 'h', ${RES.h}) r
CROSS JOIN (SELECT 'wait' AS kind UNION ALL SELECT 'run') k
WHERE t.started_at IS NOT NULL AND t.finished_at IS NOT NULL AND ${UNCOUNTED}
GROUP BY r.res, 3, t.queue, k.kind, b
ON CONFLICT (tenant, res, at, queue, kind, bin) DO UPDATE SET n = n + excluded.n`;

const LEDGER = `INSERT INTO rollup_ledger (tenant, source, up_to) VALUES (?1, ?2, ?3)
ON CONFLICT (tenant, source) DO UPDATE SET up_to = max(up_to, excluded.up_to)`;

const FINISHED = new Set(["completed", "failed", "cancelled"]);

/** What the plan adds to each bucket, and the tasks whose times it adds. */
export function rollupOf(plan: HistoryPlan): { rows: [string, number, string, ...number[]][]; timed: string[] } {
  const buckets = new Map<string, Counts>();
  const add = (queue: string, at: number, field: keyof Counts) => {
    for (const [res, size] of Object.entries(RES)) {
      const key = JSON.stringify([res, Math.floor(at / size) * size, queue]);
      const c = buckets.get(key) ?? { enqueued: 0, completed: 0, failed: 0, cancelled: 0, retried: 0 };
      c[field]++;
      buckets.set(key, c);
    }
  };
  const timed: string[] = [];
  for (const { row, full } of plan.tasks) {
    const queue = parseTaskId(row.id)?.queue ?? "";
    if (full && row.createdAt !== undefined) add(queue, row.createdAt, "enqueued");
    if (row.status !== undefined && FINISHED.has(row.status) && typeof row.finishedAt === "number") {
      add(queue, row.finishedAt, row.status as keyof Counts);
      if (row.status !== "cancelled") timed.push(row.id);
    }
  }
  for (const e of plan.events) {
    const queue = parseTaskId(e.taskId)?.queue ?? "";
    for (const event of e.events) if (event.type === "retrying") add(queue, event.at, "retried");
  }
  const rows = [...buckets].map(([key, c]) => [...(JSON.parse(key) as [string, number, string]), c.enqueued, c.completed, c.failed, c.cancelled, c.retried] as [string, number, string, ...number[]]);
  return { rows, timed };
}

/** The D1 statements that add a plan to the rollups, exactly once per `source` (the shard) and position. */
export function rollupStatements(db: D1Database, tenant: string, source: string, plan: HistoryPlan, chunk: (items: string[]) => string[]): D1PreparedStatement[] {
  const { rows, timed } = rollupOf(plan);
  const out: D1PreparedStatement[] = [];
  for (const json of chunk(rows.map((r) => JSON.stringify(r)))) out.push(db.prepare(COUNTS).bind(tenant, source, plan.upTo, json));
  for (const json of chunk(timed.map((id) => JSON.stringify(id)))) out.push(db.prepare(HIST).bind(tenant, source, plan.upTo, json));
  out.push(db.prepare(LEDGER).bind(tenant, source, plan.upTo));
  return out;
}

import { addToBin, spread } from "../durable/core/bins";
import { ulidTimePrefix } from "../durable/core/ids";
import { QueueError } from "../durable/core/errors";
import { RES } from "../durable/rollups";
import { BUCKETS_MAX, type Bucket, type DistributionsFilters, type TrendsFilters } from "../schema/api-analytics";
import { DAY } from "../schema/api";
import { bandOf } from "../schema/shard";
import { workerStatus } from "../durable/core/workers";
import { findQueue, registryOf, shardStats, sumCounts } from "./shards";

/**
 * /analytics, computed in D1. Trends read the rollups the history flush
 * writes (schema/analytics.ts): a month of hourly buckets is a few hundred
 * rollup rows, however many tasks are behind them. Distributions count the
 * task rows created in the range, walking the primary key (ids sort by
 * creation time). See docs/ARCHITECTURE.md, "Analytics".
 */

const SIZE: Record<Bucket, number> = { minute: RES.m, hour: RES.h, day: DAY };
/** Days one distribution may span (it counts every task row created in its range). */
const DISTRIBUTION_DAYS_MAX = 93;
/** Keys per distribution at most; the rest are summed under "(other)". */
const KEYS_MAX = 100;

const iso = (ms: number) => new Date(ms).toISOString();

/** The range of a query: `to` (default now), `from` (default a day before), both on bucket bounds; a bad range is a 400 on its parameter. */
function range(f: { from?: number; to?: number }, now: number, size: number): { from: number; to: number } {
  const to = Math.ceil((f.to ?? now) / size) * size;
  const from = Math.floor((f.from ?? to - DAY) / size) * size;
  if (from >= to)
    throw new QueueError("validation_failed", "`from` must be before `to`.", [{ pointer: "?from", detail: "must be before `to`" }]);
  return { from, to };
}

/** A trend query with its defaults filled in and its range on bucket bounds: what it answers, and its cache key. */
export function trendQuery(f: TrendsFilters, now: number) {
  const { from, to } = range(f, now, SIZE[f.bucket]);
  const count = (to - from) / SIZE[f.bucket];
  if (count > BUCKETS_MAX) {
    throw new QueueError(
      "validation_failed",
      `At most ${BUCKETS_MAX} buckets per trend: ${count} ${f.bucket}s asked for; use a larger bucket.`,
      [{ pointer: "?bucket", detail: `${count} buckets; at most ${BUCKETS_MAX}` }],
    );
  }
  return { bucket: f.bucket, from, to, queue: f.queue };
}

/** A distributions query with its defaults filled in, on whole minutes (so near-identical questions share a cache key). */
export function distributionQuery(f: DistributionsFilters, now: number) {
  const { from, to } = range(f, now, RES.m);
  if (to - from > DISTRIBUTION_DAYS_MAX * DAY) {
    throw new QueueError("validation_failed", `A distribution spans at most ${DISTRIBUTION_DAYS_MAX} days.`, [
      { pointer: "?from", detail: `at most ${DISTRIBUTION_DAYS_MAX} days before \`to\`` },
    ]);
  }
  return { from, to, queue: f.queue };
}

export async function trends(db: D1Database, tenant: string, f: ReturnType<typeof trendQuery>) {
  const size = SIZE[f.bucket];
  const { from, to } = f;
  const count = (to - from) / size;
  const res = f.bucket === "minute" ? "m" : "h";
  const queue = f.queue === undefined ? "" : " AND queue = ?5";
  const args = [tenant, res, from, to, ...(f.queue === undefined ? [] : [f.queue])];
  const [counts, hist] = await db.batch<Record<string, number>>([
    db
      .prepare(
        `SELECT at, sum(enqueued) AS enqueued, sum(completed) AS completed, sum(failed) AS failed FROM rollups WHERE tenant = ?1 AND res = ?2 AND at >= ?3 AND at < ?4${queue} GROUP BY at`,
      )
      .bind(...args),
    db
      .prepare(
        `SELECT at, kind = 'wait' AS wait, bin, sum(n) AS n FROM rollup_hist WHERE tenant = ?1 AND res = ?2 AND at >= ?3 AND at < ?4${queue} GROUP BY at, kind, bin`,
      )
      .bind(...args),
  ]);
  const slot = (at: number) => Math.floor((at - from) / size);
  const items = Array.from({ length: count }, (_, i) => ({
    at: from + i * size,
    enqueued: 0,
    completed: 0,
    failed: 0,
    wait: new Map<number, number>(),
    run: new Map<number, number>(),
  }));
  for (const r of counts.results) {
    const item = items[slot(r.at)];
    item.enqueued += r.enqueued;
    item.completed += r.completed;
    item.failed += r.failed;
  }
  for (const r of hist.results) addToBin(items[slot(r.at)][r.wait ? "wait" : "run"], r.bin, r.n);
  return {
    bucket: f.bucket,
    from: iso(from),
    to: iso(to),
    items: items.map(({ at, enqueued, completed, failed, wait, run }) => {
      const finished = completed + failed;
      return {
        at: iso(at),
        enqueued,
        completed,
        failed,
        completionRate: finished === 0 ? null : completed / finished,
        failureRate: finished === 0 ? null : failed / finished,
        waitMs: spread(wait),
        runMs: spread(run),
      };
    }),
  };
}

/** The largest KEYS_MAX keys of a count, the rest summed under "(other)"; keys in descending count, then name order. */
function top(rows: { k: string | number; n: number }[]): Record<string, number> {
  const sorted = [...rows].sort((a, b) => b.n - a.n || String(a.k).localeCompare(String(b.k)));
  const out: Record<string, number> = {};
  for (const r of sorted.slice(0, KEYS_MAX)) out[String(r.k)] = r.n;
  const rest = sorted.slice(KEYS_MAX).reduce((s, r) => s + r.n, 0);
  if (rest > 0) out["(other)"] = rest;
  return out;
}

export async function distributions(db: D1Database, tenant: string, f: ReturnType<typeof distributionQuery>) {
  const { from, to } = f;
  // Ids sort by creation time: the primary key's id range holds the tasks created in [from, to).
  const where = `tenant = ?1 AND id >= ?2 AND id < ?3${f.queue === undefined ? "" : " AND queue = ?4"}`;
  const args = [tenant, ulidTimePrefix(from), ulidTimePrefix(to), ...(f.queue === undefined ? [] : [f.queue])];
  const by = (column: string) =>
    db
      .prepare(
        `SELECT ${column} AS k, count(*) AS n FROM tasks WHERE ${where}${column === "worker_id" ? " AND worker_id IS NOT NULL" : ""} GROUP BY 1`,
      )
      .bind(...args);
  const [status, priority, queue, worker, name] = await db.batch<{ k: string | number; n: number }>(
    ["status", "priority", "queue", "worker_id", "name"].map(by),
  );
  const band: Record<string, number> = {};
  for (const r of priority.results) band[bandOf(Number(r.k))] = (band[bandOf(Number(r.k))] ?? 0) + r.n;
  return {
    from: iso(from),
    to: iso(to),
    total: status.results.reduce((s, r) => s + r.n, 0),
    status: top(status.results),
    priority: top(priority.results),
    band,
    queue: top(queue.results),
    worker: top(worker.results),
    name: top(name.results),
  };
}

/** Workers in a performance answer at most (the busiest first). */
const WORKERS_MAX = 200;

/** Queues now (depth and oldest pending from their shards), their last hour (from the rollups), and the workers. */
export async function performance(env: Env, tenant: string, queue: string | undefined, now: number) {
  const registry = registryOf(env, tenant);
  let records = await registry.list(undefined, 1000);
  if (queue !== undefined) {
    const record = await findQueue(env, tenant, queue);
    if (record === null) throw new QueueError("not_found", `Queue ${queue} does not exist.`);
    records = [record];
  }
  const hourFrom = Math.floor((now - RES.h) / RES.m) * RES.m;
  const minuteFrom = Math.floor((now - RES.m) / RES.m) * RES.m;
  const rows = (
    await env.DB.prepare("SELECT queue, at, completed, failed, retried FROM rollups WHERE tenant = ?1 AND res = 'm' AND at >= ?2")
      .bind(tenant, hourFrom)
      .all<{ queue: string; at: number; completed: number; failed: number; retried: number }>()
  ).results;
  const ratio = (a: number, b: number) => (b === 0 ? null : a / b);
  const queues = await Promise.all(
    records.map(async (record) => {
      const shards = await shardStats(env, tenant, record);
      const depth = sumCounts(shards);
      const ready = shards.map((s) => s.oldestReadyAt).filter((t): t is number => t !== null);
      const mine = rows.filter((r) => r.queue === record.name);
      const sum = (list: typeof mine, k: "completed" | "failed" | "retried") => list.reduce((n, r) => n + r[k], 0);
      const lastMinute = mine.filter((r) => r.at >= minuteFrom);
      const [completed, failed, retried] = [sum(mine, "completed"), sum(mine, "failed"), sum(mine, "retried")];
      return {
        name: record.name,
        depth,
        oldestPendingMs: ready.length === 0 ? null : Math.max(0, now - Math.min(...ready)),
        throughput: {
          lastMinute: (sum(lastMinute, "completed") + sum(lastMinute, "failed")) / ((now - minuteFrom) / 1000),
          lastHour: (completed + failed) / ((now - hourFrom) / 1000),
        },
        failureRate: ratio(retried + failed, completed + failed + retried),
        retryRate: ratio(retried, completed + failed),
        deadLetterRate: ratio(failed, completed + failed),
      };
    }),
  );
  const workers = (await registry.listWorkers(undefined, 1000)).filter((w) => queue === undefined || w.queues.includes(queue));
  const available = (w: (typeof workers)[number]) => Math.max(0, w.lastSeenAt - w.registeredAt) * w.concurrency;
  const items = workers
    .map((w) => {
      const u = ratio(w.busyMs, available(w));
      // A worker reports its own busy time: more than it had is read as fully busy.
      return {
        id: w.id,
        name: w.name,
        status: workerStatus(w.lastSeenAt, w.currentTasks.length, now),
        utilisation: u === null ? null : Math.min(1, u),
        busyMs: w.busyMs,
      };
    })
    .sort((a, b) => b.busyMs - a.busyMs || a.id.localeCompare(b.id));
  const count = (status: string) => items.filter((w) => w.status === status).length;
  return {
    at: iso(now),
    queues,
    workers: {
      active: count("active"),
      idle: count("idle"),
      lost: count("lost"),
      utilisation: ((u) => (u === null ? null : Math.min(1, u)))(
        ratio(
          workers.reduce((n, w) => n + Math.min(w.busyMs, available(w)), 0),
          workers.reduce((n, w) => n + available(w), 0),
        ),
      ),
      items: items.slice(0, WORKERS_MAX),
    },
  };
}

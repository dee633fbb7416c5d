import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { binOf, binValue } from "../../durable/core/bins";
import type { HistoryPlan, HistoryTask, RollupMark } from "../../durable/core/timeline";
import { writeHistory } from "../../durable/history";
import { api, flushHistory, historyTask, tenantApi, until } from "./helpers";
import { hubOf } from "../../durable/metrics-hub";
import { analyticsVersionKey } from "../../durable/analytics-book";
import { registryOf } from "../../worker/shards";

/**
 * /analytics over a hand-made history: six tasks with known times, written
 * through the flusher's own write path (writeHistory), so the rollups are the
 * ones a shard would write. Every expected number below is worked out by hand
 * from the fixture.
 */

const D = Date.parse("2026-01-05T00:00:00Z");
const MIN = 60_000;
const HOUR = 3_600_000;

/** A task of the fixture: times in ms, started `wait` after creation, ran for `run`. */
function task(
  n: number,
  o: { queue?: string; created: number; wait?: number; run?: number; status: string; priority?: number; name?: string },
): HistoryTask {
  const started = o.wait === undefined ? null : o.created + o.wait;
  const finished = ["completed", "failed", "cancelled"].includes(o.status) ? (started ?? o.created) + (o.run ?? 0) : null;
  return historyTask(n, { ...o, started, finished, workerId: `w${n % 2}` });
}

const FIXTURE = [
  task(1, { created: D + 10 * MIN, wait: 100, run: 1_000, status: "completed", priority: 9, name: "send" }),
  task(2, { created: D + 20 * MIN, wait: 200, run: 2_000, status: "completed", name: "send" }),
  task(3, { created: D + 30 * MIN, wait: 300, run: 3_000, status: "failed", priority: 2 }),
  task(4, { created: D + 40 * MIN, status: "pending" }),
  task(5, { queue: "b", created: D + HOUR + 5 * MIN, wait: 5, run: 7, status: "completed" }),
  task(6, { created: D + HOUR + 10 * MIN, status: "cancelled" }),
];

function plan(upTo: number, tasks: HistoryTask[]): HistoryPlan {
  const events = tasks.map((t, i) => {
    const list = [
      { type: "enqueued", at: t.row.createdAt! },
      ...(t.row.status === "failed" ? [{ type: "retrying", at: t.row.createdAt! + 150 }] : []),
    ];
    return { taskId: t.row.id, seq: upTo * 100 + i, lastSeq: upTo * 100 + i, events: list, json: JSON.stringify(list) };
  });
  // What the shard's events count as: made, ended (at the finish), a retry for the failed one.
  const marks: RollupMark[] = tasks.flatMap((t) => [
    [upTo, t.row.id, t.row.createdAt!, "enqueued"] as RollupMark,
    ...(t.row.finishedAt ? [[upTo, t.row.id, t.row.finishedAt, t.row.status] as RollupMark] : []),
    ...(t.row.status === "failed" ? [[upTo, t.row.id, t.row.createdAt! + 150, "retried"] as RollupMark] : []),
  ]);
  return { upTo, marks, tasks, events, deletes: [], dead: [] };
}

/** A call as a client makes it, waiting for what the Worker does after answering (the cache write, the counters). */
const call = (key: string, path: string, headers: Record<string, string> = {}) =>
  api("GET", `/api/v1${path}`, undefined, { authorization: `Bearer ${key}`, ...headers });

async function tenantWithHistory() {
  const tenant = `an-${crypto.randomUUID().slice(0, 8)}`;
  const made = await api("POST", "/api/v1/keys", { tenant, role: "read-only", name: "analytics" });
  expect(made.status).toBe(201);
  await written(tenant, plan(1, FIXTURE));
  return { tenant, key: made.body.key as string };
}

const approx = (exact: number) => binValue(binOf(exact));

/** What a shard's flush does: history written, then the tenant's hub told (it moves the analytics version). */
async function written(tenant: string, p: HistoryPlan) {
  await writeHistory(env.DB, tenant, "a:0", p);
  await hubOf(env, tenant).historyChanged(tenant);
}

describe("analytics", () => {
  let t: { tenant: string; key: string };
  beforeAll(async () => {
    t = await tenantWithHistory();
  });

  it("trends by hour: enqueued by creation, finished by finish time, rates without the cancelled, percentiles within 5 % + 1 ms", async () => {
    const res = await call(
      t.key,
      `/analytics/trends?bucket=hour&from=${new Date(D).toISOString()}&to=${new Date(D + 2 * HOUR).toISOString()}`,
    );
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(2);
    const [h0, h1] = res.body.items;
    expect(h0).toMatchObject({ at: "2026-01-05T00:00:00.000Z", enqueued: 4, completed: 2, failed: 1 });
    expect(h0.completionRate).toBeCloseTo(2 / 3, 10);
    expect(h0.failureRate).toBeCloseTo(1 / 3, 10);
    // Waits 100, 200, 300 and runs 1000, 2000, 3000: nearest rank p50 is the 2nd, p95 and p99 the 3rd.
    expect(h0.waitMs).toEqual({ p50: approx(200), p95: approx(300), p99: approx(300) });
    expect(h0.runMs).toEqual({ p50: approx(2_000), p95: approx(3_000), p99: approx(3_000) });
    for (const [got, exact] of [
      [h0.waitMs.p50, 200],
      [h0.runMs.p50, 2_000],
      [h0.runMs.p99, 3_000],
    ])
      expect(Math.abs(got - exact)).toBeLessThanOrEqual(0.05 * exact + 1);
    // t5 (queue b) completed; t6 was cancelled before it ran: no rate, no times.
    expect(h1).toEqual({
      at: "2026-01-05T01:00:00.000Z",
      enqueued: 2,
      completed: 1,
      failed: 0,
      completionRate: 1,
      failureRate: 0,
      waitMs: { p50: 5, p95: 5, p99: 5 },
      runMs: { p50: 7, p95: 7, p99: 7 },
    });
  });

  it("trends by minute and by day, a queue filter, and empty buckets", async () => {
    const minutes = await call(
      t.key,
      `/analytics/trends?bucket=minute&from=${new Date(D + 10 * MIN).toISOString()}&to=${new Date(D + 13 * MIN).toISOString()}`,
    );
    expect(minutes.body.items.map((i: { enqueued: number; completed: number }) => [i.enqueued, i.completed])).toEqual([
      [1, 1],
      [0, 0],
      [0, 0],
    ]);
    expect(minutes.body.items[1]).toMatchObject({ completionRate: null, waitMs: { p50: null, p95: null, p99: null } });
    const day = await call(t.key, `/analytics/trends?bucket=day&from=${new Date(D).toISOString()}&to=${new Date(D + 1).toISOString()}`);
    expect(day.body.items).toEqual([expect.objectContaining({ at: "2026-01-05T00:00:00.000Z", enqueued: 6, completed: 3, failed: 1 })]);
    const b = await call(
      t.key,
      `/analytics/trends?bucket=hour&queue=b&from=${new Date(D).toISOString()}&to=${new Date(D + 2 * HOUR).toISOString()}`,
    );
    expect(b.body.items.map((i: { enqueued: number }) => i.enqueued)).toEqual([0, 1]);
  });

  it("a flush sent again adds nothing to the rollups; retries are counted when they happen", async () => {
    const again = await writeHistory(env.DB, t.tenant, "a:0", plan(1, FIXTURE)); // as a flush sent again would
    expect(again.rollupRows).toBe(1); // the ledger row, rewritten; no count, no bin
    const rows = await env.DB.prepare("SELECT sum(enqueued) AS e, sum(retried) AS r FROM rollups WHERE tenant = ? AND res = 'h'")
      .bind(t.tenant)
      .first<{ e: number; r: number }>();
    expect(rows).toEqual({ e: 6, r: 1 });
  });

  it("a flush sent again over more entries (new ones came meanwhile) adds only the new ones", async () => {
    const tenant = `an-${crypto.randomUUID().slice(0, 8)}`;
    const a = task(21, { created: D + 5 * MIN, wait: 10, run: 100, status: "completed" });
    const b = task(22, { created: D + 6 * MIN, wait: 10, run: 100, status: "completed" });
    await writeHistory(env.DB, tenant, "a:0", plan(5, [a])); // D1 took it; the shard never heard back
    const again = plan(6, [a, b]);
    again.marks = [...plan(5, [a]).marks, ...plan(6, [b]).marks]; // a's counts from position 5, b's from 6
    await writeHistory(env.DB, tenant, "a:0", again);
    const sums = await env.DB.prepare("SELECT sum(enqueued) AS e, sum(completed) AS c FROM rollups WHERE tenant = ? AND res = 'h'")
      .bind(tenant)
      .first();
    expect(sums).toEqual({ e: 2, c: 2 });
    const timed = await env.DB.prepare("SELECT sum(n) AS n FROM rollup_hist WHERE tenant = ? AND res = 'h' AND kind = 'run'")
      .bind(tenant)
      .first("n");
    expect(timed).toBe(2);
  });

  it("distributions count the tasks created in the range by each field, their status now", async () => {
    const res = await call(t.key, `/analytics/distributions?from=${new Date(D).toISOString()}&to=${new Date(D + 2 * HOUR).toISOString()}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      from: "2026-01-05T00:00:00.000Z",
      to: "2026-01-05T02:00:00.000Z",
      total: 6,
      status: { completed: 3, cancelled: 1, failed: 1, pending: 1 },
      priority: { 5: 4, 2: 1, 9: 1 },
      band: { high: 1, medium: 4, low: 1 },
      queue: { a: 5, b: 1 },
      worker: { w1: 3, w0: 1 },
      name: { job: 4, send: 2 },
    });
    const narrow = await call(
      t.key,
      `/analytics/distributions?queue=b&from=${new Date(D).toISOString()}&to=${new Date(D + 2 * HOUR).toISOString()}`,
    );
    expect(narrow.body).toMatchObject({ total: 1, queue: { b: 1 } });
    // Times are taken to whole minutes: a question a few ms apart is the same question (and the same cache entry).
    const nearly = await call(
      t.key,
      `/analytics/distributions?queue=b&from=${new Date(D + 5).toISOString()}&to=${new Date(D + 2 * HOUR - 7).toISOString()}`,
    );
    expect(nearly.headers.get("x-cache")).toBe("HIT");
    expect(nearly.text).toBe(narrow.text);
  });

  it("the cache: a miss, then a hit with the same bytes and ETag, 304 on If-None-Match, a miss after new data; counted", async () => {
    const fresh = await tenantWithHistory();
    const path = `/analytics/trends?bucket=hour&from=${new Date(D).toISOString()}&to=${new Date(D + 2 * HOUR).toISOString()}`;
    const first = await call(fresh.key, path);
    const second = await call(fresh.key, path);
    expect(first.headers.get("x-cache")).toBe("MISS");
    expect(second.headers.get("x-cache")).toBe("HIT");
    expect(second.text).toBe(first.text);
    expect(second.headers.get("etag")).toBe(first.headers.get("etag"));
    expect(first.headers.get("cache-control")).toBe("private, no-cache");
    const unchanged = await call(fresh.key, path, { "if-none-match": first.headers.get("etag")! });
    expect(unchanged.status).toBe(304);
    // New data: one more task finishes in the first hour. The version moves at most once a second,
    // so within a second of the last move the answer may still be the cached one; then it is computed.
    const version = await env.CACHE.get(analyticsVersionKey(fresh.tenant));
    await written(fresh.tenant, plan(2, [task(7, { created: D + 50 * MIN, wait: 1, run: 1, status: "completed" })]));
    await until(async () => (await env.CACHE.get(analyticsVersionKey(fresh.tenant))) !== version, 3_000);
    const after = await call(fresh.key, path);
    expect(after.headers.get("x-cache")).toBe("MISS");
    expect(after.body.items[0]).toMatchObject({ enqueued: 5, completed: 3 });
    const stats = await call(fresh.key, "/analytics/cache");
    expect(stats.body).toEqual({ hits: 2, misses: 2, hitRate: 0.5 });
    const { text } = await api("GET", "/metrics", undefined, { authorization: `Bearer ${fresh.key}` });
    expect(text).toMatch(/^edgeq_analytics_cache_hits_total 2$/m);
    expect(text).toMatch(/^edgeq_analytics_cache_misses_total 2$/m);
  });

  it("a shard's history flush moves its tenant's analytics version (KV), and no other tenant's", async () => {
    const tenant = `an-${crypto.randomUUID().slice(0, 8)}`;
    const admin = await tenantApi(tenant);
    const other = await env.CACHE.get(analyticsVersionKey(t.tenant));
    expect(await env.CACHE.get(analyticsVersionKey(tenant))).toBeNull();
    await admin("POST", "/api/v1/queues/v/tasks", { name: "x" });
    await flushHistory("v", 0, tenant);
    expect(await env.CACHE.get(analyticsVersionKey(tenant))).toBe("1");
    expect(await env.CACHE.get(analyticsVersionKey(t.tenant))).toBe(other);
  });

  it("tenants never share analytics, cache entries or counters", async () => {
    const other = await api("POST", "/api/v1/keys", { tenant: `an-${crypto.randomUUID().slice(0, 8)}`, role: "read-only", name: "other" });
    const key = other.body.key as string;
    const path = `/analytics/trends?bucket=hour&from=${new Date(D).toISOString()}&to=${new Date(D + 2 * HOUR).toISOString()}`;
    await call(t.key, path); // cached for t's tenant
    const res = await call(key, path);
    expect(res.headers.get("x-cache")).toBe("MISS");
    expect(res.body.items.map((i: { enqueued: number }) => i.enqueued)).toEqual([0, 0]);
    const dist = await call(key, `/analytics/distributions?from=${new Date(D).toISOString()}&to=${new Date(D + 2 * HOUR).toISOString()}`);
    expect(dist.body.total).toBe(0);
    expect((await call(key, "/analytics/cache")).body).toEqual({ hits: 0, misses: 2, hitRate: 0 });
  });

  it("performance: depth and oldest pending from the shards, the last hour's rates from the rollups, worker utilisation", async () => {
    const tenant = `an-${crypto.randomUUID().slice(0, 8)}`;
    const admin = await tenantApi(tenant);
    const made = (
      await admin("POST", "/api/v1/queues/p/tasks/batch", {
        // c's retry waits an hour, so the two reads of depth below cannot fall either side of it.
        tasks: [
          { name: "a", maxAttempts: 1 },
          { name: "b" },
          { name: "c", maxAttempts: 2, backoff: { baseMs: 3_600_000, factor: 2, maxMs: 7_200_000 } },
          { name: "d" },
        ],
      })
    ).body.tasks;
    const leases = (await admin("POST", "/api/v1/queues/p/leases", { workerId: "w", max: 3 })).body.leases as {
      task: { id: string };
      leaseToken: string;
    }[];
    const lease = (id: string) => leases.find((l) => l.task.id === id)!.leaseToken;
    expect((await admin("POST", `/api/v1/tasks/${made[1].id}/complete`, { leaseToken: lease(made[1].id) })).status).toBe(200);
    expect(
      (await admin("POST", `/api/v1/tasks/${made[0].id}/fail`, { leaseToken: lease(made[0].id), error: { message: "no" } })).status,
    ).toBe(200); // its only attempt: a dead letter
    expect(
      (await admin("POST", `/api/v1/tasks/${made[2].id}/fail`, { leaseToken: lease(made[2].id), error: { message: "again" } })).status,
    ).toBe(200); // retried
    await flushHistory("p", 0, tenant);
    // A worker registered 10 s ago with concurrency 2 that reports 5 s busy: 5 / (10 × 2).
    const now = Date.now();
    const registry = registryOf(env, tenant);
    await registry.registerWorker("w_00000000000000aa", "one", ["p"], 2, now - 10_000);
    await registry.workerHeartbeat("w_00000000000000aa", { currentTasks: [], completed: 1, failed: 0, busyMs: 5_000 }, now);
    const key = (await api("POST", "/api/v1/keys", { tenant, role: "read-only", name: "perf" })).body.key as string;
    const res = await call(key, "/analytics/performance?queue=p");
    expect(res.status).toBe(200);
    const [q] = res.body.queues;
    const stats = (await admin("GET", "/api/v1/queues/p")).body;
    expect(q.depth).toEqual(stats.counts);
    expect(q.depth).toMatchObject({ completed: 1, failed: 1 });
    expect(q.oldestPendingMs).toBeGreaterThanOrEqual(0);
    expect(q.oldestPendingMs).toBeLessThan(60_000);
    // Last hour: 1 completed, 1 failed for good, 1 retry.
    expect(q.failureRate).toBeCloseTo(2 / 3, 10);
    expect(q.retryRate).toBe(0.5);
    expect(q.deadLetterRate).toBe(0.5);
    expect(q.throughput.lastHour).toBeGreaterThan(2 / 3_660);
    expect(q.throughput.lastHour).toBeLessThanOrEqual(2 / 3_600);
    expect(q.throughput.lastMinute).toBeGreaterThan(0);
    expect(res.body.workers).toMatchObject({
      active: 0,
      idle: 1,
      lost: 0,
      utilisation: 0.25,
      items: [{ id: "w_00000000000000aa", status: "idle", utilisation: 0.25, busyMs: 5_000 }],
    });
    expect((await call(key, "/analytics/performance?queue=nope")).status).toBe(404);
  });

  it("bad ranges and buckets: 400 naming the parameter, never a 500", async () => {
    const backwards = await call(t.key, `/analytics/trends?from=${new Date(D + HOUR).toISOString()}&to=${new Date(D).toISOString()}`);
    expect(backwards.status).toBe(400);
    expect(backwards.body.errors[0].pointer).toBe("?from");
    const tooMany = await call(
      t.key,
      `/analytics/trends?bucket=minute&from=${new Date(D).toISOString()}&to=${new Date(D + 30 * 24 * HOUR).toISOString()}`,
    );
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.errors[0].pointer).toBe("?bucket");
    const badBucket = await call(t.key, "/analytics/trends?bucket=week");
    expect(badBucket.status).toBe(400);
    const badDate = await call(t.key, "/analytics/distributions?from=yesterday");
    expect(badDate.status).toBe(400);
    const tooLong = await call(
      t.key,
      `/analytics/distributions?from=${new Date(D - 100 * 24 * HOUR).toISOString()}&to=${new Date(D).toISOString()}`,
    );
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors[0].pointer).toBe("?from");
  });
});

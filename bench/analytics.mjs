#!/usr/bin/env node
// `npm run bench:analytics`: analytics and reports over 1,000,000 history rows seeded through the
// flusher's own write path (so the rollups are the ones shards write). Three parts, printed as one
// table and appended to docs/BENCHMARKS.md:
//   1. an hourly week-long trend from the rollups vs the same from the task rows (D1 directly);
//   2. each analytics endpoint over HTTP, computed (x-cache MISS) and from KV (HIT), p50 / p95;
//   3. a CSV report of every row: rows/s at the client and workerd's peak memory while it streams.
// Loopback only; bounded (BENCH_ANALYTICS_ROWS, BENCH_ANALYTICS_SAMPLES).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrateD1 } from "../scripts/migrate-d1.mjs";
import { openD1, QUEUES, seedHistory } from "./seed.mjs";
import { ADMIN_TOKEN, call, fmt, inspector, percentile, report, sleep, startStack, workerdRssMiB } from "./harness.mjs";

const ROWS = Number(process.env.BENCH_ANALYTICS_ROWS ?? 1_000_000);
const SAMPLES = Number(process.env.BENCH_ANALYTICS_SAMPLES ?? 20);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95) };
};
const pair = (m) => `${fmt(m.p50, 1)} / ${fmt(m.p95, 1)}`;

/** The week's hourly trend both ways, timed on D1 itself: from the rollups, and from the task rows. */
async function rollupsVsRows(state, now) {
  const { mf, db } = await openD1(state);
  const from = Math.floor((now - 7 * DAY) / HOUR) * HOUR;
  const to = Math.ceil(now / HOUR) * HOUR;
  const viaRollups = () =>
    db.batch([
      db
        .prepare(
          "SELECT at, sum(enqueued) AS e, sum(completed) AS c, sum(failed) AS f FROM rollups WHERE tenant = 'default' AND res = 'h' AND at >= ?1 AND at < ?2 GROUP BY at",
        )
        .bind(from, to),
      db
        .prepare(
          "SELECT at, kind = 'wait' AS w, bin, sum(n) AS n FROM rollup_hist WHERE tenant = 'default' AND res = 'h' AND at >= ?1 AND at < ?2 GROUP BY at, kind, bin",
        )
        .bind(from, to),
    ]);
  // The same answer from `tasks`: finishes by the finished index, creations by the primary key, times binned per row.
  const bin = (col) => `(SELECT bin FROM hist_bins WHERE lo <= max(0, ${col}) ORDER BY lo DESC LIMIT 1)`;
  const viaRows = () =>
    db.batch([
      db
        .prepare(
          "SELECT (finished_at / 3600000) * 3600000 AS at, sum(status = 'completed') AS c, sum(status = 'failed') AS f FROM tasks INDEXED BY tasks_finished WHERE tenant = 'default' AND finished_at >= ?1 AND finished_at < ?2 GROUP BY 1",
        )
        .bind(from, to),
      db
        .prepare(
          "SELECT (created_at / 3600000) * 3600000 AS at, count(*) AS e FROM tasks WHERE tenant = 'default' AND created_at >= ?1 AND created_at < ?2 GROUP BY 1",
        )
        .bind(from, to),
      db
        .prepare(
          `SELECT (finished_at / 3600000) * 3600000 AS at, ${bin("run_ms")} AS b, count(*) AS n FROM tasks INDEXED BY tasks_finished WHERE tenant = 'default' AND finished_at >= ?1 AND finished_at < ?2 AND started_at IS NOT NULL AND status IN ('completed', 'failed') GROUP BY 1, 2`,
        )
        .bind(from, to),
      db
        .prepare(
          `SELECT (finished_at / 3600000) * 3600000 AS at, ${bin("wait_ms")} AS b, count(*) AS n FROM tasks INDEXED BY tasks_finished WHERE tenant = 'default' AND finished_at >= ?1 AND finished_at < ?2 AND started_at IS NOT NULL AND status IN ('completed', 'failed') GROUP BY 1, 2`,
        )
        .bind(from, to),
    ]);
  const time = async (fn, n) => {
    await fn();
    const ms = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn();
      ms.push(performance.now() - t0);
    }
    return stats(ms);
  };
  const rollupRows = (
    await db
      .prepare(
        "SELECT (SELECT count(*) FROM rollups WHERE tenant = 'default' AND res = 'h') + (SELECT count(*) FROM rollup_hist WHERE tenant = 'default' AND res = 'h') AS n",
      )
      .first()
  ).n;
  const out = { rollups: await time(viaRollups, 10), rows: await time(viaRows, 3), rollupRows };
  await mf.dispose();
  return out;
}

/** One GET, timed at the client; the x-cache it answered with. */
async function get(base, path) {
  const t0 = performance.now();
  const res = await fetch(new URL(path, base), {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(process.env.BENCH_IDENTITY ? { "accept-encoding": "identity" } : {}) },
  });
  await res.text();
  if (!res.ok) throw new Error(`GET ${path} → ${res.status}`);
  if (process.env.BENCH_TIMING)
    console.error(res.headers.get("x-cache"), (performance.now() - t0).toFixed(1), res.headers.get("server-timing"));
  return { ms: performance.now() - t0, cache: res.headers.get("x-cache") };
}

/** Misses (each path asked once: a new key) and hits (one path asked again), checked by x-cache. */
async function missAndHit(base, paths) {
  const miss = [];
  for (const p of paths) {
    const r = await get(base, p);
    if (r.cache !== "MISS") throw new Error(`expected a miss for ${p}, got ${r.cache}`);
    miss.push(r.ms);
  }
  await sleep(200); // the cache write happens after the answer
  const hit = [];
  let reprimed = false;
  for (let i = 0; i < SAMPLES; i++) {
    const r = await get(base, paths[0]);
    if (r.cache !== "HIT" && !reprimed) {
      // A key that moved on its own (performance keys carry the minute): ask it once more, then it holds.
      reprimed = true;
      i--;
      await sleep(200);
      continue;
    }
    if (r.cache !== "HIT") throw new Error(`expected a hit for ${paths[0]}, got ${r.cache}`);
    hit.push(r.ms);
  }
  return { miss: stats(miss), hit: stats(hit) };
}

/** The Worker isolate's JS heap in use (MiB), asked of workerd's inspector. */
async function heapProbe() {
  const cdp = await inspector();
  return { used: async () => (await cdp.send("Runtime.getHeapUsage")).usedSize / 1048576, close: () => cdp.close() };
}

/** Streams a CSV of at most `limit` rows; rows/s at the client, and workerd's resident memory and the Worker's JS heap, before and at peak. */
async function exportAll(base, limit, heap) {
  const before = workerdRssMiB();
  const heapBefore = await heap.used();
  let peak = before;
  let heapPeak = heapBefore;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, workerdRssMiB());
      heapPeak = Math.max(heapPeak, await heap.used());
      await sleep(50);
    }
  })();
  const t0 = performance.now();
  const res = await fetch(new URL("/api/v1/reports", base), {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({
      fields: ["id", "queue", "name", "status", "priority", "createdAt", "finishedAt", "runMs"],
      format: "csv",
      limit,
    }),
  });
  let lines = 0;
  let firstByteMs = null;
  for await (const chunk of res.body) {
    firstByteMs ??= performance.now() - t0;
    for (const b of chunk) if (b === 10) lines++;
  }
  const seconds = (performance.now() - t0) / 1000;
  sampling = false;
  await sampler;
  return { rows: lines - 1, seconds, firstByteMs, before, peak, heapBefore, heapPeak };
}

const state = mkdtempSync(join(tmpdir(), "edgeq-analytics-"));
const now = Date.now();
try {
  migrateD1(state);
  const seedSeconds = await seedHistory(state, now, ROWS);
  const direct = await rollupsVsRows(state, now);
  const { base, stop } = await startStack({ port: 8798, state, inspect: true });
  try {
    for (const q of QUEUES) await call(base, "POST", `/api/v1/queues/${q}/tasks`, { name: "live" }); // the queues exist for /performance
    await sleep(2_500); // their history flushed: the data version holds still while measuring
    const iso = (t) => new Date(t).toISOString();
    const week = await missAndHit(
      base,
      Array.from(
        { length: SAMPLES },
        (_, k) => `/api/v1/analytics/trends?bucket=hour&from=${iso(now - 7 * DAY - k * HOUR)}&to=${iso(now)}`,
      ),
    );
    const day = await missAndHit(
      base,
      Array.from(
        { length: SAMPLES },
        (_, k) => `/api/v1/analytics/trends?bucket=minute&from=${iso(now - DAY - k * 60_000)}&to=${iso(now)}`,
      ),
    );
    const dist = await missAndHit(
      base,
      Array.from(
        { length: Math.min(SAMPLES, 10) },
        (_, k) => `/api/v1/analytics/distributions?from=${iso(now - 8 * DAY)}&to=${iso(now + k * 60_000)}`,
      ),
    );
    const perf = await missAndHit(base, [
      "/api/v1/analytics/performance",
      ...QUEUES.map((q) => `/api/v1/analytics/performance?queue=${q}`),
    ]);
    // The first export reads the whole database into memory-mapped pages (resident, not the Worker's);
    // the two after it show what streaming itself holds: a tenth of the rows, then all of them.
    const heap = await heapProbe();
    const exp = await exportAll(base, ROWS, heap);
    const tenth = await exportAll(base, Math.ceil(ROWS / 10), heap);
    const all = await exportAll(base, ROWS, heap);
    heap.close();
    const rows = [
      [`history rows seeded (through the flusher's write path, rollups included)`, fmt(ROWS)],
      ["seeding rate (rows/s)", fmt(ROWS / seedSeconds)],
      ["hourly rollup rows (counts and bins) behind a week's trend", fmt(direct.rollupRows)],
      ["week-long hourly trend on D1, from the rollups: p50 / p95 (ms)", pair(direct.rollups)],
      ["the same from the task rows (indexes, bins per row): p50 / p95 (ms)", pair(direct.rows)],
      ["GET trends, hour × 7 days, computed (MISS): p50 / p95 (ms)", pair(week.miss)],
      ["GET trends, hour × 7 days, from KV (HIT): p50 / p95 (ms)", pair(week.hit)],
      ["GET trends, minute × 1 day (1,440 buckets), MISS: p50 / p95 (ms)", pair(day.miss)],
      ["GET trends, minute × 1 day, HIT: p50 / p95 (ms)", pair(day.hit)],
      [`GET distributions, 8 days (${fmt(ROWS)} rows), MISS: p50 / p95 (ms)`, pair(dist.miss)],
      ["GET distributions, HIT: p50 / p95 (ms)", pair(dist.hit)],
      ["GET performance (5 queues), MISS: p50 / p95 (ms)", pair(perf.miss)],
      ["GET performance, HIT: p50 / p95 (ms)", pair(perf.hit)],
      [`report: CSV of ${fmt(exp.rows)} rows, 8 fields (rows/s at the client)`, fmt(exp.rows / exp.seconds)],
      ["report: first byte after (ms)", fmt(exp.firstByteMs, 0)],
      ["report: workerd resident memory before → peak, first export (MiB)", `${fmt(exp.before, 0)} → ${fmt(exp.peak, 0)}`],
      [
        `report: the Worker's JS heap in use, peak while streaming ${fmt(tenth.rows)} rows / ${fmt(all.rows)} rows (MiB)`,
        `${fmt(tenth.heapPeak, 1)} / ${fmt(all.heapPeak, 1)}`,
      ],
      [
        `report: workerd resident memory growth, again: ${fmt(tenth.rows)} rows / ${fmt(all.rows)} rows (MiB)`,
        `${fmt(tenth.peak - tenth.before, 0)} / ${fmt(all.peak - all.before, 0)}`,
      ],
    ];
    report(`Analytics and reports over ${fmt(ROWS)} history rows (npm run bench:analytics)`, rows, [
      "Over HTTP against the local stack (API Worker → local D1 and KV), one request at a time; a MISS is a query not asked before (a new cache key), a HIT the same query asked again.",
      "The rollups-vs-rows pair runs the two ways of answering the same hourly trend on the D1 database directly (Miniflare), 10 and 3 runs after a warm-up.",
      "Memory: the Worker's JS heap in use is asked of workerd's inspector every 50 ms (V8's used size: garbage not yet collected counts); resident memory includes D1's pages of the database, mapped by the first export.",
      "Seed: as the history benchmark's (created over 7 days; 85% completed, 5% failed, 3% cancelled, the rest live), all in one tenant.",
    ]);
  } finally {
    stop();
  }
} finally {
  rmSync(state, { recursive: true, force: true });
}

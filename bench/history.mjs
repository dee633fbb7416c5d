#!/usr/bin/env node
// `npm run bench:history`: task history in D1 on the local stack. Two parts, each printed as a
// table and appended to docs/BENCHMARKS.md:
//   1. the flusher under the engine at full speed (HTTP, the local stack): throughput with history on
//      and off, the lag, D1 and SQLite rows written per task, shard bytes per retained task;
//   2. search over 1,000,000 history rows seeded in bulk through the flusher's own write path.
// Loopback only; bounded (BENCH_HISTORY_ROWS, BENCH_E2E_TASKS).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrateD1 } from "../scripts/migrate-d1.mjs";
import { QUEUES, seedHistory, WORDS } from "./seed.mjs";
import { batchEnqueue, call, CONSUMERS, endToEnd, fmt, percentile, pool, report, sleep, startStack, tasksOf } from "./harness.mjs";

const E2E_TASKS = Number(process.env.BENCH_E2E_TASKS ?? 20_000);
const ROWS = Number(process.env.BENCH_HISTORY_ROWS ?? 1_000_000);
const SAMPLES = Number(process.env.BENCH_SEARCH_SAMPLES ?? 60);
const DAY = 86_400_000;

const shardSums = async (base, queue) => {
  const { shards } = await call(base, "GET", `/api/v1/queues/${queue}`);
  const sum = (f) => shards.reduce((a, s) => a + f(s), 0);
  return {
    rowsWritten: sum((s) => s.rowsWritten),
    d1Rows: sum((s) => s.history.rowsWritten),
    events: sum((s) => s.history.events),
    prepareMs: sum((s) => s.history.prepareMs),
    writeMs: sum((s) => s.history.writeMs),
    bytes: sum((s) => s.storageBytes),
    waitingSince:
      shards
        .map((s) => s.history.waitingSince)
        .filter(Boolean)
        .sort()[0] ?? null,
  };
};

/** Samples the history lag (age of the oldest event waiting in the queue's shards) until stopped. */
function watchLag(base, queue) {
  let max = 0;
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const s = await shardSums(base, queue);
      if (s.waitingSince) max = Math.max(max, Date.now() - Date.parse(s.waitingSince));
      await sleep(200);
    }
  })();
  return async () => {
    stop = true;
    await done;
    return max;
  };
}

/** Producer and consumers at once: `total` tasks flow through as they would in a steady service. */
async function steadyFlow(base, queue, total) {
  const t0 = performance.now();
  const producer = pool(Math.ceil(total / 100), 2, async (i) => {
    await call(base, "POST", `/api/v1/queues/${queue}/tasks/batch`, { tasks: tasksOf(100, i * 100) });
  });
  const consumers = endToEnd(base, queue, total);
  await Promise.all([producer, consumers]);
  return total / ((performance.now() - t0) / 1000);
}

async function flusherPart() {
  const rows = [];
  const notes = [];
  const runs = {};
  for (const history of ["on", "off"]) {
    const { base, stop } = await startStack({ port: 8797, vars: history === "off" ? { EDGEQ_HISTORY: "off" } : {} });
    try {
      await batchEnqueue(base, "warm", 2_000, 4);
      await endToEnd(base, "warm", 2_000);
      // Backlog: enqueue everything, then drain it (the engine benchmark's shape).
      const q = "backlog";
      await call(base, "POST", `/api/v1/queues/${q}/tasks`, { name: "create" });
      await endToEnd(base, q, 1);
      const before = await shardSums(base, q);
      const lag = watchLag(base, q);
      const t0 = performance.now();
      await batchEnqueue(base, q, E2E_TASKS, 4);
      const e2e = await endToEnd(base, q, E2E_TASKS);
      const loadSeconds = (performance.now() - t0) / 1000;
      const maxLag = await lag();
      const t1 = performance.now();
      let after = await shardSums(base, q);
      while (history === "on" && after.waitingSince) {
        await sleep(100);
        after = await shardSums(base, q);
      }
      const drain = (performance.now() - t1) / 1000;
      // Steady flow: producer and consumers at once.
      const s = "steady";
      await call(base, "POST", `/api/v1/queues/${s}/tasks`, { name: "create" });
      await endToEnd(base, s, 1);
      await sleep(1500);
      const sBefore = await shardSums(base, s);
      const steadyRate = await steadyFlow(base, s, E2E_TASKS);
      let sAfter = await shardSums(base, s);
      while (history === "on" && sAfter.waitingSince) {
        await sleep(100);
        sAfter = await shardSums(base, s);
      }
      runs[history] = {
        e2e: e2e.rate,
        steady: steadyRate,
        maxLag,
        drain,
        flushRate: (after.events - before.events) / (loadSeconds + drain),
        eventRate: (after.events - before.events) / loadSeconds,
        d1PerTask: (after.d1Rows - before.d1Rows) / E2E_TASKS,
        d1PerTaskSteady: (sAfter.d1Rows - sBefore.d1Rows) / E2E_TASKS,
        shardPerTask: (after.rowsWritten - before.rowsWritten) / E2E_TASKS,
        bytesPerTask: after.bytes / (E2E_TASKS + 1),
        prepareUs: ((after.prepareMs - before.prepareMs) * 1000) / E2E_TASKS,
        writeUs: ((after.writeMs - before.writeMs) * 1000) / E2E_TASKS,
        engineUs: 1e6 / e2e.rate,
      };
    } finally {
      stop();
    }
  }
  const on = runs.on;
  const off = runs.off;
  rows.push(
    [`end-to-end, backlog of ${fmt(E2E_TASKS)}, ${CONSUMERS} consumers x 100, history on (tasks/s)`, fmt(on.e2e)],
    ["same, history off (tasks/s)", fmt(off.e2e)],
    ["history on vs off, backlog (%)", fmt((on.e2e / off.e2e - 1) * 100, 1)],
    [`steady flow (producer and consumers at once), history on (tasks/s)`, fmt(on.steady)],
    ["same, history off (tasks/s)", fmt(off.steady)],
    ["history on vs off, steady (%)", fmt((on.steady / off.steady - 1) * 100, 1)],
    ["events the engine wrote during the backlog run (events/s)", fmt(on.eventRate)],
    ["events the flusher sent to D1, run + drain (events/s)", fmt(on.flushRate)],
    ["shard time preparing history per task, backlog (µs)", fmt(on.prepareUs, 1)],
    ["D1 time writing history per task, backlog (µs; same thread as the engine here)", fmt(on.writeUs, 1)],
    ["end-to-end time per task with history off (µs)", fmt(1e6 / off.e2e, 1)],
    ["largest history lag seen during the run (s)", fmt(on.maxLag / 1000, 1)],
    ["history caught up after the last completion (s)", fmt(on.drain, 1)],
    ["D1 rows written per task, backlog (enqueue→lease→complete)", fmt(on.d1PerTask, 2)],
    ["D1 rows written per task, steady flow", fmt(on.d1PerTaskSteady, 2)],
    ["shard SQLite rows written per task, history on (outbox deletes included)", fmt(on.shardPerTask, 2)],
    ["shard SQLite rows written per task, history off", fmt(off.shardPerTask, 2)],
    ["shard bytes per retained task, history on (outbox drained)", fmt(on.bytesPerTask, 0)],
    ["shard bytes per retained task, history off (outbox kept)", fmt(off.bytesPerTask, 0)],
  );
  notes.push(
    "Backlog: all tasks enqueued first, then drained; a task's life spans several flushes, so it is written to D1 several times. Steady flow: tasks finish within a flush of being made, and coalesce to one write (6 rows).",
    "Bytes per retained task: the shard's SQLite size over the completed tasks it keeps (7 days by default); bench payloads are ~10 bytes.",
    "History on vs off: one workerd process serves the Worker, the shard and D1 on 2 cores, so the flusher's D1 work competes with the engine here; at the edge D1 runs elsewhere.",
  );
  report("Task history: the flusher under load (npm run bench:history)", rows, notes);
}

// ------------------------------------------------------------------ search over 1M rows

async function timed(base, path) {
  const t0 = performance.now();
  const res = await call(base, "GET", path);
  return { ms: performance.now() - t0, res };
}

async function searchPart() {
  const state = mkdtempSync(join(tmpdir(), "edgeq-history-"));
  const now = Date.now();
  try {
    migrateD1(state);
    const seedSeconds = await seedHistory(state, now, ROWS);
    const { base, stop } = await startStack({ port: 8796, state });
    try {
      const measure = async (paths) => {
        for (const p of paths.slice(0, 5)) await call(base, "GET", p); // warm
        const ms = [];
        let rows = 0;
        for (const p of paths) {
          const r = await timed(base, p);
          ms.push(r.ms);
          rows += r.res.items.length;
        }
        ms.sort((a, b) => a - b);
        return { p50: percentile(ms, 50), p95: percentile(ms, 95), rows: rows / paths.length };
      };
      const pick = (k) => Math.floor((((k * 7919) % 1000) / 1000) * ROWS);
      const since = new Date(now - 3 * DAY).toISOString();
      const cases = [];
      cases.push([
        "text only: one customer's email (phrase)",
        Array.from({ length: SAMPLES }, (_, k) => `/api/v1/tasks?q=${encodeURIComponent(`"user${pick(k)}@example.com"`)}`),
      ]);
      cases.push(["text only: an order id", Array.from({ length: SAMPLES }, (_, k) => `/api/v1/tasks?q=${100000 + pick(k)}`)]);
      cases.push([
        "text + status + date range",
        Array.from(
          { length: SAMPLES },
          (_, k) => `/api/v1/tasks?q=${encodeURIComponent(`user${pick(k)}@example.com`)}&status=completed,failed&createdFrom=${since}`,
        ),
      ]);
      cases.push([
        "status + priority sort, first page",
        Array.from({ length: SAMPLES }, (_, k) => `/api/v1/tasks?status=${k % 2 ? "completed" : "failed"}&sort=-priority&limit=50`),
      ]);
      // Deep cursor: follow 40 pages, measure each.
      const deep = [];
      let cursor = null;
      for (let page = 0; page < 40; page++) {
        const r = await timed(base, `/api/v1/tasks?status=completed&sort=-priority&limit=50${cursor ? `&cursor=${cursor}` : ""}`);
        deep.push(r.ms);
        cursor = r.res.nextCursor;
      }
      deep.sort((a, b) => a - b);
      cases.push([
        "status + creation order (failed), first page",
        Array.from({ length: SAMPLES }, () => "/api/v1/tasks?status=failed&limit=50"),
      ]);
      cases.push(["newest first, no filter", Array.from({ length: SAMPLES }, () => "/api/v1/tasks?limit=50")]);
      cases.push([
        "queue + finished range, by finish time",
        Array.from({ length: SAMPLES }, (_, k) => `/api/v1/tasks?queue=${QUEUES[k % 5]}&sort=-finished&finishedFrom=${since}&limit=50`),
      ]);
      cases.push([
        "text matching 10% of rows (a template word), newest 50",
        Array.from({ length: 10 }, (_, k) => `/api/v1/tasks?q=${WORDS[k % WORDS.length]}&limit=50`),
      ]);
      const rows = [
        [`rows seeded (through the flusher's write path)`, fmt(ROWS)],
        ["seeding rate (rows/s)", fmt(ROWS / seedSeconds)],
      ];
      for (const [name, paths] of cases) {
        const m = await measure(paths);
        rows.push([`${name}: p50 / p95 (ms)`, `${fmt(m.p50, 1)} / ${fmt(m.p95, 1)}`]);
      }
      rows.splice(6, 0, [
        "status + priority sort, pages 1–40 via the cursor: p50 / p95 (ms)",
        `${fmt(percentile(deep, 50), 1)} / ${fmt(percentile(deep, 95), 1)}`,
      ]);
      report(`Task history: search over ${fmt(ROWS)} rows (npm run bench:history)`, rows, [
        "Timed over HTTP against the local stack (API Worker → local D1), one request at a time, after 5 warm-up requests per case.",
        "Seed: 85% completed, 5% failed, 3% cancelled, 4% pending, 2% scheduled, 1% running; priorities 1–10; created over 7 days; payload {to, template, orderId, region, amount}.",
      ]);
    } finally {
      stop();
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}

const part = process.argv[2];
if (part !== "search") await flusherPart();
if (part !== "flusher") await searchPart();

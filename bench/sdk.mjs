#!/usr/bin/env node
// The SDK end to end (`npm run bench`): N producers calling addBulk, M `Worker`s with
// concurrency C running a no-op handler, all in this process over the SDK's own fetch.
// Prints a table and appends it to docs/BENCHMARKS.md. Bounded; loopback only.
//   BENCH_SDK_TASKS=10000 BENCH_SDK_PRODUCERS=2 BENCH_SDK_WORKERS=4 BENCH_SDK_CONCURRENCY=100 node bench/sdk.mjs
import { EdgeqClient } from "edgeq/client";
import { Worker } from "edgeq/consumer";
import { ADMIN_TOKEN, fmt, percentile, report, sleep, spacedSamples, startStack } from "./harness.mjs";

const TASKS = Number(process.env.BENCH_SDK_TASKS ?? 10_000);
const PRODUCERS = Number(process.env.BENCH_SDK_PRODUCERS ?? 2);
const WORKERS = Number(process.env.BENCH_SDK_WORKERS ?? 4);
const CONCURRENCY = Number(process.env.BENCH_SDK_CONCURRENCY ?? 100);
const SAMPLES = Number(process.env.BENCH_SDK_SAMPLES ?? 200);

/** Starts M workers on `queue`; `onStart(task)` runs as each handler begins. */
function startWorkers(edgeq, queue, onStart) {
  const workers = Array.from(
    { length: WORKERS },
    () => new Worker(edgeq, queue, (task) => onStart(task), { concurrency: CONCURRENCY, waitMs: 5000 }),
  );
  for (const w of workers) w.on("error", (e) => console.error("worker error:", e.message));
  const running = workers.map((w) => w.run());
  return {
    workers,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(running);
    },
  };
}

/** Producers and workers at once: tasks/s from the first add to the last accepted completion. */
async function throughput(edgeq) {
  const queue = edgeq.queue("bench-sdk");
  const startDelays = [];
  let completed = 0;
  let allDone;
  const finished = new Promise((r) => (allDone = r));
  const pool = startWorkers(edgeq, queue.name, (task) => {
    startDelays.push(Date.now() - Date.parse(task.createdAt));
  });
  for (const w of pool.workers)
    w.on("completed", () => {
      if (++completed === TASKS) allDone();
    });
  await Promise.all(pool.workers.map((w) => w.id));
  const t0 = performance.now();
  const share = Math.ceil(TASKS / PRODUCERS);
  await Promise.all(
    Array.from({ length: PRODUCERS }, (_, p) => {
      const n = Math.min(share, TASKS - p * share);
      const tasks = Array.from({ length: n }, (_, i) => ({ name: "noop", payload: { p, i } }));
      return queue.addBulk(tasks, { chunkSize: 100 });
    }),
  );
  const enqueued = performance.now();
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();
  startDelays.sort((a, b) => a - b);
  return { rate: TASKS / seconds, enqueueRate: TASKS / ((enqueued - t0) / 1000), startDelays };
}

/** Idle workers; one task added at a time, as in the raw latency row: from calling add() to its handler starting. */
async function idleLatency(edgeq) {
  const queue = edgeq.queue("bench-sdk-latency");
  let started;
  const pool = startWorkers(edgeq, queue.name, () => started?.());
  await Promise.all(pool.workers.map((w) => w.id));
  await sleep(300); // every worker is waiting in its long poll
  const samples = await spacedSamples(SAMPLES, async (i) => {
    const begun = new Promise((r) => (started = r));
    await queue.add("ping", { i });
    await begun;
  });
  await pool.close();
  return samples;
}

const stack = await startStack({ port: 8797 });
try {
  const edgeq = new EdgeqClient({ url: stack.base, token: ADMIN_TOKEN });
  const run = await throughput(edgeq);
  const idle = await idleLatency(edgeq);
  report(
    "SDK end to end (npm run bench)",
    [
      [
        `tasks/s, ${fmt(TASKS)} no-op tasks, ${PRODUCERS} producers (addBulk), ${WORKERS} workers x concurrency ${CONCURRENCY}`,
        fmt(run.rate),
      ],
      ["addBulk rate while the workers run (tasks/s)", fmt(run.enqueueRate)],
      ["enqueue→handler start under that load, p50 (ms)", fmt(percentile(run.startDelays, 50), 0)],
      ["enqueue→handler start under that load, p99 (ms)", fmt(percentile(run.startDelays, 99), 0)],
      ["add() call→handler start, idle workers, p50 (ms)", fmt(percentile(idle, 50), 1)],
      ["add() call→handler start, idle workers, p99 (ms)", fmt(percentile(idle, 99), 1)],
    ],
    [
      "Producers and workers share this process (and its 2 cores) with workerd; the SDK uses the runtime's fetch, as users' code does.",
      "When tasks/s equals the addBulk rate, the workers kept up and the producers were the limit; the start delay under load is from the task's creation in its shard to its handler starting.",
      "Compare with the queue-engine table, whose client is node:http with keep-alive (about half the client CPU of fetch) and has no SDK in between.",
    ],
  );
} finally {
  stack.stop();
}

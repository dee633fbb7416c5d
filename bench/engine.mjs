#!/usr/bin/env node
// `npm run bench`: the queue engine through the HTTP API on the local stack.
// Prints a table and appends it to docs/BENCHMARKS.md. Bounded: ~45k tasks, loopback only.
import {
  batchEnqueue,
  call,
  CONSUMERS,
  endToEnd,
  endToEndSockets,
  fmt,
  percentile,
  report,
  shardTotals,
  singleEnqueue,
  sleep,
  startStack,
  workerdRssMiB,
} from "./harness.mjs";

const E2E_TASKS = Number(process.env.BENCH_E2E_TASKS ?? 20_000);
const BATCH_TASKS = Number(process.env.BENCH_BATCH_TASKS ?? 20_000);
const SINGLE_TASKS = Number(process.env.BENCH_SINGLE_TASKS ?? 2_000);
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 200);

/** One long-polling consumer; a producer enqueues one task at a time into the idle queue. */
async function latency(base, queue, samples) {
  const sentAt = new Map();
  const latencies = [];
  let stop = false;
  const consumer = (async () => {
    while (!stop) {
      const { leases } = await call(base, "POST", `/api/v1/queues/${queue}/leases`, { workerId: "lat", max: 1, waitMs: 2000 });
      const now = performance.now();
      for (const l of leases) {
        if (sentAt.has(l.task.payload?.n)) latencies.push(now - sentAt.get(l.task.payload.n));
        await call(base, "POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken });
      }
    }
  })();
  await call(base, "POST", `/api/v1/queues/${queue}/tasks`, { name: "warm" });
  await sleep(200);
  latencies.length = 0;
  for (let i = 0; i < samples; i++) {
    sentAt.set(i, performance.now());
    await call(base, "POST", `/api/v1/queues/${queue}/tasks`, { name: "lat", payload: { n: i } });
    await sleep(15);
  }
  while (latencies.length < samples) await sleep(10);
  stop = true;
  await consumer;
  return latencies.sort((a, b) => a - b);
}

const { base, stop } = await startStack();
try {
  // Warm-up: compile paths and create the objects before timing anything.
  await batchEnqueue(base, "bench-warm", 2_000, 4);
  await endToEnd(base, "bench-warm", 2_000);

  const batchRate = await batchEnqueue(base, "bench-batch", BATCH_TASKS, 4);
  const singleRate = await singleEnqueue(base, "bench-single", SINGLE_TASKS, 8);

  await call(base, "POST", "/api/v1/queues/bench-e2e/tasks", { name: "create" });
  await endToEnd(base, "bench-e2e", 1);
  const before = await shardTotals(base, "bench-e2e");
  await batchEnqueue(base, "bench-e2e", E2E_TASKS, 4);
  const e2e = await endToEnd(base, "bench-e2e", E2E_TASKS);
  const after = await shardTotals(base, "bench-e2e");
  const rowsPerTask = (after.rowsWritten - before.rowsWritten) / E2E_TASKS;
  const requestsPerTask = (after.requests - before.requests - after.shards) / E2E_TASKS; // minus the stats call itself

  // Steady flow: consumer sockets wait with credit while the tasks are enqueued (each enqueue hands
  // its tasks to them in its own transaction), rather than drain a backlog.
  await call(base, "POST", "/api/v1/queues/bench-flow/tasks", { name: "create" });
  await endToEndSockets(base, "bench-flow", 1);
  const flowBefore = await shardTotals(base, "bench-flow");
  const draining = endToEndSockets(base, "bench-flow", E2E_TASKS);
  await sleep(300); // the sockets are open and have granted their credit
  const flowStarted = performance.now();
  await batchEnqueue(base, "bench-flow", E2E_TASKS, 1);
  await draining;
  const flowRate = E2E_TASKS / ((performance.now() - flowStarted) / 1000);
  const flowAfter = await shardTotals(base, "bench-flow");
  const flowRowsPerTask = (flowAfter.rowsWritten - flowBefore.rowsWritten) / E2E_TASKS;

  const lat = await latency(base, "bench-latency", LATENCY_SAMPLES);
  const rss = workerdRssMiB();

  // List prices: rows written $1.00/M, DO requests $0.15/M; Cloudflare Queues $0.40/M operations, 3 per message.
  const costPerMillion = rowsPerTask * 1.0 + requestsPerTask * 0.15;
  report(
    "Queue engine (npm run bench)",
    [
      ["batch enqueue, 100 per call, 4 callers (tasks/s)", fmt(batchRate)],
      ["single enqueue, 8 callers (tasks/s)", fmt(singleRate)],
      [`end-to-end, ${fmt(E2E_TASKS)} tasks, ${CONSUMERS} consumers x 100 (tasks/s)`, fmt(e2e.rate)],
      ["enqueue→lease latency p50, idle long-poll (ms)", fmt(percentile(lat, 50), 1)],
      ["enqueue→lease latency p99, idle long-poll (ms)", fmt(percentile(lat, 99), 1)],
      ["DO requests per task, batched path", fmt(requestsPerTask, 3)],
      ["SQLite rows written per task (enqueue→lease→complete)", fmt(rowsPerTask, 2)],
      [
        `steady flow: ${fmt(E2E_TASKS)} tasks enqueued 100 per call by one caller while ${CONSUMERS} consumer sockets wait (tasks/s)`,
        fmt(flowRate),
      ],
      ["SQLite rows written per task, steady flow (enqueue→lease→complete)", fmt(flowRowsPerTask, 2)],
      ["list-price cost per million tasks, edgeq ($)", fmt(costPerMillion, 2)],
      ["list-price cost per million messages, Cloudflare Queues ($)", fmt(3 * 0.4, 2)],
      ["workerd RSS after the run, the API's and local D1's processes (MiB)", fmt(rss, 0)],
    ],
    [
      "One shard per queue (the default). On 2 cores every shard shares one workerd process, so adding shards cannot raise these numbers here.",
      "Cost counts rows written ($1.00/M) and DO requests ($0.15/M) at list price, over the backlog's end to end; DO duration and Worker requests are not included.",
      "Rows written per task: a backlog (enqueued first, then drained by 4 HTTP consumers) and a steady flow (4 consumer sockets with 100 credit each already waiting: each enqueue leases its tasks to them in its own transaction, so a task is written once as running, not as pending and then as running).",
    ],
  );
} finally {
  stop();
}

#!/usr/bin/env node
// `npm run bench:shards`: does the local runtime run a queue's shards in parallel? One queue per
// shard count (1, 2, 4, 8), the engine's shapes on each (batch enqueue of 100 per call by 4 callers,
// then 4 consumers × 100 end to end), with the CPU workerd used meanwhile (from /proc, in cores).
// Appends the table to docs/BENCHMARKS.md. Loopback only; bounded (BENCH_SHARDS_TASKS per count).
import { stackProcesses } from "../scripts/api-process.mjs";
import { batchEnqueue, call, cpuSeconds, endToEnd, fmt, report, STACK, startStack } from "./harness.mjs";

const TASKS = Number(process.env.BENCH_SHARDS_TASKS ?? 20_000);
const COUNTS = [1, 2, 4, 8];

/** CPU seconds the stack's workerd processes have used so far. */
function workerdCpu(pgid) {
  return stackProcesses(pgid)
    .filter((p) => p.comm === "workerd")
    .reduce((sum, p) => sum + cpuSeconds(p.pid), 0);
}

/** `fn`'s result and the cores workerd kept busy while it ran. */
async function withCpu(pgid, fn) {
  const cpu0 = workerdCpu(pgid);
  const t0 = performance.now();
  const value = await fn();
  return { value, cores: (workerdCpu(pgid) - cpu0) / ((performance.now() - t0) / 1000) };
}

const { base, stop, pid } = await startStack({ port: 8791 });
const rows = [];
try {
  await batchEnqueue(base, "warm", 2_000, 4);
  await endToEnd(base, "warm", 2_000);
  for (const n of COUNTS) {
    const queue = `shards-${n}`;
    await call(base, "PATCH", `/api/v1/queues/${queue}`, { shards: n });
    const enqueue = await withCpu(pid, () => batchEnqueue(base, queue, TASKS, 4));
    const e2e = await withCpu(pid, () => endToEnd(base, queue, TASKS));
    rows.push([`${n} shard${n > 1 ? "s" : ""}: batch enqueue / end to end (tasks/s)`, `${fmt(enqueue.value)} / ${fmt(e2e.value.rate)}`]);
    rows.push([
      `${n} shard${n > 1 ? "s" : ""}: workerd CPU, enqueue / end to end (cores)`,
      `${fmt(enqueue.cores, 2)} / ${fmt(e2e.cores, 2)}`,
    ]);
  }
} finally {
  stop();
}
report("Shards on one machine: throughput against shard count (npm run bench:shards)", rows, [
  `${fmt(TASKS)} tasks per shard count, each on a queue of its own; history flush and live pushes on; ${STACK}.`,
  "workerd CPU: user + system time of the workerd processes (the API's, and local D1's when it runs apart) over the wall time of the shape; the machine has 2 cores, and the load generator uses the rest.",
]);

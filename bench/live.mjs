#!/usr/bin/env node
// `npm run bench:live`: live metrics on the local stack. Event-to-client latency (a task's change
// in its shard → the message at a WebSocket client on loopback) idle, at full engine load and
// fanned out to 200 sockets, and hub requests per task. Prints a table and appends it to
// docs/BENCHMARKS.md. Loopback only; bounded (BENCH_LIVE_TASKS, BENCH_LIVE_SOCKETS).
import { WebSocket } from "ws";
import { batchEnqueue, call, endToEnd, fmt, percentile, report, sleep, STACK, startStack } from "./harness.mjs";

const SAMPLES = Number(process.env.BENCH_LIVE_SAMPLES ?? 200);
const LOAD_TASKS = Number(process.env.BENCH_LIVE_TASKS ?? 20_000);
const SOCKETS = Number(process.env.BENCH_LIVE_SOCKETS ?? 200);

/** A live socket on `queue`; `onTask(task, latencyMs)` for each task message. */
async function socket(base, queue, onTask) {
  const { token } = await call(base, "POST", "/api/v1/live/tokens");
  const ws = new WebSocket(`${base.replace("http", "ws")}/api/v1/live?queue=${queue}&token=${token}`);
  let snapshot;
  const ready = new Promise((r) => (snapshot = r));
  let acked = 0;
  ws.on("message", (data) => {
    const now = Date.now();
    const m = JSON.parse(String(data));
    if (m.seq - acked >= 50) ws.send(JSON.stringify({ type: "ack", seq: (acked = m.seq) })); // as the SDK does
    if (m.type === "snapshot") snapshot();
    if (m.type === "task") onTask(m.task, now - Date.parse(m.at));
    if (m.type === "tasks") for (const t of m.tasks) onTask(t, now - Date.parse(t.at));
  });
  await ready;
  return ws;
}

const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  return `${fmt(percentile(s, 50), 0)} / ${fmt(percentile(s, 95), 0)} / ${fmt(percentile(s, 99), 0)}`;
};

const { base, stop } = await startStack({ port: 8794 });
try {
  await call(base, "POST", "/api/v1/queues/warm/tasks", { name: "warm" });
  // Idle: one socket, one task at a time.
  const idle = [];
  const idleSocket = await socket(base, "idle", (t, ms) => t.status === "pending" && idle.push(ms));
  for (let i = 0; i < SAMPLES; i++) {
    await call(base, "POST", "/api/v1/queues/idle/tasks", { name: "one" });
    await sleep(100); // longer than a push interval: each change finds its shard quiet
  }
  await sleep(300);
  idleSocket.close();

  // Full load: a backlog drained by 4 consumers, one socket on the queue (its tasks' newest state per push).
  const loaded = [];
  await call(base, "POST", "/api/v1/queues/load/tasks", { name: "create" });
  await endToEnd(base, "load", 1);
  const loadSocket = await socket(base, "load", (_t, ms) => loaded.push(ms));
  const before = (await call(base, "GET", "/api/v1/queues/load")).shards.reduce((n, s) => n + s.live.pushes, 0);
  await batchEnqueue(base, "load", LOAD_TASKS, 4);
  const run = await endToEnd(base, "load", LOAD_TASKS);
  await sleep(500);
  const after = (await call(base, "GET", "/api/v1/queues/load")).shards.reduce((n, s) => n + s.live.pushes, 0);
  loadSocket.close();

  // Fan-out: SOCKETS sockets on one queue, one task at a time.
  const fan = [];
  const sockets = [];
  for (let i = 0; i < SOCKETS; i++) sockets.push(await socket(base, "fan", (t, ms) => t.status === "pending" && fan.push(ms)));
  for (let i = 0; i < 50; i++) {
    await call(base, "POST", "/api/v1/queues/fan/tasks", { name: "one" });
    await sleep(100);
  }
  await sleep(1000);
  for (const ws of sockets) ws.close();

  report(
    "Live metrics (npm run bench:live)",
    [
      [`event → client latency, idle, ${fmt(SAMPLES)} tasks one at a time: p50 / p95 / p99 (ms)`, stats(idle)],
      [`event → client latency at full load (${fmt(run.rate)} tasks/s end to end): p50 / p95 / p99 (ms)`, stats(loaded)],
      ["task messages heard during the load run", fmt(loaded.length)],
      [`event → client latency, fanned out to ${SOCKETS} sockets (50 tasks): p50 / p95 / p99 (ms)`, stats(fan)],
      [`messages received by the ${SOCKETS} sockets (of ${SOCKETS * 50})`, fmt(fan.length)],
      ["hub requests (shard pushes) per task at full load", fmt((after - before) / LOAD_TASKS, 4)],
    ],
    [
      `On ${STACK}.`,
      "Latency: a task message's `at` (when the change committed in its shard) to its arrival at a `ws` client on loopback; same clock, millisecond resolution.",
      "A shard pushes at most every 25 ms (at once when quiet), so under load a change waits up to 25 ms for its push; one push is one frame per socket. At full load the API's one workerd thread also runs every shard, the hub and the history flush (and local D1's SQL when it shares that process: wrangler dev, EDGEQ_BENCH_D1=shared).",
    ],
  );
} finally {
  stop();
}

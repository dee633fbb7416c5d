#!/usr/bin/env node
// `npm run bench:payloads`: what payload size costs. For each size, one queue: BENCH_PAYLOAD_TASKS tasks
// enqueued in batches of 100 by 4 callers, then drained by 4 consumer sockets with 100 credit each
// (the engine's shapes, priority 5), with SQLite rows written per task; once with history on and once
// with it off (EDGEQ_HISTORY=off), to tell the shard's cost from history's. Appends the table to
// docs/BENCHMARKS.md. Loopback only; bounded.
import { batchEnqueue, call, endToEndSockets, fmt, report, shardTotals, sleep, STACK, startStack } from "./harness.mjs";

const TASKS = Number(process.env.BENCH_PAYLOAD_TASKS ?? 10_000);
/** characters of each task's payload (JSON text): a counter and a string that pads it */
const SIZES = (process.env.BENCH_PAYLOAD_SIZES ?? "16,512,1024,2500,8000").split(",").map(Number);
/** BENCH_PAYLOAD_HISTORY=on (or off) runs one half only */
const HISTORY = (process.env.BENCH_PAYLOAD_HISTORY ?? "on,off").split(",");

/**
 * BENCH_PAYLOAD_TEXT=words pads with words (what search indexes token by token) instead of one run
 * of a single letter (one token).
 */
const WORDS = process.env.BENCH_PAYLOAD_TEXT === "words";
const VOCABULARY = ["order", "shipped", "customer", "invoice", "paid", "address", "street", "city", "parcel", "weight", "total", "item"];
const wordsOf = (n, i) => {
  let out = "";
  for (let k = 0; out.length < n; k++) out += `${VOCABULARY[(i * 7 + k * 13) % VOCABULARY.length]}${k % 50} `;
  return out.slice(0, n);
};

/** A payload whose JSON text is about `size` characters. */
const payloadOf = (i, size) => (size <= 16 ? { n: i } : { n: i, pad: WORDS ? wordsOf(size - 24, i) : "x".repeat(size - 24) });

/** Waits until history has taken every event of the queue's shards (at most 2 minutes), so one phase's flushes do not run in the next one's time. */
async function historySettled(base, queue) {
  const t0 = performance.now();
  for (const end = Date.now() + 120_000; Date.now() < end; await sleep(50)) {
    const { shards } = await call(base, "GET", `/api/v1/queues/${queue}`);
    if (shards.every((s) => s.history.waitingSince === null)) return performance.now() - t0;
  }
  throw new Error(`history of ${queue} did not catch up within 2 minutes`);
}

const rows = [];
for (const history of HISTORY) {
  const { base, stop } = await startStack({ port: 8792, vars: history === "off" ? { EDGEQ_HISTORY: "off" } : {} });
  try {
    await batchEnqueue(base, "warm", 2_000, 4, () => ({ priority: 5 }));
    await endToEndSockets(base, "warm", 2_000);
    for (const size of SIZES) {
      const queue = `payload-${size}`;
      const enqueue = await batchEnqueue(base, queue, TASKS, 4, (i) => ({ payload: payloadOf(i, size), priority: 5 }));
      const behindEnqueue = history === "on" ? await historySettled(base, queue) : 0;
      const drain = await endToEndSockets(base, queue, TASKS);
      const behindDrain = history === "on" ? await historySettled(base, queue) : 0;
      const { rowsWritten } = await shardTotals(base, queue);
      rows.push([
        `${fmt(size)}-character payloads, history ${history}: batch enqueue / end to end (tasks/s)${history === "on" ? ", history's catch-up after each (ms)" : ""}, rows written per task`,
        `${fmt(enqueue)} / ${fmt(drain.rate)}${history === "on" ? `, ${fmt(behindEnqueue)} / ${fmt(behindDrain)}` : ""}, ${fmt(rowsWritten / TASKS, 2)}`,
      ]);
    }
  } finally {
    stop();
  }
}
report(
  `Payload size: throughput and rows written (npm run bench:payloads, ${fmt(TASKS)} tasks per size${WORDS ? ", payloads of words" : ""})`,
  rows,
  [
    `On ${STACK}. Each size is a fresh queue: ${fmt(TASKS)} tasks enqueued 100 per call by 4 callers, then drained by 4 consumer sockets with 100 credit each, history let catch up after each (so one phase's flushes do not fall in the next one's time; how long that took is the catch-up, polled every 50 ms, and history's flush interval is 1 s); rows written per task over enqueue → lease → complete, from the shard's counters.`,
    "A payload over 512 bytes (UTF-8) is kept in its own row (task_bodies), written once; the task's row, written again at each lease and completion, holds '' (docs/ARCHITECTURE.md, \"Long payloads\"). History does the same in D1 (task_payloads beside its tasks row) and indexes each payload's text, flattened, up to its first 16 KiB characters, for search.",
  ],
);

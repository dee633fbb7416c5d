#!/usr/bin/env node
// Flow control's cost (`npm run bench`): the same end-to-end run (pre-enqueued tasks, 4 consumers
// leasing 100 and completing in batches) on a queue without limits, with a concurrency cap and a
// start limit that never bind (the cost of checking them), and with tasks spread over 1,000 groups
// under a per-group limit (the cost of taking turns). Configurations alternate over three rounds
// and the median is reported, so drift on a shared machine does not favour one of them.
import { batchEnqueue, call, CONSUMERS, endToEnd, fmt, report, startStack } from "./harness.mjs";

const TASKS = Number(process.env.BENCH_FLOW_TASKS ?? 10_000);
const ROUNDS = 3;
const GROUPS = 1000;

const CONFIGS = {
  plain: { settings: null },
  capped: { settings: { concurrency: 100_000, startLimit: { count: 100_000, perMs: 1000 } } },
  grouped: { settings: { groupLimits: { default: { concurrency: 1000 } } }, extra: (i) => ({ groupKey: `customer-${i % GROUPS}` }) },
  binding: { settings: { concurrency: 200 } },
};

async function run(base, queue, { settings, extra }) {
  if (settings) await call(base, "PATCH", `/api/v1/queues/${queue}`, settings);
  await batchEnqueue(base, queue, TASKS, 4, extra);
  return (await endToEnd(base, queue, TASKS)).rate;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { base, stop } = await startStack({ port: 8796 });
try {
  for (const [name, config] of Object.entries(CONFIGS)) await run(base, `warm-${name}`, config); // compile every path first
  const rates = Object.fromEntries(Object.keys(CONFIGS).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, config] of Object.entries(CONFIGS)) rates[name].push(await run(base, `${name}-${round}`, config));
  }
  const m = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
  const slower = (r) => `${fmt((1 - r / m.plain) * 100, 0)} %`;
  report(
    "Flow control (npm run bench)",
    [
      [`end-to-end, ${fmt(TASKS)} tasks, ${CONSUMERS} consumers x 100, no limits (tasks/s, median of ${ROUNDS})`, fmt(m.plain)],
      ["with a concurrency cap and a start limit that do not bind (tasks/s)", fmt(m.capped)],
      ["  slower than no limits", slower(m.capped)],
      [`tasks in ${fmt(GROUPS)} groups, turns between groups, per-group cap (tasks/s)`, fmt(m.grouped)],
      ["  slower than no limits", slower(m.grouped)],
      ["with a binding concurrency cap of 200 (tasks/s)", fmt(m.binding)],
    ],
    [
      `One shard. Rounds: ${Object.entries(rates)
        .map(([k, v]) => `${k} ${v.map((x) => fmt(x)).join("/")}`)
        .join("; ")}.`,
      "A non-binding limit measures the cost of checking it; the binding cap of 200 halves what 4 consumers x 100 may hold at once.",
      "With groups, one statement reads the next task of up to 100 groups (a correlated seek per group on tasks_group_ready); a pending task has one lease-order index entry either way.",
    ],
  );
} finally {
  stop();
}

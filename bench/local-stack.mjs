#!/usr/bin/env node
// `npm run bench:local`: what leaving wrangler dev's proxy out buys. The same Worker, state layout
// and shapes, once on the direct stack (the deployable bundle on workerd through Miniflare,
// scripts/serve-api.mjs, EDGEQ_STACK=direct npm start) and once under wrangler dev (npm start), alternating
// ROUNDS times so a machine whose speed drifts affects both alike: sequential GET /health, batch
// enqueue (100 per call, 4 callers) and the engine's end-to-end shape (4 consumers × 100).
// Appends the table to docs/BENCHMARKS.md. Loopback only; bounded.
import { batchEnqueue, call, endToEnd, fmt, percentile, report, startStack } from "./harness.mjs";

const ROUNDS = Number(process.env.BENCH_LOCAL_ROUNDS ?? 2);
const TASKS = Number(process.env.BENCH_LOCAL_TASKS ?? 10_000);
const PINGS = 500;

async function measure(wranglerDev) {
  const { base, stop } = await startStack({ port: 8792, wranglerDev });
  try {
    await batchEnqueue(base, "warm", 1_000, 4);
    await endToEnd(base, "warm", 1_000);
    const pings = [];
    for (let i = 0; i < PINGS; i++) {
      const t = performance.now();
      await call(base, "GET", "/health");
      pings.push(performance.now() - t);
    }
    pings.sort((a, b) => a - b);
    const enqueue = await batchEnqueue(base, "e2e", TASKS, 4);
    const e2e = await endToEnd(base, "e2e", TASKS);
    return { p50: percentile(pings, 50), p99: percentile(pings, 99), enqueue, e2e: e2e.rate };
  } finally {
    stop();
  }
}

const runs = { direct: [], dev: [] };
for (let r = 0; r < ROUNDS; r++) {
  runs.direct.push(await measure(false));
  runs.dev.push(await measure(true));
}
const both = (key, digits = 0) =>
  `${runs.direct.map((m) => fmt(m[key], digits)).join(" / ")} vs ${runs.dev.map((m) => fmt(m[key], digits)).join(" / ")}`;
report(
  "The local stack: direct (workerd through Miniflare) against wrangler dev (npm run bench:local)",
  [
    ["GET /health p50, sequential (ms)", both("p50", 2)],
    ["GET /health p99, sequential (ms)", both("p99", 2)],
    [`batch enqueue, 100 per call, 4 callers, ${fmt(TASKS)} tasks (tasks/s)`, both("enqueue")],
    [`end to end, ${fmt(TASKS)} tasks, 4 consumers × 100 (tasks/s)`, both("e2e")],
  ],
  [
    `Each cell: the direct stack, one value per round, vs wrangler dev's (npm start); ${ROUNDS} rounds, alternating. History flush and live pushes on in both; request logs off.`,
    "wrangler dev runs the Worker in one workerd and its proxy Worker in another; every request goes through both. The direct stack serves workerd's own socket.",
  ],
);

#!/usr/bin/env node
// `npm run bench:local`: what each local stack costs. The same Worker, state layout and shapes on
// the stack `npm start` runs (the deployable bundle on workerd through Miniflare, local D1 in a
// workerd of its own, scripts/serve-api.mjs), on the same with local D1 in the API's process, and
// under wrangler dev (`npm run dev`), in turn ROUNDS times so a machine whose speed drifts affects
// all alike: sequential GET /health, batch enqueue (100 per call, 4 callers) and the engine's
// end-to-end shape (4 consumers × 100). Appends the table to docs/BENCHMARKS.md. Loopback only; bounded.
import { batchEnqueue, call, endToEnd, fmt, percentile, report, startStack } from "./harness.mjs";

const ROUNDS = Number(process.env.BENCH_LOCAL_ROUNDS ?? 2);
const TASKS = Number(process.env.BENCH_LOCAL_TASKS ?? 10_000);
const PINGS = 500;

const STACKS = {
  "npm start": { wranglerDev: false, d1: "apart" },
  "npm start, local D1 in the API's process": { wranglerDev: false, d1: "shared" },
  "wrangler dev (npm run dev)": { wranglerDev: true },
};

async function measure(options) {
  const { base, stop } = await startStack({ port: 8792, ...options });
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

const runs = Object.fromEntries(Object.keys(STACKS).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) for (const [name, options] of Object.entries(STACKS)) runs[name].push(await measure(options));
const rows = (metric, key, digits = 0) =>
  Object.keys(STACKS).map((name) => [`${metric}: ${name}`, runs[name].map((m) => fmt(m[key], digits)).join(" / ")]);
report(
  "The local stacks: npm start's, the same with local D1 in the API's process, and wrangler dev (npm run bench:local)",
  [
    ...rows("GET /health p50, sequential (ms)", "p50", 2),
    ...rows("GET /health p99, sequential (ms)", "p99", 2),
    ...rows(`batch enqueue, 100 per call, 4 callers, ${fmt(TASKS)} tasks (tasks/s)`, "enqueue"),
    ...rows(`end to end, ${fmt(TASKS)} tasks, 4 consumers × 100 (tasks/s)`, "e2e"),
  ],
  [
    `One value per round; ${ROUNDS} rounds, the stacks in turn. History flush and live pushes on in all; request logs off.`,
    "npm start's stack serves workerd's own socket, and local D1 runs in a second workerd (D1 is a service of its own at the edge); workerd runs all the isolates of a process on one thread. wrangler dev runs the Worker and local D1 in one workerd and its proxy Worker in another; every request goes through both.",
  ],
);

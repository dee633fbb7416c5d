// The shard's hot path written two ways, timed in one Durable Object on workerd
// (Miniflare, no HTTP stack in between): the hand-tuned SqlStore (multi-row
// INSERT … SELECT and UPDATE … FROM over one JSON parameter, buffered per transaction) against
// drizzle's query builder (the same statements one row, or three, at a time).
// Each round: 20 transactions of 100 tasks each enqueued, read in lease order,
// leased and completed. Prints a table and appends it to docs/BENCHMARKS.md.
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { report } from "./harness.mjs";

const bundle = await build({
  entryPoints: ["bench/fixtures/sql-bench.ts"],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["cloudflare:workers"],
  loader: { ".sql": "text" },
  mainFields: ["module", "main"],
});
const mf = new Miniflare({
  modules: true,
  script: bundle.outputFiles[0].text,
  compatibilityDate: "2025-04-01",
  compatibilityFlags: ["nodejs_compat"],
  durableObjects: { SQL: { className: "SqlBench", useSQLite: true } },
});
const ROUNDS = 5;
const BATCHES = 20;
const times = { hand: [], drizzle: [] };
try {
  for (const way of ["hand", "drizzle"]) await (await mf.dispatchFetch(`http://bench/?way=${way}&batches=2`)).json(); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const way of ["hand", "drizzle"]) {
      const started = performance.now();
      await (await mf.dispatchFetch(`http://bench/?way=${way}&batches=${BATCHES}`)).json();
      times[way].push(performance.now() - started);
    }
  }
} finally {
  await mf.dispose();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const tasks = BATCHES * 100;
const perSecond = (way) => Math.round(tasks / (median(times[way]) / 1000));
const hand = perSecond("hand");
const viaDrizzle = perSecond("drizzle");
report(
  "Hot-path SQL: hand-tuned vs drizzle (node bench/sql.mjs)",
  [
    ["tasks/s through enqueue → lease read → lease → complete, hand-tuned SqlStore", hand.toLocaleString("en-US")],
    ["the same through drizzle's query builder", viaDrizzle.toLocaleString("en-US")],
    ["hand-tuned is faster by", `${((hand / viaDrizzle - 1) * 100).toFixed(0)} %`],
  ],
  [
    `One Durable Object on Miniflare (workerd), no HTTP. Median of ${ROUNDS} rounds of ${tasks} tasks in batches of 100.`,
    `Rounds (ms) hand: ${times.hand.map((t) => t.toFixed(0)).join("/")}; drizzle: ${times.drizzle.map((t) => t.toFixed(0)).join("/")}.`,
    "drizzle writes one statement per row updated (and three rows per insert under the 100-bound-value limit); the SqlStore writes each group of rows changing the same columns with one statement over one JSON parameter.",
  ],
);

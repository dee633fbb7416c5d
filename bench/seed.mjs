// Seeds task history in bulk through the flusher's own write path (writeHistory, bundled from the
// sources), so the D1 rows, search text and analytics rollups are the ones shards write. Used by
// the history and analytics benchmarks.
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { fmt } from "./harness.mjs";

const DAY = 86_400_000;

export const WORDS = ["welcome", "invoice", "reminder", "receipt", "digest", "reset", "verify", "survey", "renewal", "refund"];
const REGIONS = ["emea", "apac", "amer", "latam", "nordics", "dach", "benelux", "iberia"];
export const QUEUES = ["email", "billing", "reports", "sync", "media"];

function statusOf(r) {
  if (r < 0.85) return "completed";
  if (r < 0.9) return "failed";
  if (r < 0.93) return "cancelled";
  if (r < 0.97) return "pending";
  if (r < 0.99) return "scheduled";
  return "running";
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
function ulid(ms, i) {
  let time = "";
  for (let t = ms, k = 0; k < 10; k++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  let rand = "";
  for (let n = i, k = 0; k < 16; k++, n = Math.floor(n / 32)) rand = CROCKFORD[n % 32] + rand;
  return time + rand;
}

/** Task rows as a shard holds them, with realistic payloads; created over the last 7 days. */
function seedRow(i, now, rows) {
  const created = now - 7 * DAY + Math.floor((i / rows) * 7 * DAY);
  const status = statusOf(((i * 2654435761) % 1000) / 1000);
  const queue = QUEUES[i % QUEUES.length];
  const started = status === "pending" || status === "scheduled" ? null : created + 50 + (i % 400);
  const finished = ["completed", "failed", "cancelled"].includes(status) ? started + 100 + (i % 3000) : null;
  return {
    id: `${ulid(created, i)}.0.${queue}`,
    name: `send-${WORDS[i % WORDS.length]}`,
    payload: JSON.stringify({
      to: `user${i}@example.com`,
      template: WORDS[(i >> 3) % WORDS.length],
      orderId: 100000 + i,
      region: REGIONS[i % REGIONS.length],
      amount: (i % 9000) / 100,
    }),
    priority: 1 + ((i * 7) % 10),
    status,
    attempts: started ? 1 : 0,
    maxAttempts: 3,
    backoff: '{"baseMs":1000,"factor":2,"maxMs":600000}',
    timeoutMs: 30000,
    runAt: created,
    dependsOn: null,
    depsWaiting: null,
    onDependencyFailure: null,
    parentId: null,
    waitForChildren: null,
    sealed: null,
    children: null,
    idempotencyKey: null,
    groupKey: null,
    workerId: started ? `worker-${i % 16}` : null,
    cancelRequested: 0,
    progress: null,
    result: status === "completed" ? '{"ok":true}' : null,
    error: status === "failed" ? '{"message":"smtp timeout"}' : null,
    tags: i % 3 === 0 ? '["vip"]' : null,
    createdAt: created,
    startedAt: started,
    finishedAt: finished,
    dueAt: status === "running" ? now + 30000 : null,
  };
}

/** The flusher's write path (planHistory's output, writeHistory), bundled from the sources. */
async function flusherModule(dir) {
  const out = join(dir, "history.mjs");
  await build({
    stdin: { contents: 'export { writeHistory } from "./durable/history.ts";', resolveDir: process.cwd(), loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    outfile: out,
    logLevel: "warning",
  });
  return import(out);
}

/** The local D1 database in a state folder (as wrangler dev keeps it), opened directly; `mf.dispose()` when done. */
export async function openD1(state) {
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response('') } }",
    d1Databases: { DB: "00000000-0000-4000-8000-000000000000" },
    d1Persist: join(state, "v3", "d1"),
  });
  return { mf, db: await mf.getD1Database("DB") };
}

export async function seedHistory(state, now, ROWS) {
  const work = mkdtempSync(join(tmpdir(), "edgeq-seed-"));
  const { writeHistory } = await flusherModule(work);
  const { mf, db } = await openD1(state);
  const t0 = performance.now();
  const BATCH = 2000;
  let version = 0;
  for (let start = 0; start < ROWS; start += BATCH) {
    const tasks = [];
    const events = [];
    const marks = [];
    for (let i = start; i < Math.min(ROWS, start + BATCH); i++) {
      const row = seedRow(i, now, ROWS);
      const text = { name: row.name, body: Object.values(JSON.parse(row.payload)).join(" ") };
      tasks.push({ row, full: true, text });
      const timeline = [{ type: "enqueued", at: row.createdAt, status: "pending" }];
      if (row.startedAt) timeline.push({ type: "started", at: row.startedAt, status: "running", attempt: 1, workerId: row.workerId });
      if (row.finishedAt) timeline.push({ type: row.status, at: row.finishedAt, status: row.status });
      events.push({ taskId: row.id, seq: ++version, lastSeq: version, events: timeline, json: JSON.stringify(timeline) });
      marks.push([version, row.id, row.createdAt, "enqueued"]);
      if (row.finishedAt) marks.push([version, row.id, row.finishedAt, row.status]);
    }
    await writeHistory(db, "default", "seed:0", { upTo: version, marks, tasks, events, deletes: [], dead: [] });
    if ((start / BATCH) % 50 === 0) process.stderr.write(`\rseeded ${fmt(start + BATCH)} rows`);
  }
  process.stderr.write("\n");
  const seconds = (performance.now() - t0) / 1000;
  await mf.dispose();
  rmSync(work, { recursive: true, force: true });
  return seconds;
}

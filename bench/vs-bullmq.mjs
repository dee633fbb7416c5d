#!/usr/bin/env node
// `npm run bench:compare`: edgeq and BullMQ side by side, in one run on this machine, in the shapes
// a user switching from BullMQ compares:
//  - the SDK: one Worker at concurrency 16, a no-op handler, TASKS tasks added beforehand with addBulk,
//    over its default transport (consumer sockets) and over HTTP long polls;
//  - batched end to end: edgeq's 4 raw HTTP consumers leasing 100 and completing them in their next
//    lease call (one request per batch, as a BullMQ Worker completes a job and fetches the next in
//    one call), and 4 consumer sockets with 100 credit each completing each push in one frame, against
//    4 BullMQ Workers at concurrency 100 (100 in flight each, as the consumers hold);
//  - batch enqueue: one caller, 100 per call (edgeq's batch route, BullMQ's addBulk);
//  - idle latency: from add() to the handler starting, one task at a time, workers waiting, and
//    under it edgeq's floor on the same stack (GET /health, which does nothing, as often).
// edgeq runs as `npm start` runs it (EDGEQ_BENCH_STACK=wrangler for wrangler dev, as `npm run dev`), history flush and live pushes on
// (BENCH_COMPARE_HISTORY=off: edgeq without history, to show what history costs locally). BullMQ runs on
// Debian's redis-server (installed with apt-get when missing) with persistence off, BullMQ and its
// Redis client (ioredis) fetched from npm into .edgeq/compare, pinned, with --ignore-scripts: not
// devDependencies, because BullMQ's msgpackr brings an optional native addon (msgpackr-extract)
// whose install script would run on every `npm install` of edgeq, for a benchmark only. Prints a table and appends it to
// docs/BENCHMARKS.md. Loopback only; bounded (BENCH_COMPARE_TASKS, BENCH_COMPARE_SAMPLES).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { EdgeqClient } from "edgeq/client";
import { Worker as EdgeqWorker } from "edgeq/consumer";
import {
  ADMIN_TOKEN,
  batchEnqueue,
  call,
  endToEnd,
  endToEndSockets,
  fmt,
  percentile,
  report,
  sleep,
  spacedSamples,
  STACK,
  startStack,
  tasksOf,
} from "./harness.mjs";
import { startBareShard } from "./bare-shard.mjs";

const TASKS = Number(process.env.BENCH_COMPARE_TASKS ?? 20_000);
const SAMPLES = Number(process.env.BENCH_COMPARE_SAMPLES ?? 200);
/**
 * Between enqueueing a backlog and draining it, edgeq's history flush of the enqueues (up to a
 * second behind) is let finish, so a drain is not also timing the shape before it.
 */
const SETTLE_MS = 2_000;
const BULLMQ = "6.7.0";
/** BullMQ's Redis client, an optional peer of BullMQ 6 that it needs for Redis */
const IOREDIS = "6.0.0";
const DIR = resolve(".edgeq/compare");

/** BullMQ from npm, into a folder of its own: the comparison needs it, edgeq does not. */
function bullmq() {
  const entry = join(DIR, "node_modules/ioredis/package.json");
  if (!existsSync(entry)) {
    mkdirSync(DIR, { recursive: true });
    console.log(`fetching bullmq@${BULLMQ} and ioredis@${IOREDIS} into ${DIR}`);
    execFileSync(
      "npm",
      ["install", "--prefix", DIR, "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", `bullmq@${BULLMQ}`, `ioredis@${IOREDIS}`],
      { stdio: "inherit" },
    );
  }
  return createRequire(join(DIR, "package.json"))("bullmq");
}

/** A loopback port nothing listens on now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Debian's redis-server on a free loopback port of its own, nothing written to disk. */
async function startRedis({ durable = false } = {}) {
  if (!existsSync("/usr/bin/redis-server")) {
    console.log("installing Debian's redis-server");
    const root = process.getuid?.() === 0;
    execFileSync(root ? "apt-get" : "sudo", [...(root ? [] : ["apt-get"]), "install", "-y", "-q", "redis-server"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  }
  const port = await freePort();
  // durable: every write in the append-only file and fsynced before its command is answered, as
  // edgeq's shard commits (and fsyncs) a call's writes before answering it.
  const dir = durable ? mkdtempSync(join(tmpdir(), "edgeq-redis-")) : null;
  const persistence = durable ? ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir] : ["--appendonly", "no"];
  const child = spawn("/usr/bin/redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence], {
    stdio: "ignore",
    detached: true,
  });
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", stop);
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync("redis-cli", ["-p", String(port), "ping"], { stdio: "pipe" });
      const version = execFileSync("redis-server", ["--version"])
        .toString()
        .match(/v=(\S+)/)?.[1];
      return { stop, version, port };
    } catch {}
    await sleep(100);
  }
  stop();
  throw new Error("redis-server did not start");
}

/** Unrecorded samples before the recorded ones: a warm system (a new queue's first history flush, Redis's first scripts), for both. */
const WARMUP = 50;

/** `once(i)` timed SAMPLES times, 25 ms apart, after WARMUP untimed; sorted, in ms. */
async function idleSamples(once) {
  await spacedSamples(WARMUP, once);
  return spacedSamples(SAMPLES, once, { from: WARMUP });
}

const jobsOf = (n, offset = 0) => Array.from({ length: n }, (_, i) => ({ name: "noop", data: { n: offset + i } }));

/**
 * edgeq's raw shapes enqueue what BullMQ's do: tasks of one priority (the default, 5), in order.
 * (The harness's tasks have random priorities, which `bench/engine.mjs` measures on its own.)
 */
const SAME_JOBS = () => ({ priority: 5 });

/**
 * Calls of batch enqueue's shape made on its queue before it is timed, by both systems: the first
 * calls on a stack just started pay its warm-up (edgeq's Worker and shard compiled and optimised,
 * the new shard made and migrated; BullMQ's scripts loaded), as a running system has paid it.
 */
const ENQUEUE_WARMUP = 20;

/**
 * BullMQ's shapes, each on a fresh queue; `shapes` picks some (batch enqueue and idle for the Redis
 * that writes every command to disk before answering it).
 */
async function runBullmq({ Queue, Worker }, port, shapes = ["enqueue", "sdk", "batched", "idle"]) {
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const out = {};
  const fresh = async (name) => {
    const q = new Queue(name, { connection });
    await q.obliterate({ force: true }).catch(() => {});
    return q;
  };
  const drain = async (name, workers, concurrency) => {
    let done = 0;
    let allDone;
    const finished = new Promise((r) => (allDone = r));
    const t0 = performance.now();
    const pool = Array.from({ length: workers }, () => {
      const w = new Worker(name, async () => {}, { connection, concurrency, removeOnComplete: { count: 1000 } });
      w.on("completed", () => ++done === TASKS && allDone());
      return w;
    });
    await finished;
    const seconds = (performance.now() - t0) / 1000;
    await Promise.all(pool.map((w) => w.close()));
    return TASKS / seconds;
  };

  // batch enqueue, one caller, 100 per call, after ENQUEUE_WARMUP unrecorded calls
  let q;
  if (shapes.includes("enqueue")) {
    q = await fresh("cmp-enqueue");
    for (let i = 0; i < ENQUEUE_WARMUP; i++) await q.addBulk(jobsOf(100, -100 * (i + 1)));
    const t0 = performance.now();
    for (let i = 0; i < TASKS; i += 100) await q.addBulk(jobsOf(100, i));
    out.enqueue = TASKS / ((performance.now() - t0) / 1000);
    await q.close();
  }

  // the SDK shape: one Worker at concurrency 16 on a backlog
  if (shapes.includes("sdk")) {
    q = await fresh("cmp-sdk");
    for (let i = 0; i < TASKS; i += 100) await q.addBulk(jobsOf(100, i));
    out.sdk = await drain("cmp-sdk", 1, 16);
    await q.close();
  }

  // batched end to end: 4 Workers, 100 in flight each, on a backlog
  if (shapes.includes("batched")) {
    q = await fresh("cmp-batch");
    for (let i = 0; i < TASKS; i += 100) await q.addBulk(jobsOf(100, i));
    out.batched = await drain("cmp-batch", 4, 100);
    await q.close();
  }

  // idle: add() to the handler starting
  if (shapes.includes("idle")) {
    q = await fresh("cmp-idle");
    let started;
    const w = new Worker("cmp-idle", async () => started?.(), { connection, concurrency: 16 });
    await w.waitUntilReady();
    out.idle = await idleSamples(async (i) => {
      const begun = new Promise((r) => (started = r));
      await q.add("ping", { i });
      await begun;
    });
    await w.close();
    await q.close();
  }
  return out;
}

/** edgeq's shapes, each on a fresh queue. */
async function runEdgeq(base) {
  const edgeq = new EdgeqClient({ url: base, token: ADMIN_TOKEN });
  const out = {};
  await batchEnqueue(base, "cmp-enqueue", ENQUEUE_WARMUP * 100, 1, SAME_JOBS);
  out.enqueue = await batchEnqueue(base, "cmp-enqueue", TASKS, 1, SAME_JOBS);

  // the SDK shape: one Worker at concurrency 16 on a backlog added with addBulk, over its default
  // transport (consumer sockets), then over HTTP long polls
  const sdkRate = async (name, transport) => {
    const queue = edgeq.queue(name);
    await queue.addBulk(
      jobsOf(TASKS).map((j) => ({ name: j.name, payload: j.data })),
      { chunkSize: 100 },
    );
    await sleep(SETTLE_MS);
    let done = 0;
    let allDone;
    const finished = new Promise((r) => (allDone = r));
    const worker = new EdgeqWorker(edgeq, name, async () => {}, { concurrency: 16, waitMs: 5000, transport });
    worker.on("completed", () => ++done === TASKS && allDone());
    const t0 = performance.now();
    const running = worker.run();
    await finished;
    const rate = TASKS / ((performance.now() - t0) / 1000);
    await worker.close();
    await running;
    // What the shard was asked: RPC requests (the backlog's enqueue calls included) and socket messages.
    const [shard] = (await edgeq.call("GET", `/queues/${name}`)).shards;
    return { rate, calls: `${fmt(shard.requests)} requests + ${fmt(shard.socketMessages)} socket messages` };
  };
  ({ rate: out.sdk, calls: out.sdkCalls } = await sdkRate("cmp-sdk", "auto"));
  ({ rate: out.sdkHttp, calls: out.sdkHttpCalls } = await sdkRate("cmp-sdk-http", "http"));

  // batched end to end over raw HTTP, and over raw consumer sockets
  await batchEnqueue(base, "cmp-batch", TASKS, 4, SAME_JOBS);
  await sleep(SETTLE_MS);
  out.batched = (await endToEnd(base, "cmp-batch", TASKS)).rate;
  await batchEnqueue(base, "cmp-sockets", TASKS, 4, SAME_JOBS);
  await sleep(SETTLE_MS);
  out.sockets = (await endToEndSockets(base, "cmp-sockets", TASKS)).rate;

  // idle: add() to the handler starting
  const idleQueue = edgeq.queue("cmp-idle");
  let started;
  const idle = new EdgeqWorker(edgeq, "cmp-idle", async () => started?.(), { concurrency: 16, waitMs: 5000 });
  const idleRun = idle.run();
  await idle.id;
  out.idle = await idleSamples(async (i) => {
    const begun = new Promise((r) => (started = r));
    await idleQueue.add("ping", { i });
    await begun;
  });
  await idle.close();
  await idleRun;

  // the floor under it: a request that does nothing (GET /health), as often, over node:http keep-alive
  out.floor = await idleSamples(() => call(base, "GET", "/health"));
  return out;
}

// Without Redis or BullMQ (no apt, no registry), edgeq's half still runs and the table says why BullMQ's is missing.
let bull = { sdk: NaN, batched: NaN, enqueue: NaN, idle: [] };
let bullDurable = { enqueue: NaN, idle: [] };
let redis = { version: "n/a" };
let skipped = "";
try {
  const { Queue, Worker } = bullmq();
  redis = await startRedis();
  try {
    bull = await runBullmq({ Queue, Worker }, redis.port);
  } finally {
    redis.stop();
  }
  const durableRedis = await startRedis({ durable: true });
  try {
    bullDurable = await runBullmq({ Queue, Worker }, durableRedis.port, ["enqueue", "idle"]);
  } finally {
    durableRedis.stop();
  }
} catch (e) {
  skipped = `BullMQ's half was skipped: ${e.message.split("\n")[0]}`;
  console.error(skipped);
}
/** BENCH_COMPARE_HISTORY=off runs edgeq without history (EDGEQ_HISTORY=off): not the shape, a measure of what history costs locally */
const HISTORY = process.env.BENCH_COMPARE_HISTORY === "off" ? "off" : "on";
const stack = await startStack({ port: 8798, vars: HISTORY === "off" ? { EDGEQ_HISTORY: "off" } : {} });
let edge;
try {
  edge = await runEdgeq(stack.base);
} finally {
  stack.stop();
}

// The platform's bound for batch enqueue on this machine (bench/bare-shard.mjs), timed as edgeq's is.
const bare = await startBareShard();
let bound;
try {
  const once = (i) => call(bare.base, "POST", "/", { tasks: tasksOf(100, i * 100, SAME_JOBS) });
  for (let i = 0; i < ENQUEUE_WARMUP; i++) await once(i);
  const t0 = performance.now();
  for (let i = 0; i < TASKS / 100; i++) await once(i);
  bound = TASKS / ((performance.now() - t0) / 1000);
} finally {
  await bare.stop();
}

const ratio = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : "n/a");
const p = (s) => `${fmt(percentile(s, 50), 1)} / ${fmt(percentile(s, 95), 1)} / ${fmt(percentile(s, 99), 1)}`;
report(
  `edgeq and BullMQ ${BULLMQ} on Redis ${redis.version}, same run (npm run bench:compare, bench/vs-bullmq.mjs)${HISTORY === "off" ? ", edgeq's history off" : ""}`,
  [
    [
      `SDK Worker, concurrency 16, ${fmt(TASKS)} no-op tasks: edgeq / BullMQ (tasks/s)`,
      `${fmt(edge.sdk)} / ${fmt(bull.sdk)} (${ratio(edge.sdk, bull.sdk)})`,
    ],
    [
      "the same over HTTP long polls (transport: http): edgeq / BullMQ (tasks/s)",
      `${fmt(edge.sdkHttp)} / ${fmt(bull.sdk)} (${ratio(edge.sdkHttp, bull.sdk)})`,
    ],
    [
      "batched end to end, 4 HTTP consumers × 100, each completing a batch in its next lease call: edgeq / BullMQ (tasks/s)",
      `${fmt(edge.batched)} / ${fmt(bull.batched)} (${ratio(edge.batched, bull.batched)})`,
    ],
    [
      "batched end to end, 4 consumer sockets × 100 credit: edgeq / BullMQ (tasks/s)",
      `${fmt(edge.sockets)} / ${fmt(bull.batched)} (${ratio(edge.sockets, bull.batched)})`,
    ],
    [
      "batch enqueue, 100 per call, one caller: edgeq / BullMQ (tasks/s)",
      `${fmt(edge.enqueue)} / ${fmt(bull.enqueue)} (${ratio(edge.enqueue, bull.enqueue)})`,
    ],
    [
      "the same on a bare SQLite Durable Object behind a Worker, the platform's bound (bench/bare-shard.mjs): tasks/s (× BullMQ; edgeq ×)",
      `${fmt(bound)} (${ratio(bound, bull.enqueue)}; edgeq ${ratio(edge.enqueue, bound)})`,
    ],
    [
      "batch enqueue against BullMQ on a Redis that fsyncs every write (appendfsync always, edgeq's durability): edgeq / BullMQ (tasks/s)",
      `${fmt(edge.enqueue)} / ${fmt(bullDurable.enqueue)} (${ratio(edge.enqueue, bullDurable.enqueue)})`,
    ],
    ["idle add() → handler start, edgeq, p50 / p95 / p99 (ms)", p(edge.idle)],
    ["idle add() → handler start, BullMQ, p50 / p95 / p99 (ms)", p(bull.idle)],
    ["the same, BullMQ on a Redis that fsyncs every write, p50 / p95 / p99 (ms)", p(bullDurable.idle)],
    ["idle GET /health on edgeq's stack, the floor under its add(), p50 / p95 / p99 (ms)", p(edge.floor)],
  ],
  [
    `edgeq: ${STACK}, ${HISTORY === "off" ? "history off (BENCH_COMPARE_HISTORY=off: no outbox flushes, no history written to local D1), live pushes on" : "history flush and live pushes on"}; the SDK's Worker over its default transport (consumer sockets, through the \`ws\` package on Node 20); raw consumers over node:http keep-alive, or one \`ws\` socket each (bench/harness.mjs).`,
    "BullMQ: redis-server from Debian with persistence off, ioredis as BullMQ ships it; completed jobs trimmed to the last 1,000 (removeOnComplete), as a production setup would.",
    "The rows with a Redis that fsyncs every write (`--appendonly yes --appendfsync always`, a second redis-server, since 2026-12-01 02:28): an acknowledged job is on disk, as an acknowledged edgeq task is (its shard's commit is fsynced before the answer). Redis's usual AOF setting, `appendfsync everysec`, may lose up to a second of acknowledged jobs when the machine crashes.",
    `The shard's calls in the SDK shape (${fmt(TASKS / 100)} enqueue calls included): ${edge.sdkCalls} over consumer sockets; ${edge.sdkHttpCalls} over HTTP.`,
    "The HTTP consumers complete each batch in their next lease call (`complete`) since 2026-11-30 23:37; before, in a call of its own (POST /leases/complete), two requests per batch.",
    "Both systems get the same jobs: one priority, a payload of one number (edgeq's raw shapes used random priorities 1–10 before 2026-11-30 13:10, which BullMQ's jobs never had).",
    `Batch enqueue is timed after ${ENQUEUE_WARMUP} unrecorded calls of its shape on its queue, for both (since 2026-12-01 02:03; before, from the stack's first call).`,
    "The bare object: one table and a partial ready index, each call's tasks inserted by one `INSERT … SELECT` over `json_each` in one transaction and their ids answered, on workerd through Miniflare with state on disk as edgeq's stack runs; no validation, placement, idempotency, fencing, outbox, history or task views (since 2026-12-01 02:11).",
    `Idle rows: ${SAMPLES} samples each, 25 ms apart, after ${WARMUP} unrecorded ones (a warm system, for both: before 2026-11-30 13:52 the first history flush of edgeq's new idle queue fell among the samples).`,
    "Both share this process and the machine's cores with their server; each shape runs on a fresh queue with the whole backlog enqueued first (enqueue is timed on its own), and edgeq's history of those enqueues flushed (2 s) before the drain is timed.",
    ...(skipped ? [skipped] : []),
  ],
);

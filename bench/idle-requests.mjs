#!/usr/bin/env node
// `npm run bench:idle`: where an idle request's time goes on this machine. One request at a time
// with GAP_MS between them (as a lone producer sends), from a trivial node:http server up to
// edgeq's enqueue → lease (long poll, and consumer socket): node:http and a hello-world Worker on workerd (the floor), then edgeq's
// deployable bundle on workerd (as `npm start` and the stack tests run it) on its own socket, and
// behind Miniflare's entry worker and the static assets' router: what those two hops cost.
// Appends the table to docs/BENCHMARKS.md. Loopback only; bounded.
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { WebSocket } from "ws";
import { serveApi } from "../scripts/serve-api.mjs";
import { migrateD1 } from "../scripts/migrate-d1.mjs";
import { call, fmt, percentile, report, sleep } from "./harness.mjs";

const SAMPLES = Number(process.env.BENCH_IDLE_SAMPLES ?? 400);
const GAP_MS = 15;
const TOKEN = "bench-idle";
/** One call over the harness's kept-alive connections, with this benchmark's token. */
const request = (port, method, path, body) => call(`http://127.0.0.1:${port}`, method, path, body, TOKEN);

/** p50 / p99 of `fn`'s duration, SAMPLES times with GAP_MS between (after a warm-up). */
async function timed(fn) {
  for (let i = 0; i < 30; i++) await fn(i);
  const t = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    await fn(i);
    t.push(performance.now() - start);
    await sleep(GAP_MS);
  }
  t.sort((a, b) => a - b);
  return `${fmt(percentile(t, 50), 2)} / ${fmt(percentile(t, 99), 2)}`;
}

/**
 * Enqueues one task every GAP_MS (after 30 unmeasured) while `consume` receives them; answers the
 * p50 / p99 from each enqueue being sent to its lease arriving. `consume(arrived)` starts the
 * consumer, calls `arrived(leases)` as leases come and answers a function that stops it.
 */
async function enqueueToConsumer(port, queue, consume) {
  const sentAt = new Map();
  const seen = [];
  const arrived = (leases) => {
    const now = performance.now();
    for (const l of leases) if (sentAt.has(l.task.payload.n)) seen.push(now - sentAt.get(l.task.payload.n));
  };
  const stop = await consume(arrived);
  for (let i = -30; i < SAMPLES; i++) {
    if (i === 0) seen.length = 0;
    sentAt.set(i, performance.now());
    await request(port, "POST", `/api/v1/queues/${queue}/tasks`, { name: "idle", payload: { n: i } });
    await sleep(GAP_MS);
  }
  while (seen.length < SAMPLES) await sleep(10);
  await stop();
  seen.sort((a, b) => a - b);
  return `${fmt(percentile(seen, 50), 2)} / ${fmt(percentile(seen, 99), 2)}`;
}

/** enqueue → the long-polling consumer holds the lease (the consumer completes each task). */
const enqueueToLease = (port, queue) =>
  enqueueToConsumer(port, queue, async (arrived) => {
    let stop = false;
    const consumer = (async () => {
      while (!stop) {
        const { leases } = await request(port, "POST", `/api/v1/queues/${queue}/leases`, { workerId: "idle", max: 1, waitMs: 1000 });
        arrived(leases);
        for (const l of leases) await request(port, "POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken });
      }
    })();
    return async () => {
      stop = true;
      await consumer;
    };
  });

/** enqueue → a consumer socket receives the lease (the consumer completes each task with one frame that grants its credit again). */
const enqueueToSocket = (port, queue) =>
  enqueueToConsumer(port, queue, async (arrived) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/queues/${queue}/consume?workerId=idle`, {
      perMessageDeflate: false, // as the SDK's consumer sockets
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    await new Promise((resolve, reject) => (ws.on("open", resolve), ws.on("error", reject)));
    let ref = 0;
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type !== "leases") return;
      arrived(frame.leases);
      const items = frame.leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken }));
      ws.send(JSON.stringify({ type: "complete", ref: ++ref, items, credit: items.length }));
    });
    ws.send(JSON.stringify({ type: "credit", credit: 1 }));
    return async () => ws.close();
  });

async function edgeq(direct) {
  const state = mkdtempSync(join(tmpdir(), "edgeq-bench-idle-"));
  const outdir = mkdtempSync(join(tmpdir(), "edgeq-bench-worker-"));
  migrateD1(state);
  const port = 8795;
  const api = await serveApi({ port, persistTo: state, outdir, direct, vars: { EDGEQ_ADMIN_TOKEN: TOKEN, EDGEQ_LOG_REQUESTS: "false" } });
  try {
    await request(port, "POST", "/api/v1/queues/idle-read/tasks", { name: "warm" });
    return {
      health: await timed(() => request(port, "GET", "/health")),
      read: await timed(() => request(port, "GET", "/api/v1/queues/idle-read")),
      write: await timed((i) => request(port, "POST", "/api/v1/queues/idle-write/tasks", { name: "w", payload: { i } })),
      lease: await enqueueToLease(port, "idle-lease"),
      socket: await enqueueToSocket(port, "idle-socket"),
    };
  } finally {
    await api.dispose();
    rmSync(state, { recursive: true, force: true });
    rmSync(outdir, { recursive: true, force: true });
  }
}

const node = http.createServer((_req, res) => res.end("ok")).listen(8796, "127.0.0.1");
const nodeHello = await timed(() => request(8796, "GET", "/"));
node.close();

// on its own socket, as edgeq's stack serves its Worker
const hello = new Miniflare({
  name: "hello",
  modules: true,
  script: `export default { fetch: () => new Response("ok") }`,
  host: "127.0.0.1",
  port: 0,
  unsafeDirectSockets: [{ host: "127.0.0.1", port: 8797 }],
});
await hello.ready;
const workerdHello = await timed(() => request(8797, "GET", "/"));
await hello.dispose();

const shipped = await edgeq(true);
const fronted = await edgeq(false);
/** A row of both stacks' figures for `shape`. */
const both = (label, shape) => [label, `${shipped[shape]} (${fronted[shape]} behind Miniflare's entry worker and router)`];

report(
  "An idle request, from the floor up: p50 / p99 in ms (npm run bench:idle)",
  [
    ["node:http hello world", nodeHello],
    ["workerd hello world (Miniflare, its own socket)", workerdHello],
    both("edgeq GET /health", "health"),
    both("edgeq GET /queues/{queue} (a shard read)", "read"),
    both("edgeq POST /queues/{queue}/tasks (a shard write)", "write"),
    both("edgeq enqueue → a long-polling consumer holds the lease", "lease"),
    both("edgeq enqueue → a consumer socket receives the lease", "socket"),
  ],
  [
    `${fmt(SAMPLES)} sequential requests each, ${GAP_MS} ms apart, over one kept-alive connection; edgeq is the deployable bundle on workerd (scripts/serve-api.mjs), history flush and live pushes on, request logs off.`,
    "\"behind Miniflare's entry worker and router\": the Worker's default entrypoint on Miniflare's entry socket, where Miniflare's entry worker and the assets' router (the `[assets]` of wrangler.toml, Swagger UI for /docs) stand in front of it. As shipped, local stacks serve its `Api` entrypoint on a socket of its own with neither in front; the Worker hands GET /docs/* to the assets itself.",
  ],
);
process.exit(0);

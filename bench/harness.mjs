// Shared benchmark harness: starts the local stack on its own port and state,
// talks to it over HTTP, and prints/appends result tables. Loopback only.
import { execFileSync } from "node:child_process";
import http from "node:http";
import { WebSocket } from "ws";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnApi } from "../scripts/api-process.mjs";
import { migrateD1 } from "../scripts/migrate-d1.mjs";

export const HOST = "127.0.0.1";

/** What startStack runs by default, for the notes under a table. */
export const STACK =
  process.env.EDGEQ_BENCH_STACK === "wrangler"
    ? "the local stack as `npm run dev` runs it (wrangler dev)"
    : process.env.EDGEQ_BENCH_D1 === "shared"
      ? "the deployable bundle on workerd through Miniflare with local D1 in the same process (EDGEQ_BENCH_D1=shared; `npm start` runs D1 in a workerd of its own)"
      : "the local stack as `npm start` runs it (the deployable bundle on workerd through Miniflare, local D1 in a workerd of its own)";

/** The bootstrap admin token the benchmark stack runs with (not rate limited). */
export const ADMIN_TOKEN = `bench-${Math.random().toString(36).slice(2)}`;

/**
 * Starts the local stack as `npm start` runs it (the deployable bundle on workerd's own socket,
 * local D1 in a workerd of its own, scripts/serve-api.mjs; no request logs) with a fresh state
 * folder; resolves when /health answers. `EDGEQ_BENCH_STACK=wrangler`, or `wranglerDev: true`:
 * under wrangler dev instead, as `npm run dev` runs it; `d1: "shared"` (or EDGEQ_BENCH_D1=shared):
 * local D1 in the API's process (bench/local-stack.mjs compares the three). `inspect`: workerd's inspector on
 * INSPECTOR_PORT (the profile and the heap probe use it).
 */
export async function startStack({
  port = 8799,
  vars = {},
  state = mkdtempSync(join(tmpdir(), "edgeq-bench-")),
  inspect = false,
  wranglerDev = !inspect && process.env.EDGEQ_BENCH_STACK === "wrangler",
  d1 = process.env.EDGEQ_BENCH_D1 === "shared" ? "shared" : "apart",
} = {}) {
  migrateD1(state);
  const child = spawnApi({
    direct: !wranglerDev,
    host: HOST,
    port,
    persistTo: state,
    vars: { EDGEQ_ADMIN_TOKEN: ADMIN_TOKEN, EDGEQ_LOG_REQUESTS: "false", ...vars },
    inspectorPort: inspect ? INSPECTOR_PORT : undefined,
    d1,
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const base = `http://${HOST}:${port}`;
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    rmSync(state, { recursive: true, force: true });
    agent.destroy();
  };
  process.on("exit", stop);
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) return { base, stop, pid: child.pid };
    } catch {}
    await sleep(250);
  }
  stop();
  throw new Error(`the stack did not start on ${base}:\n${stderr}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// node:http with keep-alive costs the client half what fetch does here, so the
// numbers below are less about the load generator sharing the 2 cores.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** JSON over HTTP as the admin (or `token`; a body that is not JSON comes back as text); throws on any non-2xx so a benchmark never counts failures as work. */
export function call(base, method, path, body, token = ADMIN_TOKEN) {
  const url = new URL(path, base);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        agent,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      },
      (res) => {
        const parts = [];
        res.on("data", (d) => parts.push(d));
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8");
          if (res.statusCode < 200 || res.statusCode > 299) {
            reject(new Error(`${method} ${path} → ${res.statusCode}: ${text.slice(0, 300)}`));
          } else if (!text) resolve(null);
          else resolve(res.headers["content-type"]?.includes("json") ? JSON.parse(text) : text);
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` in flight. */
export async function pool(n, concurrency, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/**
 * `once(i)` timed for i = `from` … `from + n - 1`, one call at a time, `gapMs` apart (25: an idle
 * system, and the SDK's completion flush, every 20 ms, is sent before the next call); sorted, in ms.
 */
export async function spacedSamples(n, once, { from = 0, gapMs = 25 } = {}) {
  const samples = [];
  for (let i = from; i < from + n; i++) {
    const t = performance.now();
    await once(i);
    samples.push(performance.now() - t);
    await sleep(gapMs);
  }
  return samples.sort((a, b) => a - b);
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** CPU seconds process `pid` has used so far (user + system, from /proc; 0 once it has ended). */
export function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in ticks of 10 ms
  } catch {
    return 0;
  }
}

/** Resident memory of the machine's workerd processes (a stack runs two: the API's and local D1's), in MiB. */
export function workerdRssMiB() {
  try {
    const out = execFileSync("ps", ["-C", "workerd", "-o", "rss="], { encoding: "utf8" });
    return (
      out
        .split("\n")
        .filter(Boolean)
        .reduce((a, b) => a + Number(b), 0) / 1024
    );
  } catch {
    return NaN;
  }
}

export function machine() {
  const cpu = existsSync("/proc/cpuinfo") ? /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] : "";
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));
  return `${cpu?.trim()}, Node ${process.version}, wrangler ${pkg.devDependencies.wrangler}`;
}

/** Prints a markdown table and appends it, dated, to docs/BENCHMARKS.md. */
export function report(title, rows, notes = []) {
  const width = [Math.max(...rows.map((r) => r[0].length), 6), Math.max(...rows.map((r) => String(r[1]).length), 5)];
  const line = (a, b) => `| ${a.padEnd(width[0])} | ${String(b).padStart(width[1])} |`;
  const table = [
    line("metric", "value"),
    `|${"-".repeat(width[0] + 2)}|${"-".repeat(width[1] + 1)}:|`,
    ...rows.map(([a, b]) => line(a, b)),
  ];
  const when = new Date().toISOString().replace("T", " ").slice(0, 16);
  const text = [`\n## ${title} — ${when} UTC`, "", `Machine: ${machine()}.`, "", ...table, "", ...notes.map((n) => `- ${n}`), ""].join(
    "\n",
  );
  console.log(text);
  appendFileSync("docs/BENCHMARKS.md", text);
}

export const fmt = (n, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a";

/** n tasks with random priorities; `extra(i)` adds fields to task i. */
export const tasksOf = (n, offset = 0, extra = () => ({})) =>
  Array.from({ length: n }, (_, i) => ({
    name: "bench",
    payload: { n: offset + i },
    priority: 1 + Math.floor(Math.random() * 10),
    ...extra(offset + i),
  }));

export async function shardTotals(base, queue) {
  const stats = await call(base, "GET", `/api/v1/queues/${queue}`);
  const sum = (k) => stats.shards.reduce((a, s) => a + s[k], 0);
  return { rowsWritten: sum("rowsWritten"), requests: sum("requests"), shards: stats.shards.length };
}

export async function batchEnqueue(base, queue, total, concurrency, extra) {
  const calls = Math.ceil(total / 100);
  const t0 = performance.now();
  await pool(calls, concurrency, (i) => call(base, "POST", `/api/v1/queues/${queue}/tasks/batch`, { tasks: tasksOf(100, i * 100, extra) }));
  return total / ((performance.now() - t0) / 1000);
}

export async function singleEnqueue(base, queue, total, concurrency) {
  const t0 = performance.now();
  await pool(total, concurrency, (i) => call(base, "POST", `/api/v1/queues/${queue}/tasks`, tasksOf(1, i)[0]));
  return total / ((performance.now() - t0) / 1000);
}

/** Consumers of the end-to-end runs, each leasing 100 at a time. */
export const CONSUMERS = 4;

/**
 * CONSUMERS consumers lease 100 at a time over HTTP; each completes a batch in its next lease call
 * (`complete`), a busy consumer's one call per batch; timed from the first lease to the last
 * completion. `apart: true`: the completions in calls of their own (POST /leases/complete), as
 * before the lease call took them.
 */
export async function endToEnd(base, queue, total, { apart = false } = {}) {
  let done = 0;
  let firstLease = 0;
  let lastComplete = 0;
  const completed = (results) => {
    if (results.some((r) => !r.ok)) throw new Error(`a completion was refused: ${JSON.stringify(results.find((r) => !r.ok))}`);
    done += results.length;
    lastComplete = performance.now();
  };
  await Promise.all(
    Array.from({ length: CONSUMERS }, async (_, c) => {
      let finished = [];
      while (done < total) {
        if (!firstLease) firstLease = performance.now();
        const body = { workerId: `c${c}`, max: 100 };
        if (finished.length > 0) body.complete = finished;
        const { leases, results } = await call(base, "POST", `/api/v1/queues/${queue}/leases`, body);
        if (results) completed(results);
        finished = leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken, result: { ok: true } }));
        if (apart && finished.length > 0) {
          completed((await call(base, "POST", "/api/v1/leases/complete", { items: finished })).results);
          finished = [];
        }
        if (leases.length === 0 && done < total) await sleep(1);
      }
    }),
  );
  return { rate: total / ((lastComplete - firstLease) / 1000), seconds: (lastComplete - firstLease) / 1000 };
}

/**
 * The same shape over consumer sockets (`GET /queues/{queue}/consume`): CONSUMERS sockets, each
 * granting 100 credit, completing each pushed batch in one frame that grants its credit again.
 */
export async function endToEndSockets(base, queue, total) {
  let done = 0;
  let firstLease = 0;
  let lastComplete = 0;
  const sockets = [];
  await new Promise((resolve, reject) => {
    for (let c = 0; c < CONSUMERS; c++) {
      const ws = new WebSocket(`${base.replace("http", "ws")}/api/v1/queues/${queue}/consume?workerId=s${c}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        perMessageDeflate: false, // as the SDK's consumer sockets
      });
      sockets.push(ws);
      let ref = 0;
      ws.on("error", reject);
      ws.on("open", () => ws.send(JSON.stringify({ type: "credit", credit: 100 })));
      ws.on("message", (data) => {
        const frame = JSON.parse(String(data));
        if (frame.type === "leases") {
          if (!firstLease) firstLease = performance.now();
          const items = frame.leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken, result: { ok: true } }));
          ws.send(JSON.stringify({ type: "complete", ref: ++ref, items, credit: items.length }));
        } else if (frame.type === "results") {
          if (frame.results.some((r) => !r.ok))
            reject(new Error(`a completion was refused: ${JSON.stringify(frame.results.find((r) => !r.ok))}`));
          done += frame.results.length;
          lastComplete = performance.now();
          if (done >= total) resolve();
        } else if (frame.type === "error") reject(new Error(frame.problem.detail));
      });
    }
  });
  for (const ws of sockets) ws.close();
  return { rate: total / ((lastComplete - firstLease) / 1000), seconds: (lastComplete - firstLease) / 1000 };
}

/** Where workerd serves its inspector when the stack was started with `inspect`. */
export const INSPECTOR_PORT = 9229;

/** workerd's inspector (a stack started with `inspect`): a CDP session on the Worker's isolate; `send(method, params)` answers the result. */
export async function inspector() {
  const ws = new WebSocket(`ws://127.0.0.1:${INSPECTOR_PORT}/core:user:edgeq`);
  await new Promise((resolve, reject) => (ws.on("open", resolve), ws.on("error", reject)));
  let id = 0;
  const waiting = new Map();
  ws.on("message", (data) => {
    const m = JSON.parse(String(data));
    if (m.id === undefined) return;
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      waiting.set(++id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result)));
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close() };
}

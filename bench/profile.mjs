#!/usr/bin/env node
// `npm run bench:profile`: where the time goes. A CPU profile of the Worker and its Durable Objects
// (one isolate of the local stack as `npm start` runs it, sampled by V8 through workerd's inspector) while the
// engine's end-to-end shape runs (PROFILE_TASKS tasks enqueued in batches of 100, then drained by 4
// consumers leasing 100 and completing them in one batch call, or with PROFILE_CONSUMERS=sockets by
// 4 consumer sockets with 100 credit each), history and live pushes on.
// Prints self time by area (the project's folders, the libraries, V8's own) and the busiest
// functions, appends the table to docs/BENCHMARKS.md and keeps the raw profile in .edgeq/profiles
// (open it in Chrome DevTools' Performance panel). Loopback only; bounded.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EdgeqClient } from "edgeq/client";
import { Worker } from "edgeq/consumer";
import {
  ADMIN_TOKEN,
  batchEnqueue,
  cpuSeconds,
  endToEnd,
  endToEndSockets,
  fmt,
  inspector,
  percentile,
  report,
  sleep,
  spacedSamples,
  startStack,
} from "./harness.mjs";
import { groupProcesses, startPerf } from "./perf-native.mjs";

const TASKS = Math.min(Number(process.env.PROFILE_TASKS ?? 20_000), process.env.PROFILE_SHAPE === "idle" ? 1_000 : Infinity);
/** PROFILE_HISTORY=off profiles the same run without history (EDGEQ_HISTORY=off), to see what history costs */
const HISTORY = process.env.PROFILE_HISTORY ?? "on";
const SAMPLE_US = 200;
/** PROFILE_CONSUMERS=sockets drains over consumer sockets (a socket per consumer, credit 100) instead of HTTP */
const SOCKETS = process.env.PROFILE_CONSUMERS === "sockets";
const drain = SOCKETS ? endToEndSockets : endToEnd;
/** PROFILE_SHAPE=enqueue profiles batch enqueue alone: one caller, 100 per call (bench:compare's shape), no drain */
const ENQUEUE_ONLY = process.env.PROFILE_SHAPE === "enqueue";
/** PROFILE_SHAPE=idle profiles idle latency: PROFILE_TASKS single add() calls 25 ms apart (at most 1,000), each leased at once by an SDK Worker waiting on its socket */
const IDLE = process.env.PROFILE_SHAPE === "idle";
/** PROFILE_PAYLOAD=N gives each task a payload of about N bytes (a string field), to see what payload size costs */
const PAYLOAD = Number(process.env.PROFILE_PAYLOAD ?? 0);
const padded = PAYLOAD > 0 ? (i) => ({ payload: { n: i, pad: "x".repeat(PAYLOAD) } }) : undefined;

/**
 * The source file of each line of the bundle the stack runs (esbuild marks where each module
 * starts with a `// path` comment), read while the stack runs from the newest edgeq-worker- build folder.
 */
function bundleSources(bundle) {
  const starts = [];
  bundle.split("\n").forEach((line, i) => {
    const m = /^\/\/ (\S+\.(?:ts|js|mjs|cjs))$/.exec(line);
    if (m) starts.push([i, m[1]]);
  });
  /** the file a 0-based bundle line belongs to */
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid][0] <= line) {
        found = starts[mid][1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

/** The bundle the stack runs now (scripts/serve-api.mjs builds it into a new edgeq-worker- folder). */
function bundleText() {
  const dirs = readdirSync(tmpdir())
    .filter((d) => d.startsWith("edgeq-worker-"))
    .map((d) => join(tmpdir(), d));
  const newest = dirs.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  return readFileSync(join(newest, "index.js"), "utf8");
}

/** CPU seconds used so far by each command of a process group (the stack: node running Miniflare, workerd), from /proc. */
function groupCpu(pgid, apiPort) {
  const out = new Map();
  for (const [pid, comm] of groupProcesses(pgid, apiPort)) out.set(comm, (out.get(comm) ?? 0) + cpuSeconds(pid));
  return out;
}

/** SQLite as the objects call it: workerd's built-ins behind ctx.storage.sql. */
const SQLITE = new Set(["exec", "transactionSync", "toArray", "one", "raw", "next", "columnNames", "rowsRead", "rowsWritten"]);

/** Which part of the system a frame belongs to. */
function areaOf(frame, sourceOf) {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName.startsWith("(")) return `V8 ${functionName}`;
    return SQLITE.has(functionName) ? "SQLite (storage.sql built-ins)" : `built-in: ${functionName || "(unnamed)"}`;
  }
  if (url !== "index.js") return url; // workerd's own modules (cloudflare-internal:…)
  const file = sourceOf(frame.lineNumber);
  const lib = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (lib) return lib[1];
  const m = /^(worker|durable|schema|client)\/(?:core\/)?/.exec(file);
  return m ? file.replace(/\.ts$/, "") : file || "bundle (unattributed)";
}

/** Self time (ms) by area and by function, from a V8 CPU profile. */
function selfTimes(profile, sourceOf) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const hits = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    // A delta is the time since the sample before; a long one spans a stretch the isolate was not
    // running JS (workerd does not sample then), so it counts as one interval, not as this frame's.
    const dt = Math.min(profile.timeDeltas[i] ?? 0, 2 * SAMPLE_US) / 1000;
    hits.set(profile.samples[i], (hits.get(profile.samples[i]) ?? 0) + dt);
  }
  const areas = new Map();
  const functions = new Map();
  for (const [nodeId, ms] of hits) {
    const { callFrame } = byId.get(nodeId);
    const area = areaOf(callFrame, sourceOf);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const file = callFrame.url === "index.js" ? sourceOf(callFrame.lineNumber) : callFrame.url;
    const name = `${callFrame.functionName || "(anonymous)"}${file ? ` (${file}${callFrame.url === "index.js" ? `, bundle line ${callFrame.lineNumber + 1}` : ""})` : ""}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { areas: sorted(areas), functions: sorted(functions) };
}

/** An SDK Worker waiting on "profiled" (its default transport, concurrency 16), warmed by 50 adds; `samples(n)`: n adds 25 ms apart, each timed from add() to the handler starting (ms, sorted). */
async function idleWorker(base) {
  const client = new EdgeqClient({ url: base, token: ADMIN_TOKEN });
  const queue = client.queue("profiled");
  let started;
  const worker = new Worker(client, "profiled", async () => started?.(), { concurrency: 16, waitMs: 5000 });
  const running = worker.run();
  await worker.id;
  const samples = (n) =>
    spacedSamples(n, async (i) => {
      const begun = new Promise((r) => (started = r));
      await queue.add("ping", { i });
      await begun;
    });
  await samples(50);
  return { samples, close: async () => (await worker.close(), await running) };
}

const PORT = 8793;
const { base, stop, pid } = await startStack({ port: PORT, vars: HISTORY === "off" ? { EDGEQ_HISTORY: "off" } : {}, inspect: true });
let cdp;
try {
  cdp = await inspector();
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: SAMPLE_US });
  await batchEnqueue(base, "warm", 1_000, 4, padded);
  await drain(base, "warm", 1_000);
  const idler = IDLE ? await idleWorker(base) : null;
  await sleep(1_500); // the warm-up's history flush is done

  await cdp.send("Profiler.start");
  const perf = await startPerf(pid, PORT);
  const cpuBefore = groupCpu(pid, PORT);
  const clientBefore = process.cpuUsage();
  const t0 = performance.now();
  const latency = idler ? await idler.samples(TASKS) : null;
  const enqueueRate = idler ? 0 : await batchEnqueue(base, "profiled", TASKS, ENQUEUE_ONLY ? 1 : 4, padded);
  const run = ENQUEUE_ONLY || idler ? { rate: 0 } : await drain(base, "profiled", TASKS);
  await idler?.close();
  await sleep(1_500); // the run's history flush is in the profile too
  const wallMs = performance.now() - t0;
  const cpuAfter = groupCpu(pid, PORT);
  const client = process.cpuUsage(clientBefore);
  const { profile } = await cdp.send("Profiler.stop");
  const native = await perf?.();
  const cpu = [...cpuAfter].map(([comm, s]) => [comm, s - (cpuBefore.get(comm) ?? 0)]).sort((a, b) => b[1] - a[1]);
  cpu.push(["this benchmark's client (node)", (client.user + client.system) / 1e6]);

  mkdirSync(".edgeq/profiles", { recursive: true });
  const file = `.edgeq/profiles/${IDLE ? "idle" : ENQUEUE_ONLY ? "enqueue" : "end-to-end"}-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  const bundle = bundleText();
  writeFileSync(file.replace(/\.cpuprofile$/, ".index.js"), bundle); // the lines the profile's frames point at

  const { areas: all, functions } = selfTimes(profile, bundleSources(bundle));
  const idle = wallMs - all.filter(([a]) => a !== "V8 (idle)").reduce((n, [, ms]) => n + ms, 0);
  const areas = all.filter(([a]) => a !== "V8 (idle)");
  const busy = areas.reduce((n, [, ms]) => n + ms, 0);
  const perTask = (ms) => `${fmt((ms * 1000) / TASKS, 1)} µs/task`;
  const workerdSec = cpu.find(([comm]) => comm === "workerd")?.[1] ?? 0;
  report(
    `Where the time goes: CPU profile of the Worker and its objects, ${IDLE ? "idle add() calls 25 ms apart, each leased by an SDK Worker waiting on its socket" : ENQUEUE_ONLY ? "batch enqueue alone, one caller, 100 per call" : `end to end${SOCKETS ? " over consumer sockets" : ""}`}, ${fmt(TASKS)} tasks${PAYLOAD ? ` with ${fmt(PAYLOAD)}-byte payloads` : ""}, history ${HISTORY} (npm run bench:profile)`,
    [
      latency
        ? [
            "idle add() → handler start while profiled, p50 / p95 / p99 (ms)",
            [50, 95, 99].map((p) => fmt(percentile(latency, p), 1)).join(" / "),
          ]
        : ["batch enqueue (tasks/s) / end to end (tasks/s) while profiled", `${fmt(enqueueRate)} / ${fmt(run.rate)}`],
      ["profiled wall time (ms) / isolate busy / idle (ms)", `${fmt(wallMs)} / ${fmt(busy)} / ${fmt(idle)}`],
      [
        `isolate busy per task (µs, ${IDLE ? "add, push, complete" : ENQUEUE_ONLY ? "enqueue" : "enqueue + lease + complete"} + history)`,
        fmt((busy * 1000) / TASKS, 1),
      ],
      ...cpu.map(([comm, sec]) => [`CPU during the run: ${comm} (s, per task)`, `${fmt(sec, 2)} (${fmt((sec * 1e6) / TASKS, 0)} µs)`]),
      ...(native?.parts ?? []).map(([part, share]) => [
        `workerd's CPU by part: ${part} (%, µs per task)`,
        `${fmt(100 * share, 1)} % (${fmt((share * workerdSec * 1e6) / TASKS, 0)} µs)`,
      ]),
      ...areas
        .slice(0, 16)
        .map(([a, ms]) => [`self time: ${a} (ms, % of busy, per task)`, `${fmt(ms)} (${fmt((100 * ms) / busy, 1)} %) ${perTask(ms)}`]),
      ...functions
        .filter(([f]) => !f.startsWith("(idle)"))
        .slice(0, 12)
        .map(([f, ms]) => [`top function: ${f}`, `${fmt(ms)} ms (${fmt((100 * ms) / busy, 1)} %)`]),
    ],
    [
      `V8's sampling profiler at ${SAMPLE_US} µs through workerd's inspector; self time is the time a function was on top of the stack. idle is the rest of the wall time: the isolate waiting (for I/O, for the next request).`,
      "Areas are the project's source files (attributed through the bundle's module markers), libraries by package, SQLite (the objects' storage.sql calls: exec, transactionSync, cursors), other built-ins by name, and V8's own (garbage collector; program: native work not in a JS frame).",
      "CPU during the run is each process's user + system time from /proc over the profiled window (the machine has 2 cores): workerd runs the Worker and the objects (and local D1 with EDGEQ_BENCH_D1=shared), workerd (local D1) the history database's object, its SQL and JavaScript (the D1 API the Worker calls runs in the Worker); node runs Miniflare, which starts both (no request passes through it).",
      native
        ? `workerd's CPU by part: Linux perf sampling workerd's call stacks at 999 Hz over the same window (${fmt(native.samples)} samples), each sample given to the first part its stack matches (bench/perf-native.mjs): statement journals before the SQL that writes them, SQL before commits, JavaScript last of the main thread's parts.`
        : "workerd's CPU by part: not measured (Linux perf is not installed or not allowed here; Debian's linux-perf).",
      `The raw profile is kept in ${file}, with the bundle its lines point at; open it in Chrome DevTools (Performance → Load profile).`,
    ],
  );
} finally {
  cdp?.close();
  stop();
}

#!/usr/bin/env node
// `npm run bench:dashboard`: the dashboard's budgets, in Debian's Chromium against the local stack
// (the `npm run build:app` build on Pages' local server, as `npm start` serves it):
//  - first-load JS per page: every script the page loads on a cold visit, gzip-compressed (level 6,
//    as servers send it) and summed;
//  - live event → DOM on the overview: from the API's answer to an enqueue to the moment the
//    overview's cell for that queue shows the new count (a MutationObserver in the page, wall
//    clock), with the page's own "edgeq:live-applied" performance marks alongside; quiet, and with
//    ~500 tasks/s enqueued on another queue meanwhile.
// Prints a table and appends it to docs/BENCHMARKS.md. Loopback only; bounded (BENCH_DASH_SAMPLES).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { launchChromium } from "../scripts/chromium.mjs";
import { serveDashboard } from "../scripts/dashboard.mjs";
import { ADMIN_TOKEN, call, fmt, percentile, report, sleep, startStack, tasksOf } from "./harness.mjs";

const SAMPLES = Number(process.env.BENCH_DASH_SAMPLES ?? 200);
const API_PORT = 8795;
const DASH_PORT = 8796;
const DASH = `http://127.0.0.1:${DASH_PORT}`;

async function startDashboard(base) {
  const dir = mkdtempSync(join(tmpdir(), "edgeq-bench-dash-"));
  const child = serveDashboard({ port: DASH_PORT, api: base, token: ADMIN_TOKEN, dir, stdio: "ignore" });
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", stop);
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(DASH)).ok) return stop;
    } catch {}
    await sleep(250);
  }
  stop();
  throw new Error(`the dashboard did not answer on ${DASH}`);
}

/** Scripts a cold visit of `path` loads (new context: no cache), gzip bytes summed, and how many files. */
async function firstLoadJs(browser, path) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const scripts = new Map();
  page.on("response", async (r) => {
    if (r.request().resourceType() === "script" || r.url().endsWith(".js"))
      scripts.set(
        r.url(),
        r.body().catch(() => Buffer.alloc(0)),
      );
  });
  await page.goto(`${DASH}${path}`, { waitUntil: "networkidle" });
  await page.locator("main h1").first().waitFor();
  let bytes = 0;
  for (const body of scripts.values()) bytes += gzipSync(await body, { level: 6 }).length;
  await context.close();
  return { bytes, files: scripts.size };
}

const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  return `${fmt(percentile(s, 50), 0)} / ${fmt(percentile(s, 95), 0)} / ${fmt(percentile(s, 99), 0)}`;
};

/** Enqueues one task at a time on `queue` and measures the enqueue being sent → the overview's cell showing it. */
async function eventToDom(page, base, queue, samples) {
  await page.evaluate((q) => {
    const w = globalThis;
    w.__seen = [];
    w.__marks = [];
    new PerformanceObserver((list) => {
      for (const m of list.getEntries()) if (m.detail?.queue === q) w.__marks.push(performance.timeOrigin + m.startTime);
    }).observe({ type: "mark" });
    new MutationObserver(() => {
      const cell = document.querySelector(`tr[data-queue="${q}"] td[data-status="pending"]`);
      const n = Number(cell?.textContent);
      if (cell && n !== w.__seen.at(-1)?.n) w.__seen.push({ n, at: performance.timeOrigin + performance.now() });
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  }, queue);
  const dom = [];
  const marks = [];
  const start = Number(await page.locator(`tr[data-queue="${queue}"] td[data-status="pending"]`).textContent());
  for (let i = start + 1; i <= start + samples; i++) {
    const sent = Date.now();
    await call(base, "POST", `/api/v1/queues/${queue}/tasks`, { name: "one" });
    const seenAt = await page
      .waitForFunction((n) => globalThis.__seen.find((s) => s.n === n)?.at, i, { polling: "raf", timeout: 10_000 })
      .then((h) => h.jsonValue());
    dom.push(seenAt - sent);
    const mark = await page.evaluate((t) => globalThis.__marks.find((m) => m >= t), sent);
    if (mark !== undefined) marks.push(mark - sent);
    await sleep(60 + Math.random() * 60);
  }
  return { dom, marks };
}

const { base, stop } = await startStack({ port: API_PORT, vars: { EDGEQ_CORS_ORIGINS: DASH } });
let stopDashboard = () => {};
const browser = await launchChromium();
try {
  stopDashboard = await startDashboard(base);
  const seeded = await call(base, "POST", "/api/v1/queues/seed/tasks", { name: "seed", payload: { n: 1 } });
  const pages = ["/", "/tasks", `/tasks/${seeded.id}`, "/dead-letters", "/queues", "/queues/seed", "/workers", "/analytics", "/reports"];
  const sizes = [];
  for (const p of pages) sizes.push([p, await firstLoadJs(browser, p)]);

  const page = await browser.newPage();
  await page.goto(DASH);
  await page.getByText("Live", { exact: true }).waitFor({ timeout: 15_000 });
  await call(base, "POST", "/api/v1/queues/quiet/tasks", { name: "zero" }); // the row exists before timing starts
  await page.locator('tr[data-queue="quiet"]').waitFor();
  const quiet = await eventToDom(page, base, "quiet", SAMPLES);

  // Busy: ~500 tasks/s enqueued on another queue while the samples are taken.
  let busy = true;
  const load = (async () => {
    for (let k = 0; busy; k++) {
      await call(base, "POST", "/api/v1/queues/busy/tasks/batch", { tasks: tasksOf(50, k * 50) });
      await sleep(100);
    }
  })();
  await call(base, "POST", "/api/v1/queues/loud/tasks", { name: "zero" });
  await page.locator('tr[data-queue="loud"]').waitFor();
  const loud = await eventToDom(page, base, "loud", SAMPLES);
  busy = false;
  await load;
  const enqueuedBusy = (await call(base, "GET", "/api/v1/queues/busy")).counts.pending;

  report(
    "Dashboard: first-load JS and live event → DOM",
    [
      ...sizes.map(([p, s]) => [
        `first-load JS, ${p.startsWith("/tasks/") ? "/tasks/[id]" : p === "/queues/seed" ? "/queues/[name]" : p} (gzip, files)`,
        `${fmt(s.bytes / 1024, 1)} KB, ${s.files}`,
      ]),
      ["event → DOM, quiet, p50 / p95 / p99 (ms)", stats(quiet.dom)],
      ["event → applied mark, quiet, p50 / p95 / p99 (ms)", stats(quiet.marks)],
      ["event → DOM, ~500 tasks/s elsewhere, p50 / p95 / p99 (ms)", stats(loud.dom)],
      ["event → applied mark, ~500 tasks/s elsewhere, p50 / p95 / p99 (ms)", stats(loud.marks)],
      ["samples per case", SAMPLES],
      ["tasks enqueued on the busy queue meanwhile", enqueuedBusy],
    ],
    [
      "First-load JS: every script a cold visit loads (the SvelteKit start and app chunks, the layout, the page and what it imports), gzip level 6.",
      "Event → DOM: from the enqueue request being sent (so the API call's own few ms are counted in) to the overview's cell for that queue showing the new count (a MutationObserver in the page, wall clock; the page and the benchmark share the machine's clock). The mark is the page's `edgeq:live-applied` performance mark for that queue's delta, set when the live message is applied to the page's state.",
    ],
  );
} finally {
  await browser.close();
  stopDashboard();
  stop();
}

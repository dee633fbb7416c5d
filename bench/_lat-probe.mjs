import { call, percentile, sleep, startStack } from "./harness.mjs";
const mode = process.argv[2] ?? "dev";
const vars = mode.includes("nohist") ? { EDGEQ_HISTORY_FLUSH_MS: "600000" } : {};
const { base, stop } = await startStack({ port: 8811, vars, wranglerDev: !mode.startsWith("direct") });
try {
  const q = "lat";
  const sentAt = new Map();
  const lat = [], enq = [], health = [];
  let done = false;
  const consumer = (async () => {
    while (!done) {
      const { leases } = await call(base, "POST", `/api/v1/queues/${q}/leases`, { workerId: "lat", max: 1, waitMs: 2000 });
      const now = performance.now();
      for (const l of leases) {
        if (sentAt.has(l.task.payload?.n)) lat.push(now - sentAt.get(l.task.payload.n));
        await call(base, "POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken });
      }
    }
  })();
  await call(base, "POST", `/api/v1/queues/${q}/tasks`, { name: "warm" });
  await sleep(300);
  for (let i = 0; i < 60; i++) { await call(base, "POST", `/api/v1/queues/${q}/tasks`, { name: "w", payload: { n: -1 } }); await sleep(15); }
  lat.length = 0;
  const N = Number(process.env.N ?? 500);
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    sentAt.set(i, t);
    await call(base, "POST", `/api/v1/queues/${q}/tasks`, { name: "lat", payload: { n: i } });
    enq.push(performance.now() - t);
    await sleep(15);
  }
  while (lat.length < N) await sleep(10);
  done = true;
  for (let i = 0; i < 300; i++) { const t = performance.now(); await fetch(`${base}/health`).then((r) => r.text()); health.push(performance.now() - t); await sleep(5); }
  const p = (a) => { const s = [...a].sort((x, y) => x - y); return [50, 90, 95, 99].map((k) => percentile(s, k).toFixed(1)).join(" / ") + " max " + s.at(-1).toFixed(1); };
  console.log(mode, "enqueue→lease p50/90/95/99:", p(lat));
  console.log(mode, "enqueue call           :", p(enq));
  console.log(mode, "health                 :", p(health));
  await consumer.catch(() => {});
} finally { stop(); }
process.exit(0);

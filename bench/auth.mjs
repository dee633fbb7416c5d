#!/usr/bin/env node
// What authentication costs per request: the same cheap call made with the
// bootstrap token (no lookup), an API key (one AccessKey DO call that verifies
// and counts) and an HS256 JWT (signature check plus the same DO call).
import { sign } from "hono/jwt";
import { call, fmt, percentile, pool, report, startStack } from "./harness.mjs";

const N = Number(process.env.BENCH_AUTH_REQUESTS ?? 2000);
const SECRET = `bench-jwt-${Math.random().toString(36).slice(2)}-0123456789`;

// Limits high enough that the run measures authentication, not refusals.
const { base, stop } = await startStack({
  vars: { EDGEQ_JWT_SECRET: SECRET, EDGEQ_RATE_PER_MINUTE: "1000000", EDGEQ_RATE_PER_HOUR: "100000000" },
});
try {
  const [task] = (await call(base, "POST", "/api/v1/queues/bench-auth/tasks/batch", { tasks: [{ name: "probe" }] })).tasks;
  const { key } = await call(base, "POST", "/api/v1/keys", { role: "read-only", name: "bench" });
  const jwt = await sign(
    { sub: "bench", tenant: "default", role: "read-only", exp: Math.floor(Date.now() / 1000) + 3600 },
    SECRET,
    "HS256",
  );
  const credentials = [
    ["bootstrap admin token", undefined, N],
    ["API key", key, N],
    ["JWT (HS256)", jwt, N],
  ];
  const rows = [];
  const results = {};
  for (const [label, token, n] of credentials) {
    for (let i = 0; i < 50 && i < n; i++) await call(base, "GET", `/api/v1/tasks/${task.id}`, undefined, token); // warm
    const latencies = [];
    const t0 = performance.now();
    await pool(n, 1, async () => {
      const s = performance.now();
      await call(base, "GET", `/api/v1/tasks/${task.id}`, undefined, token);
      latencies.push(performance.now() - s);
    });
    const seconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    results[label] = percentile(latencies, 50);
    rows.push([
      `${label}: p50 / p99 ms (sequential, n=${n})`,
      `${fmt(percentile(latencies, 50), 2)} / ${fmt(percentile(latencies, 99), 2)}`,
    ]);
    rows.push([`${label}: requests/s (sequential)`, fmt(n / seconds)]);
  }
  rows.push(["added by an API key, p50 (ms)", fmt(results["API key"] - results["bootstrap admin token"], 2)]);
  rows.push(["added by a JWT, p50 (ms)", fmt(results["JWT (HS256)"] - results["bootstrap admin token"], 2)]);
  report("Authentication cost (npm run bench)", rows, [
    "GET /api/v1/tasks/{id} (one shard call) with each credential; an API key or JWT adds one AccessKey Durable Object call that verifies and counts the request.",
  ]);
} finally {
  stop();
}

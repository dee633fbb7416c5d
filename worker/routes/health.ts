import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { STATUSES } from "../../schema/shard";
import type { AppEnv } from "../env";
import { accessObject } from "../keys";
import { label, requestMetrics } from "../metrics";
import { auth, permit } from "../middleware/auth";
import { hubOf } from "../../durable/metrics-hub";
import { errors, jsonResponse } from "../openapi";
import { registryOf, shardOf, shardStats } from "../shards";

export const health = new OpenAPIHono<AppEnv>();

/** How long one readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 2000;

health.openapi(
  createRoute({
    method: "get",
    path: "/health",
    tags: ["health"],
    summary: "Liveness (open)",
    security: [],
    responses: { 200: jsonResponse(z.object({ status: z.literal("ok") }), "the Worker is up") },
  }),
  (c) => c.json({ status: "ok" as const }, 200),
);

const Check = z.object({ ok: z.boolean(), ms: z.number(), error: z.string().optional() });
const Readiness = z.object({ status: z.enum(["ready", "degraded"]), checks: z.record(z.string(), Check) }).openapi("Readiness");

async function timed(run: () => Promise<unknown>): Promise<z.infer<typeof Check>> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | null = null;
  try {
    await Promise.race([
      run(),
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)),
      ),
    ]);
    return { ok: true, ms: Date.now() - started };
  } catch (e) {
    return { ok: false, ms: Date.now() - started, error: e instanceof Error ? e.message : String(e) };
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

health.openapi(
  createRoute({
    method: "get",
    path: "/health/ready",
    tags: ["health"],
    summary: "Readiness: each Durable Object namespace, D1 and KV answer",
    middleware: [auth(), permit("read")] as const,
    responses: {
      200: jsonResponse(Readiness, "every dependency answered"),
      503: jsonResponse(Readiness, "at least one dependency failed or timed out"),
      ...errors(),
    },
  }),
  async (c) => {
    const env = c.env;
    const probe = "health:probe";
    const entries = await Promise.all(
      Object.entries({
        queueShard: () => shardOf(env, probe, probe, 0).stats(),
        queueRegistry: () => registryOf(env, probe).find(probe),
        accessKey: () => accessObject(env, probe).info(),
        d1: () => env.DB.prepare("SELECT 1").first(),
        kv: () => env.CACHE.get(probe),
      }).map(async ([name, run]) => [name, await timed(run)] as const),
    );
    const checks = Object.fromEntries(entries);
    const ready = entries.every(([, r]) => r.ok);
    return c.json({ status: ready ? ("ready" as const) : ("degraded" as const), checks }, ready ? 200 : 503);
  },
);

health.openapi(
  createRoute({
    method: "get",
    path: "/metrics",
    tags: ["health"],
    summary: "Prometheus metrics of the caller's tenant",
    description:
      "Queue depth per status; enqueued, leased, completed, failed, retried, expired and cancelled totals per queue (since each shard object started); history: rows set aside, lag and D1 rows written per queue; analytics cache hits and misses; HTTP requests and latencies of the answering isolate.",
    middleware: [auth(), permit("metrics")] as const,
    responses: { 200: { description: "Prometheus text format", content: { "text/plain": { schema: z.string() } } }, ...errors() },
  }),
  async (c) => {
    const tenant = c.var.tenant;
    const queues = await registryOf(c.env, tenant).list(undefined, 1000);
    const depth = ["# HELP edgeq_queue_tasks Tasks held by the queue's shards, by status.", "# TYPE edgeq_queue_tasks gauge"];
    const totals = new Map<string, string[]>();
    const dead = ["# HELP edgeq_mail_dead Messages between shards that failed every delivery attempt.", "# TYPE edgeq_mail_dead gauge"];
    const history = [
      "# HELP edgeq_history_dead_rows History rows D1 refused or that could not be made, set aside in the queue's shards.",
      "# TYPE edgeq_history_dead_rows gauge",
    ];
    const historyLag = [
      "# HELP edgeq_history_lag_seconds Age of the oldest task event not yet in D1 history (0: none waiting).",
      "# TYPE edgeq_history_lag_seconds gauge",
    ];
    const historyRows = [
      "# HELP edgeq_history_rows_written_total Rows D1 reported written for the queue's history since each shard object started.",
      "# TYPE edgeq_history_rows_written_total counter",
    ];
    const now = Date.now();
    for (const q of queues) {
      const shards = await shardStats(c.env, tenant, q);
      dead.push(`edgeq_mail_dead{queue="${label(q.name)}"} ${shards.reduce((a, s) => a + s.deadMail, 0)}`);
      history.push(`edgeq_history_dead_rows{queue="${label(q.name)}"} ${shards.reduce((a, s) => a + s.history.dead, 0)}`);
      historyRows.push(
        `edgeq_history_rows_written_total{queue="${label(q.name)}"} ${shards.reduce((a, s) => a + s.history.rowsWritten, 0)}`,
      );
      const oldest = Math.min(...shards.map((s) => s.history.waitingSince ?? now));
      historyLag.push(`edgeq_history_lag_seconds{queue="${label(q.name)}"} ${Math.max(0, (now - oldest) / 1000)}`);
      for (const status of STATUSES) {
        const n = shards.reduce((a, s) => a + (s.counts[status] ?? 0), 0);
        depth.push(`edgeq_queue_tasks{queue="${label(q.name)}",status="${status}"} ${n}`);
      }
      for (const key of Object.keys(shards[0]?.totals ?? {}) as (keyof (typeof shards)[0]["totals"])[]) {
        const n = shards.reduce((a, s) => a + s.totals[key], 0);
        const lines = totals.get(key) ?? [];
        lines.push(`edgeq_tasks_${key}_total{queue="${label(q.name)}"} ${n}`);
        totals.set(key, lines);
      }
    }
    const body = [
      ...depth,
      ...dead,
      ...history,
      ...historyLag,
      ...historyRows,
      ...[...totals].flatMap(([key, lines]) => [
        `# HELP edgeq_tasks_${key}_total Tasks ${key} since each shard object started.`,
        `# TYPE edgeq_tasks_${key}_total counter`,
        ...lines,
      ]),
      ...(await cacheMetrics(c.env, tenant)),
      ...requestMetrics(),
    ].join("\n");
    return c.text(`${body}\n`, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  },
);

/** The tenant's analytics cache counters (kept by its MetricsHub). */
async function cacheMetrics(env: Env, tenant: string): Promise<string[]> {
  const { hits, misses } = await hubOf(env, tenant).cacheStats();
  return [
    "# HELP edgeq_analytics_cache_hits_total Analytics answers served from the KV cache.",
    "# TYPE edgeq_analytics_cache_hits_total counter",
    `edgeq_analytics_cache_hits_total ${hits}`,
    "# HELP edgeq_analytics_cache_misses_total Analytics answers computed in D1 (then cached).",
    "# TYPE edgeq_analytics_cache_misses_total counter",
    `edgeq_analytics_cache_misses_total ${misses}`,
  ];
}

import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { hubOf } from "../../durable/metrics-hub";
import { analyticsVersionKey } from "../../durable/analytics-book";
import {
  CacheStats,
  Distributions,
  DistributionsQuery,
  Performance,
  PerformanceQuery,
  Trends,
  TrendsQuery,
} from "../../schema/api-analytics";
import { distributionQuery, distributions, performance, trendQuery, trends } from "../analytics";
import type { AppEnv } from "../env";
import { hex } from "../keys";
import { permit } from "../middleware/auth";
import { errors, jsonResponse } from "../openapi";

/**
 * /analytics: computed in D1 (worker/analytics.ts), answered from KV when the
 * same question was asked of the same data. A cache key carries the tenant,
 * its data version (KV, moved by the tenant's MetricsHub when shards write
 * history, at most once a second: new data is a new key, nothing is ever
 * listed or purged) and the query with its defaults filled in; entries expire
 * after a TTL by bucket size. A hit reads KV only, never D1. The cached body
 * is the computed body, byte for byte.
 */
export const analytics = new OpenAPIHono<AppEnv>();

/** KV keeps an entry at least 60 s; longer for coarser buckets, whose answers change less. */
const TTL = { minute: 60, hour: 300, day: 3_600 } as const;

const sha1 = async (text: string) => hex(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text)));

/** The answer to `query` on `endpoint`: from KV (x-cache: HIT) or computed and stored (MISS). */
async function cached(
  c: Context<AppEnv>,
  endpoint: string,
  query: object,
  ttl: number,
  compute: () => Promise<unknown>,
): Promise<Response> {
  const tenant = c.var.tenant;
  const t0 = Date.now();
  const version = (await c.env.CACHE.get(analyticsVersionKey(tenant))) ?? "0";
  const t1 = Date.now();
  const key = `analytics:${encodeURIComponent(tenant)}:${version}:${endpoint}:${JSON.stringify(query)}`;
  let body = await c.env.CACHE.get(key);
  const t2 = Date.now();
  const hit = body !== null;
  if (body === null) {
    body = JSON.stringify(await compute());
    c.executionCtx.waitUntil(c.env.CACHE.put(key, body, { expirationTtl: ttl }).catch(() => undefined));
  }
  c.executionCtx.waitUntil(
    hubOf(c.env, tenant)
      .countCache(hit)
      .catch(() => undefined),
  );
  const etag = `"${await sha1(body)}"`;
  // Server-Timing: where the time went (browsers' devtools show it).
  const timing = `version;dur=${t1 - t0}, kv;dur=${t2 - t1}${hit ? "" : `, compute;dur=${Date.now() - t2}`}`;
  const headers = {
    "content-type": "application/json",
    "x-cache": hit ? "HIT" : "MISS",
    etag,
    "cache-control": "private, no-cache",
    "server-timing": timing,
  };
  const match = (c.req.header("if-none-match") ?? "").split(",").map((t) => t.trim().replace(/^W\//, ""));
  if (match.includes(etag) || match.includes("*")) return new Response(null, { status: 304, headers });
  return new Response(body, { status: 200, headers });
}

const CACHED =
  "Answered from the KV cache when the same query was asked since the tenant's history last changed (`x-cache: HIT`, else `MISS`); `ETag` / `If-None-Match` give 304.";

analytics.openapi(
  createRoute({
    method: "get",
    path: "/analytics/trends",
    tags: ["analytics"],
    summary: "Enqueued, completed and failed per bucket, with wait and run time percentiles",
    description: `From the rollups the history flush writes: a task counts as enqueued in the bucket of its creation and as completed or failed in the bucket of its finish. Percentiles are within 5 % + 1 ms (log-scale histogram). ${CACHED}`,
    middleware: [permit("read")] as const,
    request: { query: TrendsQuery },
    responses: { 200: jsonResponse(Trends, "one item per bucket, empty buckets included"), ...errors(400) },
  }),
  async (c) => {
    const q = trendQuery(c.req.valid("query"), Date.now());
    return cached(c, "trends", q, TTL[q.bucket], () => trends(c.env.DB, c.var.tenant, q)) as never;
  },
);

analytics.openapi(
  createRoute({
    method: "get",
    path: "/analytics/distributions",
    tags: ["analytics"],
    summary: "The tasks created in a range, counted by status, priority, band, queue, worker and name",
    description: `Each field's 100 largest keys; the rest are summed under \`(other)\`. ${CACHED}`,
    middleware: [permit("read")] as const,
    request: { query: DistributionsQuery },
    responses: { 200: jsonResponse(Distributions, "counts by field"), ...errors(400) },
  }),
  async (c) => {
    const q = distributionQuery(c.req.valid("query"), Date.now());
    return cached(c, "distributions", q, TTL.minute, () => distributions(c.env.DB, c.var.tenant, q)) as never;
  },
);

analytics.openapi(
  createRoute({
    method: "get",
    path: "/analytics/performance",
    tags: ["analytics"],
    summary: "Per queue: depth, throughput, oldest pending, failure / retry / dead-letter rates; workers and their utilisation",
    description: `Depth and oldest pending come from the queues' shards, the last minute and hour from the rollups, workers from their heartbeats (utilisation: busy time reported / time since registering × concurrency). ${CACHED} Any change to a queue reaches history within about a second and makes a new key.`,
    middleware: [permit("read")] as const,
    request: { query: PerformanceQuery },
    responses: { 200: jsonResponse(Performance, "queues and workers"), ...errors(400, 404) },
  }),
  async (c) => {
    const { queue } = c.req.valid("query");
    const now = Date.now();
    // The key's time is the minute: the last minute's throughput moves with the clock, not only with the data.
    return cached(c, "performance", { queue, minute: Math.floor(now / 60_000) }, TTL.minute, () =>
      performance(c.env, c.var.tenant, queue, now),
    ) as never;
  },
);

analytics.openapi(
  createRoute({
    method: "get",
    path: "/analytics/cache",
    tags: ["analytics"],
    summary: "The analytics cache's hits and misses",
    middleware: [permit("read")] as const,
    responses: { 200: jsonResponse(CacheStats, "counters"), ...errors() },
  }),
  async (c) => c.json(await hubOf(c.env, c.var.tenant).cacheStats(), 200),
);

import { z } from "@hono/zod-openapi";
import { time } from "./api-history";
import { QueueName } from "./api-tasks";

/** The wire contract of /analytics; see schema/api.ts. */

export const BUCKETS = ["minute", "hour", "day"] as const;
export type Bucket = (typeof BUCKETS)[number];
/** Buckets one trend may span at most. */
export const BUCKETS_MAX = 1_500;

export const TrendsQuery = z
  .object({
    from: time.optional().openapi({ description: "start (default: `to` minus 24 hours); rounded down to its bucket" }),
    to: time.optional().openapi({ description: "end, exclusive (default: now)" }),
    bucket: z.enum(BUCKETS).default("hour"),
    queue: QueueName.optional(),
  })
  .openapi("TrendsQuery");
export type TrendsFilters = z.infer<typeof TrendsQuery>;

const Percentiles = z
  .object({ p50: z.number().int().nullable(), p95: z.number().int().nullable(), p99: z.number().int().nullable() })
  .openapi("Percentiles", {
    description: "ms; within 5 % + 1 ms of the exact value (log-scale histogram); null when no task finished in the bucket",
  });

export const Trends = z
  .object({
    bucket: z.enum(BUCKETS),
    from: z.string(),
    to: z.string(),
    items: z.array(
      z.object({
        at: z.string().openapi({ description: "the bucket's start" }),
        enqueued: z.number().int().openapi({ description: "tasks created in the bucket" }),
        completed: z.number().int().openapi({ description: "tasks that completed in the bucket" }),
        failed: z.number().int().openapi({ description: "tasks that failed for good (dead letters) in the bucket" }),
        completionRate: z
          .number()
          .nullable()
          .openapi({ description: "completed / (completed + failed); cancelled excluded; null when neither" }),
        failureRate: z.number().nullable(),
        waitMs: Percentiles.openapi({
          description: "from when a task could run to its (last) start, of the tasks that finished in the bucket",
        }),
        runMs: Percentiles.openapi({ description: "from its (last) start to its finish, of the tasks that finished in the bucket" }),
      }),
    ),
  })
  .openapi("Trends");

export const DistributionsQuery = z
  .object({
    from: time.optional().openapi({ description: "tasks created from (default: `to` minus 24 hours)" }),
    to: time.optional().openapi({ description: "tasks created before (default: now)" }),
    queue: QueueName.optional(),
  })
  .openapi("DistributionsQuery");
export type DistributionsFilters = z.infer<typeof DistributionsQuery>;

const CountsBy = z.record(z.string(), z.number().int());
export const Distributions = z
  .object({
    from: z.string(),
    to: z.string(),
    total: z.number().int(),
    status: CountsBy,
    priority: CountsBy,
    band: CountsBy.openapi({ description: "high (8–10), medium (4–7), low (1–3)" }),
    queue: CountsBy,
    worker: CountsBy.openapi({ description: "the consumer that last ran each task; tasks never run are left out" }),
    name: CountsBy,
  })
  .openapi("Distributions", { description: "Counts of the tasks created in the range, by each field (their status now)." });

export const CacheStats = z
  .object({ hits: z.number().int(), misses: z.number().int(), hitRate: z.number().nullable() })
  .openapi("AnalyticsCache", { description: "the tenant's analytics cache since its counters started; hitRate null before any request" });

export const PerformanceQuery = z.object({ queue: QueueName.optional() }).openapi("PerformanceQuery");

const rate = (description: string) =>
  z
    .number()
    .nullable()
    .openapi({ description: `${description}; null when nothing finished` });
export const Performance = z
  .object({
    at: z.string(),
    queues: z.array(
      z.object({
        name: z.string(),
        depth: z.record(z.string(), z.number().int()).openapi({ description: "tasks by status now (from the shards)" }),
        oldestPendingMs: z
          .number()
          .int()
          .nullable()
          .openapi({ description: "how long the task pending longest has been ready; null: none pending" }),
        throughput: z
          .object({ lastMinute: z.number(), lastHour: z.number() })
          .openapi({ description: "tasks finished (completed or failed) per second, over the last minute and hour" }),
        failureRate: rate("runs that failed (retried or failed for good) / runs, last hour"),
        retryRate: rate("retries / tasks finished, last hour"),
        deadLetterRate: rate("tasks failed for good / tasks finished, last hour"),
      }),
    ),
    workers: z.object({
      active: z.number().int(),
      idle: z.number().int(),
      lost: z.number().int(),
      utilisation: z
        .number()
        .nullable()
        .openapi({ description: "busy time / available time (lifetime × concurrency) over all the workers; null: none" }),
      items: z.array(
        z.object({
          id: z.string(),
          name: z.string(),
          status: z.enum(["active", "idle", "lost"]),
          utilisation: z.number().nullable(),
          busyMs: z.number().int(),
        }),
      ),
    }),
  })
  .openapi("Performance");

import { z } from "@hono/zod-openapi";
import { BackoffSchema, DAY, Json, LIMITS, MaxAttempts, QueueName, TimeoutMs } from "./api-tasks";
import { STATUSES, type Status } from "./shard";

/** The wire contract of queues: settings and flow control, schedules, groups, stats, listings. */

export const StartLimitSchema = z
  .object({ count: z.number().int().min(1).max(1_000_000), perMs: z.number().int().min(100).max(DAY) })
  .strict()
  .openapi("StartLimit", { description: "at most `count` task starts in any `perMs` window", example: { count: 50, perMs: 1000 } });

export const GroupLimitsSchema = z
  .object({
    concurrency: z.number().int().min(1).max(1_000_000).nullable().optional(),
    startLimit: StartLimitSchema.nullable().optional(),
  })
  .strict()
  .openapi("GroupLimits");

export const SettingsSchema = z
  .object({
    version: z.number().int().openapi({ description: "grows with every change" }),
    shards: z.number().int(),
    paused: z.boolean(),
    defaults: z.object({ maxAttempts: z.number().int(), backoff: BackoffSchema, timeoutMs: z.number().int() }),
    retentionDays: z.number().int(),
    idempotencyWindowMs: z.number().int(),
    concurrency: z.number().int().nullable().openapi({ description: "most tasks running at once across the queue" }),
    startLimit: StartLimitSchema.nullable(),
    groupLimits: z.object({ default: GroupLimitsSchema.nullable(), overrides: z.record(z.string(), GroupLimitsSchema) }),
  })
  .openapi("QueueSettings");

export const SettingsPatch = z
  .object({
    shards: z.number().int().min(1).max(LIMITS.shards).optional().openapi({ description: "may only grow" }),
    defaults: z
      .object({ maxAttempts: MaxAttempts.optional(), backoff: BackoffSchema.optional(), timeoutMs: TimeoutMs.optional() })
      .strict()
      .optional(),
    retentionDays: z.number().int().min(1).max(365).optional(),
    idempotencyWindowMs: z
      .number()
      .int()
      .min(1000)
      .max(30 * DAY)
      .optional(),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .nullable()
      .optional()
      .openapi({ description: "most tasks running at once across the queue; null removes the cap" }),
    startLimit: StartLimitSchema.nullable().optional().openapi({ description: "most task starts per interval; null removes it" }),
    groupLimits: z
      .object({
        default: GroupLimitsSchema.nullable().optional().openapi({ description: "limits of every group without an override" }),
        overrides: z
          .record(z.string().min(1).max(200), GroupLimitsSchema.nullable())
          .optional()
          .openapi({ description: "limits by group key, merged into the current ones; null removes an override" }),
      })
      .strict()
      .optional(),
  })
  .strict()
  .openapi("QueueSettingsPatch");
export type SettingsPatchInput = z.infer<typeof SettingsPatch>;

export const ScheduleTaskSchema = z
  .object({
    name: z.string().min(1).max(200),
    payload: Json.optional(),
    priority: z.number().int().min(1).max(10).optional(),
    maxAttempts: MaxAttempts.optional(),
    backoff: BackoffSchema.optional(),
    timeoutMs: TimeoutMs.optional(),
    groupKey: z.string().min(1).max(200).optional(),
    tags: z.array(z.string().min(1).max(64)).max(LIMITS.tags).optional(),
  })
  .strict()
  .openapi("ScheduleTask");

export const ScheduleBody = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/)
      .openapi({ example: "nightly-report" }),
    cron: z.string().min(1).max(200).openapi({ description: "5 fields, or 6 with seconds first", example: "0 2 * * *" }),
    timezone: z.string().min(1).max(64).default("UTC").openapi({ description: "IANA time zone", example: "Europe/Berlin" }),
    task: ScheduleTaskSchema,
    overlap: z
      .enum(["skip", "allow"])
      .default("allow")
      .openapi({ description: "skip: no new run while the previous one has not finished" }),
  })
  .strict()
  .openapi("ScheduleCreate");

export const ScheduleSchema = z
  .object({
    id: z.string(),
    queue: z.string(),
    cron: z.string(),
    timezone: z.string(),
    task: ScheduleTaskSchema,
    overlap: z.enum(["skip", "allow"]),
    paused: z.boolean(),
    nextRuns: z.array(z.string()).openapi({ description: "the next five fire times (none while paused)" }),
    lastFireAt: z.string().nullable(),
    lastTaskId: z.string().nullable(),
    fired: z.number().int(),
    skipped: z.number().int().openapi({ description: "fires not run: the previous run still going (skip), or missed during downtime" }),
    createdAt: z.string(),
  })
  .openapi("Schedule");
export const ScheduleList = z.object({ items: z.array(ScheduleSchema) }).openapi("ScheduleList");

export const GroupList = z
  .object({
    items: z.array(z.object({ group: z.string(), pending: z.number().int(), running: z.number().int() })),
  })
  .openapi("GroupList");

export const Counts = z.record(z.string(), z.number().int()).openapi("StatusCounts");

export const QueueSchema = z.object({ name: QueueName, settings: SettingsSchema, counts: Counts, createdAt: z.string() }).openapi("Queue");
export const QueueStats = QueueSchema.extend({
  shards: z.array(
    z.object({
      shard: z.number().int(),
      counts: Counts,
      oldestReadyAt: z.string().nullable().openapi({ description: "when the task pending longest became ready (null: none pending)" }),
      totals: z.record(z.string(), z.number().int()).openapi({ description: "events since the shard object started" }),
      requests: z.number(),
      socketMessages: z
        .number()
        .int()
        .openapi({ description: "consumer socket messages received since the object started (billed at 20:1)" }),
      deadMail: z.number().int().openapi({ description: "messages to other shards that failed every delivery attempt" }),
      rowsRead: z.number(),
      rowsWritten: z.number(),
      storageBytes: z.number().int().openapi({ description: "the shard's SQLite database size" }),
      live: z
        .object({ pushes: z.number().int(), failures: z.number().int() })
        .openapi({ description: "pushes to the tenant's live metrics hub since the object started, and those that failed" }),
      history: z
        .object({
          flushes: z.number().int(),
          events: z.number().int().openapi({ description: "outbox events sent to D1" }),
          rowsWritten: z.number().int().openapi({ description: "rows D1 reported written for them" }),
          rollupRows: z.number().int().openapi({ description: "of those, rows of analytics rollups" }),
          failures: z.number().int().openapi({ description: "flushes that found D1 unavailable" }),
          failing: z.number().int().openapi({ description: "such flushes in a row, now" }),
          dead: z.number().int().openapi({ description: "history rows set aside (D1 refused them)" }),
          prepareMs: z.number().openapi({ description: "time the shard spent reading and planning batches" }),
          writeMs: z.number().openapi({ description: "time batches took to reach D1 and be written" }),
          waitingSince: z.string().nullable().openapi({ description: "when the oldest event not yet in history happened" }),
        })
        .openapi({ description: "the shard's flushes to D1 history since the object started" }),
    }),
  ),
}).openapi("QueueStats");
export const QueueList = z.object({ items: z.array(QueueSchema), nextCursor: z.string().nullable() }).openapi("QueueList");

export const ListQuery = z.object({
  status: z.enum(STATUSES as [Status, ...Status[]]).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(200).optional(),
});

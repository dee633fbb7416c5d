import { z } from "@hono/zod-openapi";
import { ROLES } from "./access";
import { QueueName, TaskIdSchema } from "./api-tasks";

/** The wire contract of access and consumers: rate limits, API keys, registered workers. */

export const LimitsSchema = z
  .object({ perMinute: z.number().int().min(1).max(1_000_000), perHour: z.number().int().min(1).max(100_000_000) })
  .strict()
  .openapi("RateLimits", { example: { perMinute: 100, perHour: 1000 } });

export const KeyCreateBody = z
  .object({
    tenant: QueueName.optional().openapi({
      description: "defaults to the caller's tenant; only the bootstrap admin token may name another",
    }),
    role: z.enum(ROLES),
    name: z.string().min(1).max(200).openapi({ example: "billing-producer" }),
    limits: LimitsSchema.optional(),
  })
  .strict()
  .openapi("KeyCreate");

export const KeySchema = z
  .object({
    id: z.string(),
    tenant: z.string(),
    role: z.enum(ROLES),
    name: z.string(),
    limits: LimitsSchema.nullable(),
    createdAt: z.string(),
  })
  .openapi("ApiKey");
export const KeyCreated = KeySchema.extend({
  key: z.string().openapi({ description: "the key itself: shown only in this response", example: "eq_3f2a…_9c1d…" }),
}).openapi("ApiKeyCreated");
export const KeyList = z.object({ items: z.array(KeySchema), nextCursor: z.string().nullable() }).openapi("ApiKeyList");

export const WorkerRegisterBody = z
  .object({
    name: z.string().min(1).max(200).openapi({ example: "billing-worker-1" }),
    queues: z.array(QueueName).min(1).max(100),
    concurrency: z.number().int().min(1).max(10_000).default(1),
  })
  .strict()
  .openapi("WorkerRegister");

export const WorkerHeartbeatBody = z
  .object({
    currentTasks: z.array(TaskIdSchema).max(10_000).default([]).openapi({ description: "ids of the tasks in hand now" }),
    completed: z.number().int().min(0).max(1_000_000).default(0).openapi({ description: "completed since the last heartbeat" }),
    failed: z.number().int().min(0).max(1_000_000).default(0).openapi({ description: "failed since the last heartbeat" }),
    busyMs: z
      .number()
      .int()
      .min(0)
      .max(86_400_000)
      .default(0)
      .openapi({ description: "time spent running tasks since the last heartbeat" }),
  })
  .strict()
  .openapi("WorkerHeartbeat");

export const WorkerSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    queues: z.array(z.string()),
    concurrency: z.number().int(),
    status: z.enum(["active", "idle", "lost"]),
    registeredAt: z.string(),
    lastSeenAt: z.string(),
    currentTasks: z.array(z.string()),
    completed: z.number().int(),
    failed: z.number().int(),
    busyMs: z.number().int(),
  })
  .openapi("Worker");
export const WorkerList = z.object({ items: z.array(WorkerSchema), nextCursor: z.string().nullable() }).openapi("WorkerList");

import { z } from "@hono/zod-openapi";
import { STATUSES, type Status } from "./shard";

/** The wire contract of tasks and leases (and the limits and names all of /api/v1 shares); see schema/api.ts. */

export const LIMITS = {
  bodyBytes: 8 * 1024 * 1024,
  payloadBytes: 128 * 1024,
  resultBytes: 128 * 1024,
  /** progress is written with every heartbeat that changes it: kept small */
  progressBytes: 16 * 1024,
  /** how deeply JSON values (payload, result, progress) may nest */
  jsonDepth: 64,
  /** how far ahead `runAt` (like `delayMs`) may be */
  aheadMs: 365 * 86_400_000,
  batch: 1000,
  leaseMax: 1000,
  waitMs: 30_000,
  timeoutMs: { min: 100, max: 12 * 3600_000 },
  tags: 20,
  dependsOn: 100,
  shards: 256,
} as const;

export const DAY = 86_400_000;

export const QueueName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,47}$/, "Use 1–48 characters: lowercase letters, digits, '-' or '_', starting with a letter or digit.")
  .openapi({ example: "email" });

/**
 * A lone surrogate: half of a UTF-16 pair, which JSON can carry (`"\ud800"`) and UTF-8 cannot.
 * Stored, it comes back as replacement characters, so a group key, idempotency key or worker id
 * holding one would never match itself again (a task in such a group was never leased).
 */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** A string the queue stores and matches: 1–`max` characters of well-formed Unicode. */
export const Text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine(
      (s) => !LONE_SURROGATE.test(s),
      "Use well-formed Unicode: a lone surrogate (\\ud800–\\udfff without its pair) cannot be stored.",
    );

export const TaskIdSchema = z.string().min(1).max(120).openapi({ example: "01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.email" });

export const Json = z.unknown().openapi({ description: "any JSON value" });

export const BackoffSchema = z
  .object({
    baseMs: z.number().int().min(0).max(DAY),
    factor: z.number().min(1).max(10),
    maxMs: z
      .number()
      .int()
      .min(0)
      .max(7 * DAY),
  })
  .strict()
  .refine((b) => b.maxMs >= b.baseMs, {
    path: ["maxMs"],
    message: "must be at least baseMs: the longest wait cannot be shorter than the first",
  })
  .openapi("Backoff", { example: { baseMs: 1000, factor: 2, maxMs: 600000 } });

export const TimeoutMs = z.number().int().min(LIMITS.timeoutMs.min).max(LIMITS.timeoutMs.max);
export const MaxAttempts = z.number().int().min(1).max(100);

export const EnqueueBody = z
  .object({
    name: Text(200).openapi({ description: "handler name", example: "send-email" }),
    payload: Json.optional().openapi({ example: { to: "ada@example.com" } }),
    priority: z.number().int().min(1).max(10).default(5).openapi({ description: "1–10, 10 runs first" }),
    delayMs: z.number().int().min(0).max(LIMITS.aheadMs).optional(),
    runAt: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "ISO-8601 time before which the task does not run; at most 365 days ahead (like delayMs)" }),
    maxAttempts: MaxAttempts.optional(),
    backoff: BackoffSchema.optional(),
    timeoutMs: TimeoutMs.optional().openapi({ description: "lease length: heartbeat within it or the lease expires" }),
    parentId: TaskIdSchema.optional(),
    idempotencyKey: Text(200)
      // eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
      .regex(/^[^\u0000-\u001f\u007f]+$/, "Use printable characters: an idempotency key may not hold control characters.")
      .optional(),
    groupKey: Text(200).optional(),
    tags: z.array(Text(64)).max(LIMITS.tags).optional(),
    ref: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/)
      .optional()
      .openapi({ description: "a name for this task within its batch, so others in the batch can depend on it as `ref:<name>`" }),
    dependsOn: z
      .array(TaskIdSchema)
      .max(LIMITS.dependsOn)
      .optional()
      .openapi({
        description: "task ids (or `ref:<name>` of batch members) that must complete before this task runs",
        example: ["ref:upload"],
      }),
    onDependencyFailure: z
      .enum(["cancel", "run"])
      .optional()
      .openapi({ description: "when a dependency fails for good or is cancelled: cancel this task (default) or run it anyway" }),
    waitForChildren: z
      .boolean()
      .optional()
      .openapi({ description: "run only after every child (tasks naming this one as parentId) has finished; needs sealing" }),
  })
  .strict()
  .refine((t) => t.delayMs === undefined || t.runAt === undefined, {
    message: "Give either delayMs or runAt, not both.",
    path: ["runAt"],
  })
  .openapi("EnqueueTask");
export type EnqueueInput = z.infer<typeof EnqueueBody>;

export const EnqueueBatchBody = z
  .object({ tasks: z.array(EnqueueBody).min(1).max(LIMITS.batch) })
  .strict()
  .openapi("EnqueueBatch");

export const TaskSchema = z
  .object({
    id: TaskIdSchema,
    queue: QueueName,
    name: z.string(),
    payload: Json,
    priority: z.number().int(),
    band: z.enum(["high", "medium", "low"]),
    status: z.enum(STATUSES as [Status, ...Status[]]),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    backoff: BackoffSchema,
    timeoutMs: z.number().int(),
    runAt: z.string(),
    parentId: z.string().nullable(),
    dependsOn: z.array(z.string()),
    waitingOn: z.array(z.string()).openapi({ description: "dependencies not yet resolved (while blocked)" }),
    onDependencyFailure: z.enum(["cancel", "run"]),
    waitForChildren: z.boolean(),
    sealed: z.boolean().openapi({ description: "no more children will come" }),
    children: z
      .object({
        total: z.number().int(),
        active: z.number().int(),
        completed: z.number().int(),
        failed: z.number().int(),
        cancelled: z.number().int(),
      })
      .openapi({ description: "this task's children by outcome" }),
    idempotencyKey: z.string().nullable(),
    groupKey: z.string().nullable(),
    workerId: z.string().nullable(),
    cancelRequested: z.boolean(),
    progress: Json.nullable(),
    result: Json.nullable(),
    error: z.object({ message: z.string(), stack: z.string().optional() }).nullable(),
    tags: z.array(z.string()),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    expiresAt: z.string().nullable().openapi({ description: "lease expiry while running" }),
  })
  .openapi("Task");
export type Task = z.infer<typeof TaskSchema>;

export const TaskList = z.object({ items: z.array(TaskSchema), nextCursor: z.string().nullable() }).openapi("TaskList");

export const LeaseSchema = z
  .object({
    task: TaskSchema,
    leaseToken: z.string(),
    expiresAt: z.string(),
    childResults: z.record(z.string(), Json).optional().openapi({
      description:
        "for a task that waited for its children: child id → its result (null unless it completed); the first 1,000 children, within 4 MiB",
    }),
    childResultsComplete: z.boolean().optional().openapi({
      description: "false when the parent has more children than `childResults` holds: page through GET /tasks/{id}/children for the rest",
    }),
  })
  .openapi("Lease");
export const StopBody = z
  .object({ workerId: Text(200) })
  .strict()
  .openapi("StopWaiting");

const LeaseToken = z.string().min(1).max(200);
const Progress = z.union([z.number().min(0).max(100), z.record(z.string(), z.unknown())]);
const TaskErrorSchema = z.object({ message: z.string().min(1).max(10_000), stack: z.string().max(65_536).optional() }).strict();

export const HeartbeatBody = z.object({ leaseToken: LeaseToken, progress: Progress.optional() }).strict().openapi("Heartbeat");
export const HeartbeatResponse = z.object({ expiresAt: z.string(), cancelRequested: z.boolean() }).openapi("HeartbeatResult");
export const CompleteBody = z.object({ leaseToken: LeaseToken, result: Json.optional() }).strict().openapi("Complete");
export const FailBody = z
  .object({ leaseToken: LeaseToken, error: TaskErrorSchema, retryable: z.boolean().optional() })
  .strict()
  .openapi("Fail");
export const ReleaseBody = z
  .object({
    leaseToken: LeaseToken,
    delayMs: z
      .number()
      .int()
      .min(0)
      .max(365 * DAY)
      .optional(),
  })
  .strict()
  .openapi("Release");

const batchOf = <T extends z.ZodRawShape>(shape: T, name: string) =>
  z
    .object({
      items: z
        .array(z.object({ id: TaskIdSchema, ...shape }).strict())
        .min(1)
        .max(LIMITS.batch),
    })
    .strict()
    .openapi(name);
export const CompleteBatchBody = batchOf(CompleteBody.shape, "CompleteBatch");

export const LeaseBody = z
  .object({
    workerId: Text(200),
    max: z.number().int().min(1).max(LIMITS.leaseMax).default(1),
    waitMs: z.number().int().min(0).max(LIMITS.waitMs).default(0).openapi({ description: "long-poll for up to this long" }),
    complete: z.array(CompleteBatchBody.shape.items.element).max(LIMITS.batch).optional().openapi({
      description:
        "leases this consumer has finished, completed before the lease (as POST /leases/complete, one outcome each in `results`): a busy consumer's one call per batch",
    }),
  })
  .strict()
  .openapi("LeaseRequest");
export const FailBatchBody = batchOf(FailBody.shape, "FailBatch");
export const HeartbeatBatchBody = batchOf(HeartbeatBody.shape, "HeartbeatBatch");
export const ReleaseBatchBody = batchOf(ReleaseBody.shape, "ReleaseBatch");

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: "urn:edgeq:error:stale_lease" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ pointer: z.string(), detail: z.string() })).optional(),
  })
  .openapi("Problem");

const ItemDone = z.object({ id: z.string(), ok: z.literal(true) });
const ItemRefused = z.object({ id: z.string(), ok: z.literal(false), problem: ProblemSchema });

/** Batch complete / fail: one outcome per item, in request order. */
export const ItemResults = z.object({ results: z.array(z.union([ItemDone, ItemRefused])) }).openapi("ItemResults");

export const LeaseList = z
  .object({
    leases: z.array(LeaseSchema),
    results: ItemResults.shape.results
      .optional()
      .openapi({ description: "when the request named leases to `complete`: one outcome per item, in request order" }),
  })
  .openapi("LeaseList");

/** Batch heartbeat: an accepted item also carries its new lease expiry and whether cancel was requested. */
export const HeartbeatResults = z
  .object({
    results: z.array(z.union([ItemDone.extend({ expiresAt: z.string(), cancelRequested: z.boolean() }), ItemRefused])),
  })
  .openapi("HeartbeatResults");

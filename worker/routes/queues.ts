import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { QueueError } from "../../durable/core/errors";
import { unwrap } from "../../durable/outcome";
import type { QueueRecord } from "../../durable/queue-registry";
import { GroupList, ListQuery, QueueList, QueueName, QueueSchema, QueueStats, SettingsPatch, TaskList } from "../../schema/api";
import type { Status } from "../../schema/shard";
import type { AppEnv } from "../env";
import { permit } from "../middleware/auth";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { findQueue, registryOf, remember, shardNumbers, shardOf, shardStats, sumCounts } from "../shards";
import { iso, nextCursor, taskView } from "../view";

export const queues = new OpenAPIHono<AppEnv>();
const RetryBody = z
  .object({
    failedBefore: z
      .string()
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "retry tasks that failed at or before this time (ISO-8601); default now" }),
  })
  .strict()
  .openapi("RetryDeadLetters");
const RetryAnswer = z
  .object({
    retried: z.number().int(),
    done: z.boolean(),
    failedBefore: z.string().openapi({ description: "the time this sweep covers: pass it to the next call" }),
  })
  .openapi("RetryDeadLettersResult");
const PurgeAnswer = z.object({ cancelled: z.number().int(), done: z.boolean() }).openapi("PurgeResult");

const QueueParam = z.object({ queue: QueueName });

const queueView = (record: QueueRecord, counts: Record<string, number>) => ({
  name: record.name,
  settings: (({ shardHistory: _internal, ...visible }) => visible)(record.settings),
  counts,
  createdAt: iso(record.createdAt)!,
});

async function mustFind(env: Env, tenant: string, queue: string): Promise<QueueRecord> {
  const record = await findQueue(env, tenant, queue);
  if (!record) throw new QueueError("not_found", `Queue ${queue} does not exist; it is created by its first enqueue.`);
  return record;
}

/** Stores new settings and hands them to every shard at once, so a change needs no cache to expire. */
async function updateSettings(env: Env, tenant: string, queue: string, patch: z.infer<typeof SettingsPatch> & { paused?: boolean }) {
  const record = unwrap(await registryOf(env, tenant).update(queue, patch));
  remember(tenant, record);
  await Promise.all(shardNumbers(record).map((n) => shardOf(env, tenant, queue, n).configure(record.settings)));
  return record;
}

queues.openapi(
  createRoute({
    method: "get",
    path: "/queues",
    tags: ["queues"],
    summary: "List queues with their depth per status",
    middleware: [permit("read")] as const,
    request: { query: z.object({ limit: ListQuery.shape.limit, cursor: ListQuery.shape.cursor }) },
    responses: { 200: jsonResponse(QueueList, "queues"), ...errors(400) },
  }),
  async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const records = await registryOf(c.env, c.var.tenant).list(cursor, limit);
    const items = await Promise.all(records.map(async (r) => queueView(r, sumCounts(await shardStats(c.env, c.var.tenant, r)))));
    return c.json({ items, nextCursor: nextCursor(records, limit, (r) => r.name) }, 200);
  },
);

queues.openapi(
  createRoute({
    method: "get",
    path: "/queues/{queue}",
    tags: ["queues"],
    summary: "Queue settings and statistics, per shard",
    middleware: [permit("read")] as const,
    request: { params: QueueParam },
    responses: { 200: jsonResponse(QueueStats, "the queue"), ...errors(404) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const record = await mustFind(c.env, c.var.tenant, queue);
    const shards = await shardStats(c.env, c.var.tenant, record);
    const view = shards.map((s) => ({
      ...s,
      oldestReadyAt: iso(s.oldestReadyAt),
      history: { ...s.history, waitingSince: iso(s.history.waitingSince) },
    }));
    return c.json({ ...queueView(record, sumCounts(shards)), shards: view }, 200);
  },
);

queues.openapi(
  createRoute({
    method: "patch",
    path: "/queues/{queue}",
    tags: ["queues"],
    summary: "Change a queue's settings",
    middleware: [permit("manage")] as const,
    description:
      "Creates the queue if it does not exist. `shards` may only grow. Flow control (`concurrency`, `startLimit`, `groupLimits`) takes effect on every shard at once.",
    request: { params: QueueParam, body: jsonBody(SettingsPatch) },
    responses: { 200: jsonResponse(QueueSchema, "the queue"), ...errors(400, 409, 415) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const record = await updateSettings(c.env, c.var.tenant, queue, c.req.valid("json"));
    return c.json(queueView(record, sumCounts(await shardStats(c.env, c.var.tenant, record))), 200);
  },
);

for (const [action, paused] of [
  ["pause", true],
  ["resume", false],
] as const) {
  queues.openapi(
    createRoute({
      method: "post",
      path: `/queues/{queue}/${action}`,
      tags: ["queues"],
      summary: paused ? "Pause leasing" : "Resume leasing",
      middleware: [permit("manage")] as const,
      description: "Enqueue keeps working while paused; leases answer empty.",
      request: { params: QueueParam },
      responses: { 200: jsonResponse(QueueSchema, "the queue"), ...errors(404) },
    }),
    async (c) => {
      const { queue } = c.req.valid("param");
      await mustFind(c.env, c.var.tenant, queue);
      const record = await updateSettings(c.env, c.var.tenant, queue, { paused });
      return c.json(queueView(record, sumCounts(await shardStats(c.env, c.var.tenant, record))), 200);
    },
  );
}

queues.openapi(
  createRoute({
    method: "get",
    path: "/queues/{queue}/groups",
    tags: ["queues"],
    summary: "Groups with ready or running tasks, and their depth",
    middleware: [permit("read")] as const,
    description: "A group is the tasks sharing a groupKey; each group lives in one shard.",
    request: { params: QueueParam },
    responses: { 200: jsonResponse(GroupList, "groups by key"), ...errors(404) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const record = await mustFind(c.env, c.var.tenant, queue);
    const parts = await Promise.all(shardNumbers(record).map(async (n) => unwrap(await shardOf(c.env, c.var.tenant, queue, n).groups())));
    const items = parts.flat().sort((a, b) => (a.group < b.group ? -1 : 1));
    return c.json({ items }, 200);
  },
);

queues.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/purge",
    tags: ["queues"],
    summary: "Cancel every pending and scheduled task",
    description:
      "Each shard cancels up to 500 tasks in this call; if more are left (202, `done: false`) its alarm cancels the rest, 500 per pass, in the background. Tasks enqueued after the call are not touched.",
    middleware: [permit("manage")] as const,
    request: { params: QueueParam },
    responses: {
      200: jsonResponse(PurgeAnswer, "every pending and scheduled task is cancelled"),
      202: jsonResponse(PurgeAnswer, "cancelled so far; the rest are being cancelled"),
      ...errors(404),
    },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const record = await mustFind(c.env, c.var.tenant, queue);
    const parts = await Promise.all(shardNumbers(record).map(async (n) => unwrap(await shardOf(c.env, c.var.tenant, queue, n).purge())));
    const done = parts.every((p) => p.done);
    return c.json({ cancelled: parts.reduce((a, p) => a + p.cancelled, 0), done }, done ? 200 : 202);
  },
);

queues.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/dead-letters/retry",
    tags: ["queues"],
    summary: "Retry the queue's dead letters (failed tasks)",
    description:
      "Makes the tasks that failed at or before `failedBefore` (default: now) pending again, attempts reset, up to 500 per shard in this call. The answer names the `failedBefore` it used; `done: false` means some are left: call again with it (the SDK's `retryDeadLetters` does), so a task that fails again meanwhile is not retried twice by one sweep.",
    middleware: [permit("produce")] as const,
    request: { params: QueueParam, body: { content: { "application/json": { schema: RetryBody } }, required: false } },
    responses: { 200: jsonResponse(RetryAnswer, "what this call retried, and whether any is left"), ...errors(400, 404) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const body = (c.req.header("content-type")?.includes("json") ? c.req.valid("json") : undefined) ?? {};
    const failedBy = body.failedBefore ? Date.parse(body.failedBefore) : Date.now();
    const record = await mustFind(c.env, c.var.tenant, queue);
    const parts = await Promise.all(
      shardNumbers(record).map(async (n) => unwrap(await shardOf(c.env, c.var.tenant, queue, n).retryFailed(failedBy))),
    );
    return c.json(
      {
        retried: parts.reduce((a, p) => a + p.retried, 0),
        done: parts.every((p) => p.done),
        failedBefore: new Date(failedBy).toISOString(),
      },
      200,
    );
  },
);

queues.openapi(
  createRoute({
    method: "get",
    path: "/queues/{queue}/tasks",
    tags: ["queues"],
    summary: "List a queue's tasks live from its shards",
    middleware: [permit("read")] as const,
    description: "In creation order; filter by status (e.g. `failed` for dead letters). Pass `nextCursor` back as `cursor`.",
    request: { params: QueueParam, query: ListQuery },
    responses: { 200: jsonResponse(TaskList, "tasks"), ...errors(400, 404) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const { status, limit, cursor } = c.req.valid("query");
    const record = await mustFind(c.env, c.var.tenant, queue);
    const parts = await Promise.all(
      shardNumbers(record).map(async (n) =>
        unwrap(await shardOf(c.env, c.var.tenant, queue, n).list({ status: status as Status | undefined, after: cursor, limit })),
      ),
    );
    // Ids begin with a ULID, so merging the shards' id-ordered pages by id keeps creation order.
    const rows = parts
      .flat()
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, limit);
    return c.json({ items: rows.map(taskView), nextCursor: nextCursor(rows, limit, (r) => r.id) }, 200);
  },
);

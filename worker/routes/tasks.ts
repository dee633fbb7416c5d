import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { QueueError } from "../../durable/core/errors";
import { unwrap } from "../../durable/outcome";
import {
  CompleteBody,
  EnqueueBatchBody,
  EnqueueBody,
  FailBody,
  HeartbeatBody,
  HeartbeatResponse,
  ListQuery,
  QueueName,
  ReleaseBody,
  TaskIdSchema,
  TaskList,
  TaskSchema,
} from "../../schema/api";
import type { TaskRow } from "../../schema/shard";
import { DAY } from "../../schema/api";
import { parseTaskId } from "../../durable/core/ids";
import type { AppEnv } from "../env";
import { permit } from "../middleware/auth";
import { newTask, optionalJson, progressJson } from "../input";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { ensureQueue, findQueue, groupByShard, shardOf, shardOfTask } from "../shards";
import { freeKeyNow } from "../placement";
import { submit } from "../submit";
import { iso, nextCursor, taskView } from "../view";
import { historyGet } from "../history-view";

const QueueParam = z.object({ queue: QueueName });
const IdParam = z.object({ id: TaskIdSchema });
const TaskResponse = (description: string) => ({ 200: jsonResponse(TaskSchema, description) });

export const tasks = new OpenAPIHono<AppEnv>();

/** The shard stub for a task id; an id edgeq could not have made is simply not found. */
async function taskShard(env: Env, tenant: string, id: string) {
  const stub = await shardOfTask(env, tenant, id);
  if (!stub) throw new QueueError("not_found", `Task ${id} does not exist.`);
  return stub;
}

tasks.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/tasks",
    tags: ["tasks"],
    summary: "Enqueue a task",
    middleware: [permit("produce")] as const,
    description: "201 with the new task; 200 with the first task when its idempotencyKey was used within the window.",
    request: { params: QueueParam, body: jsonBody(EnqueueBody) },
    responses: {
      201: jsonResponse(TaskSchema, "created"),
      200: jsonResponse(TaskSchema, "idempotent replay: the task first made with this key"),
      ...errors(400, 413, 415),
    },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const body = c.req.valid("json");
    const input = { ...newTask(body), ref: body.ref };
    const { settings } = await ensureQueue(c.env, c.var.tenant, queue);
    const [out] = await submit(c.env, c.var.tenant, queue, settings, [input], () => "");
    return out.created ? c.json(taskView(out.task), 201) : c.json(taskView(out.task), 200);
  },
);

tasks.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/tasks/batch",
    tags: ["tasks"],
    summary: "Enqueue up to 1000 tasks",
    middleware: [permit("produce")] as const,
    description:
      "Tasks are spread over the queue's shards; each shard takes its part in one transaction (all or nothing per shard). Members may depend on each other by `ref:<name>`; they are written after the tasks they name. Tasks come back in request order.",
    request: { params: QueueParam, body: jsonBody(EnqueueBatchBody) },
    responses: { 201: jsonResponse(z.object({ tasks: z.array(TaskSchema) }), "created"), ...errors(400, 413, 415) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const inputs = c.req.valid("json").tasks.map((t, i) => ({ ...newTask(t, `/tasks/${i}`), ref: t.ref }));
    const { settings } = await ensureQueue(c.env, c.var.tenant, queue);
    const made = await submit(c.env, c.var.tenant, queue, settings, inputs, (i) => `/tasks/${i}`);
    return c.json({ tasks: made.map((m) => taskView(m.task)) }, 201);
  },
);

tasks.openapi(
  createRoute({
    method: "get",
    path: "/tasks/{id}",
    tags: ["tasks"],
    summary: "Get a task",
    description: "From its live shard; once the shard's retention has dropped a finished task, from history (D1).",
    middleware: [permit("read")] as const,
    request: { params: IdParam },
    responses: { ...TaskResponse("the task"), ...errors(404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const row = unwrap(await (await taskShard(c.env, c.var.tenant, id)).get(id));
    if (row) return c.json(taskView(row), 200);
    // Gone from its shard: history has it if the shard's retention took it (not if it was deleted).
    const old = await historyGet(c.env.DB, c.var.tenant, id).catch((e: unknown) => {
      throw new QueueError("unavailable", `Task ${id} is not in its queue, and task history cannot be read now: ${(e as Error).message}`);
    });
    const queue = await findQueue(c.env, c.var.tenant, parseTaskId(id)!.queue);
    const retained = (queue?.settings.retentionDays ?? 0) * DAY;
    if (!old || old.finishedAt === null || Date.parse(old.finishedAt) > Date.now() - retained) {
      throw new QueueError("not_found", `Task ${id} does not exist.`);
    }
    return c.json(old, 200);
  },
);

const action = (path: string, summary: string, description: string) =>
  createRoute({
    method: "post",
    path: `/tasks/{id}/${path}`,
    tags: ["tasks"],
    summary,
    description,
    middleware: [permit("produce")] as const,
    request: { params: IdParam },
    responses: { ...TaskResponse("the task after the change"), ...errors(404, 409) },
  });

tasks.openapi(
  action("cancel", "Cancel a task", "Immediate unless running; a running task gets cancelRequested, seen on its next heartbeat."),
  async (c) => {
    const { id } = c.req.valid("param");
    return c.json(taskView(unwrap(await (await taskShard(c.env, c.var.tenant, id)).cancel(id))), 200);
  },
);

tasks.openapi(
  action("retry", "Retry a failed or cancelled task", "Makes the task pending again with its attempt count reset."),
  async (c) => {
    const { id } = c.req.valid("param");
    return c.json(taskView(unwrap(await (await taskShard(c.env, c.var.tenant, id)).retry(id))), 200);
  },
);

tasks.openapi(
  action(
    "seal",
    "Seal a parent: no more children will come",
    "A parent with waitForChildren runs once it is sealed and all its children have finished. A parent whose children were enqueued in its own batch is sealed already.",
  ),
  async (c) => {
    const { id } = c.req.valid("param");
    return c.json(taskView(unwrap(await (await taskShard(c.env, c.var.tenant, id)).seal(id))), 200);
  },
);

tasks.openapi(
  createRoute({
    method: "get",
    path: "/tasks/{id}/children",
    tags: ["tasks"],
    summary: "List a parent's children",
    middleware: [permit("read")] as const,
    description: "In id (creation) order. Pass `nextCursor` back as `cursor`. The parent's `children` field has the counts by outcome.",
    request: { params: IdParam, query: z.object({ limit: ListQuery.shape.limit, cursor: ListQuery.shape.cursor }) },
    responses: { 200: jsonResponse(TaskList, "the children"), ...errors(404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    const page = unwrap(await (await taskShard(c.env, c.var.tenant, id)).children(id, cursor, limit));
    // The children themselves live in their own shards: one call per shard.
    const rows = new Map<string, TaskRow>();
    await Promise.all(
      groupByShard(page, (child) => child.id).map(async (g) => {
        const found = unwrap(await shardOf(c.env, c.var.tenant, g.queue, g.shard).getMany(g.items.map((child) => child.id)));
        for (const row of found) rows.set(row.id, row);
      }),
    );
    const items = page.flatMap((child) => (rows.has(child.id) ? [taskView(rows.get(child.id)!)] : []));
    return c.json({ items, nextCursor: nextCursor(page, limit, (child) => child.id) }, 200);
  },
);

tasks.openapi(
  createRoute({
    method: "delete",
    path: "/tasks/{id}",
    tags: ["tasks"],
    summary: "Delete a finished task",
    middleware: [permit("manage")] as const,
    description: "Only completed, failed or cancelled tasks can be deleted.",
    request: { params: IdParam },
    responses: { 204: { description: "deleted" }, ...errors(404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const gone = unwrap(await (await taskShard(c.env, c.var.tenant, id)).remove(id));
    await freeKeyNow(c.env, c.var.tenant, gone);
    return c.body(null, 204);
  },
);

const leaseAction = <S extends z.ZodTypeAny>(path: string, summary: string, body: S, response = TaskSchema as z.ZodTypeAny) =>
  createRoute({
    method: "post",
    path: `/tasks/{id}/${path}`,
    tags: ["leases"],
    summary,
    middleware: [permit("consume")] as const,
    request: { params: IdParam, body: jsonBody(body) },
    responses: { 200: jsonResponse(response, "done"), ...errors(400, 404, 409, 413, 415) },
  });

tasks.openapi(leaseAction("heartbeat", "Extend a lease and report progress", HeartbeatBody, HeartbeatResponse), async (c) => {
  const { id } = c.req.valid("param");
  const { leaseToken, progress } = c.req.valid("json");
  const out = unwrap(await (await taskShard(c.env, c.var.tenant, id)).heartbeat(id, leaseToken, progressJson(progress, "/progress")));
  return c.json({ expiresAt: iso(out.expiresAt)!, cancelRequested: out.cancelRequested }, 200);
});

tasks.openapi(leaseAction("complete", "Complete a leased task", CompleteBody), async (c) => {
  const { id } = c.req.valid("param");
  const { leaseToken, result } = c.req.valid("json");
  const stub = await taskShard(c.env, c.var.tenant, id);
  return c.json(taskView(unwrap(await stub.complete(id, leaseToken, optionalJson(result, "/result")))), 200);
});

tasks.openapi(leaseAction("fail", "Fail a leased task", FailBody), async (c) => {
  const { id } = c.req.valid("param");
  const { leaseToken, error, retryable } = c.req.valid("json");
  const stub = await taskShard(c.env, c.var.tenant, id);
  return c.json(taskView(unwrap(await stub.fail(id, leaseToken, JSON.stringify(error), retryable))), 200);
});

tasks.openapi(leaseAction("release", "Hand a leased task back without using an attempt", ReleaseBody), async (c) => {
  const { id } = c.req.valid("param");
  const { leaseToken, delayMs } = c.req.valid("json");
  return c.json(taskView(unwrap(await (await taskShard(c.env, c.var.tenant, id)).release(id, leaseToken, delayMs))), 200);
});

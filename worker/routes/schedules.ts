import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { nextFires } from "../../durable/core/schedule";
import { QueueError } from "../../durable/core/errors";
import { unwrap } from "../../durable/outcome";
import type { ScheduleRecord } from "../../durable/queue-registry";
import { QueueName, ScheduleBody, ScheduleList, ScheduleSchema, TaskSchema } from "../../schema/api";
import type { AppEnv } from "../env";
import { newTask } from "../input";
import { permit } from "../middleware/auth";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { forgetQueue, registryOf } from "../shards";
import { iso, taskView } from "../view";

export const schedules = new OpenAPIHono<AppEnv>();

const QueueParam = z.object({ queue: QueueName });
const Params = z.object({ queue: QueueName, id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/) });

/** A schedule as the API shows it: the task template with its payload parsed, times in ISO-8601, the next five fires. */
function scheduleView(s: ScheduleRecord) {
  const { payload, idempotencyKey: _key, ...task } = s.task;
  return {
    id: s.id,
    queue: s.queue,
    cron: s.cron,
    timezone: s.timezone,
    task: { ...task, payload: JSON.parse(payload) as unknown },
    overlap: s.overlap,
    paused: s.paused,
    nextRuns: s.paused || s.nextAt === null ? [] : [s.nextAt, ...nextFires(s.cron, s.timezone, s.nextAt, 4)].map((t) => iso(t)!),
    lastFireAt: iso(s.lastFireAt),
    lastTaskId: s.lastTaskId,
    fired: s.fired,
    skipped: s.skipped,
    createdAt: iso(s.createdAt)!,
  };
}

const notFound = (queue: string, id: string) => new QueueError("not_found", `Queue ${queue} has no schedule ${id}.`);

schedules.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/schedules",
    tags: ["schedules"],
    summary: "Create or replace a schedule",
    middleware: [permit("manage")] as const,
    description:
      "Each fire enqueues `task` with the idempotency key `schedule:<id>:<fire time>`, so a retried fire never makes a second task. After downtime, one catch-up run (for the latest missed time), not a burst.",
    request: { params: QueueParam, body: jsonBody(ScheduleBody) },
    responses: { 201: jsonResponse(ScheduleSchema, "created"), 200: jsonResponse(ScheduleSchema, "replaced"), ...errors(400, 413, 415) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const body = c.req.valid("json");
    const task = { ...newTask({ ...body.task, priority: body.task.priority ?? 5 }, "/task") };
    const out = unwrap(
      await registryOf(c.env, c.var.tenant).putSchedule(c.var.tenant, {
        queue,
        id: body.id,
        cron: body.cron,
        timezone: body.timezone,
        task,
        overlap: body.overlap,
      }),
    );
    forgetQueue(c.var.tenant, queue); // the queue may have been created by this call
    return c.json(scheduleView(out.schedule), out.created ? 201 : 200);
  },
);

schedules.openapi(
  createRoute({
    method: "get",
    path: "/queues/{queue}/schedules",
    tags: ["schedules"],
    summary: "List a queue's schedules",
    middleware: [permit("read")] as const,
    request: { params: QueueParam },
    responses: { 200: jsonResponse(ScheduleList, "schedules by id"), ...errors(400) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const items = await registryOf(c.env, c.var.tenant).schedules(queue);
    return c.json({ items: items.map(scheduleView) }, 200);
  },
);

schedules.openapi(
  createRoute({
    method: "get",
    path: "/queues/{queue}/schedules/{id}",
    tags: ["schedules"],
    summary: "Get a schedule, with its next five fire times",
    middleware: [permit("read")] as const,
    request: { params: Params },
    responses: { 200: jsonResponse(ScheduleSchema, "the schedule"), ...errors(404) },
  }),
  async (c) => {
    const { queue, id } = c.req.valid("param");
    const s = await registryOf(c.env, c.var.tenant).schedule(queue, id);
    if (!s) throw notFound(queue, id);
    return c.json(scheduleView(s), 200);
  },
);

schedules.openapi(
  createRoute({
    method: "delete",
    path: "/queues/{queue}/schedules/{id}",
    tags: ["schedules"],
    summary: "Delete a schedule",
    middleware: [permit("manage")] as const,
    request: { params: Params },
    responses: { 204: { description: "deleted" }, ...errors(404) },
  }),
  async (c) => {
    const { queue, id } = c.req.valid("param");
    if (!(await registryOf(c.env, c.var.tenant).deleteSchedule(queue, id))) throw notFound(queue, id);
    return c.body(null, 204);
  },
);

for (const [action, paused] of [
  ["pause", true],
  ["resume", false],
] as const) {
  schedules.openapi(
    createRoute({
      method: "post",
      path: `/queues/{queue}/schedules/{id}/${action}`,
      tags: ["schedules"],
      summary: paused ? "Pause a schedule" : "Resume a schedule from its next fire time",
      middleware: [permit("manage")] as const,
      request: { params: Params },
      responses: { 200: jsonResponse(ScheduleSchema, "the schedule"), ...errors(404) },
    }),
    async (c) => {
      const { queue, id } = c.req.valid("param");
      const s = await registryOf(c.env, c.var.tenant).pauseSchedule(queue, id, paused);
      if (!s) throw notFound(queue, id);
      return c.json(scheduleView(s), 200);
    },
  );
}

schedules.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/schedules/{id}/run",
    tags: ["schedules"],
    summary: "Run a schedule's task now",
    middleware: [permit("manage")] as const,
    request: { params: Params },
    responses: { 201: jsonResponse(TaskSchema, "the task enqueued"), ...errors(404) },
  }),
  async (c) => {
    const { queue, id } = c.req.valid("param");
    const task = unwrap(await registryOf(c.env, c.var.tenant).runSchedule(c.var.tenant, queue, id));
    if (!task) throw notFound(queue, id);
    return c.json(taskView(task), 201);
  },
);

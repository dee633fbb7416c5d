import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { QueueError } from "../../durable/core/errors";
import { workerStatus } from "../../durable/core/workers";
import type { WorkerRecord } from "../../durable/queue-registry";
import { ListQuery, WorkerHeartbeatBody, WorkerList, WorkerRegisterBody, WorkerSchema } from "../../schema/api";
import type { AppEnv } from "../env";
import { randomHex } from "../keys";
import { permit } from "../middleware/auth";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { registryOf } from "../shards";
import { iso, nextCursor } from "../view";

export const workers = new OpenAPIHono<AppEnv>();

const IdParam = z.object({ id: z.string().regex(/^w_[0-9a-f]{16}$/, "A worker id is `w_` and 16 hex digits.") });

const workerView = (w: WorkerRecord, now = Date.now()) => ({
  ...w,
  status: workerStatus(w.lastSeenAt, w.currentTasks.length, now),
  registeredAt: iso(w.registeredAt)!,
  lastSeenAt: iso(w.lastSeenAt)!,
});

const notFound = (id: string) => new QueueError("not_found", `Worker ${id} does not exist; register it with POST /workers.`);

workers.openapi(
  createRoute({
    method: "post",
    path: "/workers",
    tags: ["workers"],
    summary: "Register a worker",
    description: "Heartbeat it every ~10 s; after 3 missed heartbeats it shows as lost (its leases expire on their own).",
    middleware: [permit("consume")] as const,
    request: { body: jsonBody(WorkerRegisterBody) },
    responses: { 201: jsonResponse(WorkerSchema, "registered"), ...errors(400, 415) },
  }),
  async (c) => {
    const { name, queues, concurrency } = c.req.valid("json");
    const id = `w_${randomHex(8)}`;
    const record = await registryOf(c.env, c.var.tenant).registerWorker(id, name, queues, concurrency, Date.now());
    return c.json(workerView(record), 201);
  },
);

workers.openapi(
  createRoute({
    method: "post",
    path: "/workers/{id}/heartbeat",
    tags: ["workers"],
    summary: "Worker heartbeat: liveness, tasks in hand, counts since the last one",
    middleware: [permit("consume")] as const,
    request: { params: IdParam, body: jsonBody(WorkerHeartbeatBody) },
    responses: { 200: jsonResponse(WorkerSchema, "the worker"), ...errors(400, 404, 415) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const record = await registryOf(c.env, c.var.tenant).workerHeartbeat(id, c.req.valid("json"), Date.now());
    if (!record) throw notFound(id);
    return c.json(workerView(record), 200);
  },
);

workers.openapi(
  createRoute({
    method: "get",
    path: "/workers",
    tags: ["workers"],
    summary: "List workers with their status (active, idle, lost)",
    middleware: [permit("read")] as const,
    request: { query: z.object({ limit: ListQuery.shape.limit, cursor: ListQuery.shape.cursor }) },
    responses: { 200: jsonResponse(WorkerList, "workers"), ...errors(400) },
  }),
  async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const items = await registryOf(c.env, c.var.tenant).listWorkers(cursor, limit);
    return c.json({ items: items.map((w) => workerView(w)), nextCursor: nextCursor(items, limit, (w) => w.id) }, 200);
  },
);

workers.openapi(
  createRoute({
    method: "get",
    path: "/workers/{id}",
    tags: ["workers"],
    summary: "One worker",
    middleware: [permit("read")] as const,
    request: { params: IdParam },
    responses: { 200: jsonResponse(WorkerSchema, "the worker"), ...errors(404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const record = await registryOf(c.env, c.var.tenant).worker(id);
    if (!record) throw notFound(id);
    return c.json(workerView(record), 200);
  },
);

import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./env";

/**
 * Each operation's `operationId` (the method name a generated client gives it), by `method path`
 * as the document lists it, and a description for the operations whose route has none. Kept in one
 * place so the names stay stable and unique; a test fails when a route has no entry here.
 */
export const OPERATIONS: Record<string, [id: string, description?: string]> = {
  "get /health": ["getHealth", "Answers 200 while the Worker runs; no credential needed. For load balancers and uptime checks."],
  "get /health/ready": [
    "getReadiness",
    "Asks each Durable Object namespace, D1 and KV for an answer; 503 names the binding that did not answer.",
  ],
  "get /metrics": ["getMetrics"],
  "post /api/v1/queues/{queue}/tasks": ["enqueueTask"],
  "get /api/v1/queues/{queue}/tasks": ["listQueueTasks"],
  "post /api/v1/queues/{queue}/tasks/batch": ["enqueueTasks"],
  "get /api/v1/tasks/{id}": ["getTask"],
  "delete /api/v1/tasks/{id}": ["deleteTask"],
  "post /api/v1/tasks/{id}/cancel": ["cancelTask"],
  "post /api/v1/tasks/{id}/retry": ["retryTask"],
  "post /api/v1/tasks/{id}/seal": ["sealTask"],
  "get /api/v1/tasks/{id}/children": ["listChildren"],
  "post /api/v1/tasks/{id}/heartbeat": [
    "heartbeatTask",
    "Extends the lease and stores `progress`; answers the new `expiresAt` and whether cancellation was requested. A stale `leaseToken` is 409.",
  ],
  "post /api/v1/tasks/{id}/complete": [
    "completeTask",
    "Completes the attempt that holds `leaseToken`, storing `result`. The same call again answers the same task and changes nothing; a stale token is 409.",
  ],
  "post /api/v1/tasks/{id}/fail": [
    "failTask",
    "Fails the attempt that holds `leaseToken`: retried after its backoff while attempts remain (unless `retryable` is false), else a dead letter; cancelled if cancellation was requested.",
  ],
  "post /api/v1/tasks/{id}/release": [
    "releaseTask",
    "Hands the task back to its queue without using an attempt, ready again after `delayMs`.",
  ],
  "get /api/v1/tasks": ["searchTasks"],
  "get /api/v1/tasks/{id}/events": ["getTaskEvents"],
  "get /api/v1/tenant/history": ["getHistorySettings", "How many days history keeps the tenant's finished tasks."],
  "put /api/v1/tenant/history": ["setHistorySettings"],
  "get /api/v1/analytics/trends": ["getTrends"],
  "get /api/v1/analytics/distributions": ["getDistributions"],
  "get /api/v1/analytics/performance": ["getPerformance"],
  "get /api/v1/analytics/cache": [
    "getAnalyticsCache",
    "The tenant's analytics answers served from KV (hits) and computed (misses) since the counters started, and the hit rate.",
  ],
  "post /api/v1/reports": ["exportReport"],
  "get /api/v1/reports/definitions": ["listReportDefinitions", "The tenant's saved report definitions, oldest first."],
  "post /api/v1/reports/definitions": ["saveReportDefinition"],
  "delete /api/v1/reports/definitions/{id}": ["deleteReportDefinition", "Deletes a saved definition; 404 when there is none with this id."],
  "post /api/v1/live/tokens": ["createLiveToken"],
  "get /api/v1/live": ["openLiveStream"],
  "post /api/v1/queues/{queue}/leases": ["leaseTasks"],
  "post /api/v1/queues/{queue}/leases/stop": ["stopLeasing"],
  "post /api/v1/consume/tokens": ["createConsumeToken"],
  "get /api/v1/queues/{queue}/consume": ["openConsumerSocket"],
  "post /api/v1/leases/complete": ["completeLeases"],
  "post /api/v1/leases/fail": ["failLeases"],
  "post /api/v1/leases/heartbeat": ["heartbeatLeases"],
  "post /api/v1/leases/release": ["releaseLeases"],
  "get /api/v1/queues": [
    "listQueues",
    "The tenant's queues, each with its settings and how many tasks it holds per status, paged by name.",
  ],
  "get /api/v1/queues/{queue}": [
    "getQueue",
    "A queue's settings, its counts per status and, per shard, its counts, totals since the shard started, rows written and requests.",
  ],
  "patch /api/v1/queues/{queue}": ["updateQueue"],
  "post /api/v1/queues/{queue}/pause": ["pauseQueue"],
  "post /api/v1/queues/{queue}/resume": ["resumeQueue"],
  "get /api/v1/queues/{queue}/groups": ["listGroups"],
  "post /api/v1/queues/{queue}/purge": ["purgeQueue"],
  "post /api/v1/queues/{queue}/dead-letters/retry": ["retryDeadLetters"],
  "post /api/v1/queues/{queue}/schedules": ["putSchedule"],
  "get /api/v1/queues/{queue}/schedules": ["listSchedules", "The queue's schedules with their next fire time."],
  "get /api/v1/queues/{queue}/schedules/{id}": ["getSchedule", "One schedule and its next five fire times."],
  "delete /api/v1/queues/{queue}/schedules/{id}": ["deleteSchedule", "Deletes a schedule; tasks it already made are not touched."],
  "post /api/v1/queues/{queue}/schedules/{id}/pause": ["pauseSchedule", "Stops a schedule firing until it is resumed."],
  "post /api/v1/queues/{queue}/schedules/{id}/resume": ["resumeSchedule", "Resumes a paused schedule from its next fire time after now."],
  "post /api/v1/queues/{queue}/schedules/{id}/run": ["runSchedule", "Enqueues the schedule's task now, without moving its next fire time."],
  "post /api/v1/keys": ["createKey"],
  "get /api/v1/keys": [
    "listKeys",
    "The tenant's API keys with their name, role and limits, paged; never the key itself, which is shown only when it is created.",
  ],
  "delete /api/v1/keys/{id}": ["revokeKey"],
  "get /api/v1/tenant/limits": ["getTenantLimits", "The rate limits a key of this tenant gets when it has none of its own."],
  "put /api/v1/tenant/limits": ["setTenantLimits"],
  "post /api/v1/workers": ["registerWorker"],
  "get /api/v1/workers": [
    "listWorkers",
    "Registered workers with their status: active (tasks in hand), idle, or lost (three heartbeats of about 10 s missed).",
  ],
  "post /api/v1/workers/{id}/heartbeat": [
    "heartbeatWorker",
    "Keeps a worker active and reports the tasks in hand and what it did since the last heartbeat.",
  ],
  "get /api/v1/workers/{id}": ["getWorker", "One registered worker, its status and its counts."],
};

/** The document's tags, in the order a reader meets them. */
export const TAGS = [
  { name: "tasks", description: "Enqueue, read, cancel, retry and delete tasks; parents and their children." },
  {
    name: "leases",
    description: "Consumers: lease tasks (long poll), heartbeat, complete, fail or release them, one by one or in batches.",
  },
  { name: "queues", description: "Queues: settings, counts, pause and resume, groups, purge and dead letters." },
  { name: "schedules", description: "Cron and interval schedules that enqueue a task when they fire." },
  { name: "history", description: "Task history in D1: search, timelines and retention." },
  { name: "analytics", description: "Trends, distributions and performance, computed from history and cached in KV." },
  { name: "reports", description: "Exports of history as CSV, JSON or JSON lines, and saved report definitions." },
  { name: "live", description: "Live metrics and task events over a WebSocket." },
  { name: "keys", description: "API keys, their roles and rate limits." },
  { name: "workers", description: "The worker registry: consumers, their liveness and utilisation." },
  { name: "health", description: "Liveness, readiness and Prometheus metrics." },
];

type Document = ReturnType<OpenAPIHono<AppEnv>["getOpenAPI31Document"]>;

/** The OpenAPI 3.1 document of `app`, served from `origin` (its `servers` entry). */
export function apiDocument(app: OpenAPIHono<AppEnv>, origin: string): Document {
  const doc = app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "edgeq",
      version: "1",
      description: "A durable, distributed task queue on Cloudflare Workers and Durable Objects. Errors are RFC 9457 problem+json.",
      license: { name: "MIT", url: "https://opensource.org/licenses/MIT" },
    },
    servers: [{ url: origin, description: "this deployment" }],
    tags: TAGS,
    security: [{ bearer: [] }],
  });
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item as Record<string, { operationId?: string; description?: string }>)) {
      const entry = OPERATIONS[`${method} ${path}`];
      if (!entry) continue; // the document test names it
      op.operationId = entry[0];
      op.description ??= entry[1];
    }
  }
  return doc;
}

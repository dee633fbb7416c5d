import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { QueueError } from "../../durable/core/errors";
import { hubOf } from "../../durable/metrics-hub";
import { QueueName, TaskIdSchema } from "../../schema/api";
import type { AppEnv } from "../env";
import { issueSocketToken } from "../keys";
import { permit } from "../middleware/auth";
import { errors, jsonResponse } from "../openapi";

/** Live metrics: a WebSocket to the tenant's MetricsHub, and tokens for browsers to open one. */
export const live = new OpenAPIHono<AppEnv>();

live.openapi(
  createRoute({
    method: "post",
    path: "/live/tokens",
    tags: ["live"],
    summary: "A short-lived token for a browser's live WebSocket",
    description:
      "Read-only, for the caller's tenant, valid for 60 s: pass it as `GET /api/v1/live?token=` (a browser cannot send a header with a WebSocket). The socket, once open, stays open.",
    middleware: [permit("read")] as const,
    responses: { 201: jsonResponse(z.object({ token: z.string(), expiresAt: z.string() }).openapi("LiveToken"), "the token"), ...errors() },
  }),
  async (c) => c.json(await issueSocketToken(c.env, "live", c.var.tenant), 201),
);

live.openapi(
  createRoute({
    method: "get",
    path: "/live",
    tags: ["live"],
    summary: "Live metrics and task events (WebSocket)",
    description:
      'Upgrade to a WebSocket. Auth: `Authorization` header, or `?token=` from `POST /live/tokens`. `queue` hears one queue\'s counts and its task events; `task` hears one task. JSON text frames, each with `type` and a per-connection `seq` that grows by one: `snapshot` first, then `delta` and `task`; send `{type: "subscribe" | "unsubscribe", queue?, task?}` or `{type: "snapshot"}`. See docs/API.md, "Live".',
    middleware: [permit("read")] as const,
    request: { query: z.object({ queue: QueueName.optional(), task: TaskIdSchema.optional(), token: z.string().max(200).optional() }) },
    responses: { 101: { description: "switching to the WebSocket protocol" }, ...errors(400, 426) },
  }),
  async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket")
      throw new QueueError("upgrade_required", "GET /api/v1/live is a WebSocket: send `Upgrade: websocket`.");
    const { queue, task } = c.req.valid("query");
    const url = new URL("https://hub.internal/live");
    if (queue) url.searchParams.set("queue", queue);
    if (task) url.searchParams.set("task", task);
    const forward = new Request(url, { headers: { upgrade: "websocket", "x-edgeq-tenant": c.var.tenant } });
    const res = await hubOf(c.env, c.var.tenant).fetch(forward);
    if (res.status === 429) {
      c.header("retry-after", "30");
      throw new QueueError(
        "rate_limited",
        `This tenant has ${await res.text()} live sockets open, the most it may: close one, or retry later.`,
      );
    }
    return res as never;
  },
);

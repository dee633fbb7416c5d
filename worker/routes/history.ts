import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { QueueError } from "../../durable/core/errors";
import { unwrap } from "../../durable/outcome";
import { HistorySettings, HistorySettingsBody, SearchQuery, TaskIdSchema, TaskList, Timeline, TimelineQuery } from "../../schema/api";
import type { AppEnv } from "../env";
import { timeline } from "../history-view";
import { permit } from "../middleware/auth";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { historyDays, setHistoryDays } from "../retention";
import { search } from "../search";
import { shardOfTask } from "../shards";
import { targetTenant, TenantQuery } from "./keys";

/** Search and timelines: both read D1 history, which lags the live shards by at most the flush interval (1 s by default). */
export const history = new OpenAPIHono<AppEnv>();

history.openapi(
  createRoute({
    method: "get",
    path: "/tasks",
    tags: ["history"],
    summary: "Search tasks",
    description:
      "Searches task history (D1): every task of the tenant, live or finished, until history retention removes it. History lags the live shards by at most the flush interval (`EDGEQ_HISTORY_FLUSH_MS`, 1 s by default). Filters combine with AND; a list filter matches any of its values, except `tag` (every tag). Pass `nextCursor` back as `cursor` with the same filters.",
    middleware: [permit("read")] as const,
    request: { query: SearchQuery },
    responses: { 200: jsonResponse(TaskList, "a page of tasks"), ...errors(400) },
  }),
  async (c) => c.json(await search(c.env.DB, c.var.tenant, c.req.valid("query")), 200),
);

history.openapi(
  createRoute({
    method: "get",
    path: "/tasks/{id}/events",
    tags: ["history"],
    summary: "A task's timeline",
    description:
      "Everything that happened to the task, oldest first, from history (it lags the live shard by at most the flush interval). A task that exists but has no history yet answers an empty page.",
    middleware: [permit("read")] as const,
    request: { params: z.object({ id: TaskIdSchema }), query: TimelineQuery },
    responses: { 200: jsonResponse(Timeline, "a page of events"), ...errors(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { cursor, limit } = c.req.valid("query");
    const page = await timeline(c.env.DB, c.var.tenant, id, cursor, limit);
    if (page) return c.json(page, 200);
    // Not in history (yet): a task only the live shard knows has an empty timeline so far.
    const stub = await shardOfTask(c.env, c.var.tenant, id);
    if (stub && unwrap(await stub.get(id))) return c.json({ items: [], nextCursor: null }, 200);
    throw new QueueError("not_found", `Task ${id} does not exist.`);
  },
);

async function settingsView(db: D1Database, tenant: string) {
  return { tenant, retentionDays: await historyDays(db, tenant) };
}

history.openapi(
  createRoute({
    method: "get",
    path: "/tenant/history",
    tags: ["history"],
    summary: "The tenant's history settings",
    middleware: [permit("manage")] as const,
    request: { query: TenantQuery },
    responses: { 200: jsonResponse(HistorySettings, "the settings"), ...errors(400) },
  }),
  async (c) => c.json(await settingsView(c.env.DB, targetTenant(c.var.principal, c.req.valid("query").tenant)), 200),
);

history.openapi(
  createRoute({
    method: "put",
    path: "/tenant/history",
    tags: ["history"],
    summary: "Set how long history keeps finished tasks",
    description:
      'Finished tasks older than this leave history at the next hourly sweep. `{"retentionDays": null}` goes back to the default (30).',
    middleware: [permit("manage")] as const,
    request: { query: TenantQuery, body: jsonBody(HistorySettingsBody) },
    responses: { 200: jsonResponse(HistorySettings, "the settings now"), ...errors(400, 415) },
  }),
  async (c) => {
    const tenant = targetTenant(c.var.principal, c.req.valid("query").tenant);
    await setHistoryDays(c.env.DB, tenant, c.req.valid("json").retentionDays);
    return c.json(await settingsView(c.env.DB, tenant), 200);
  },
);

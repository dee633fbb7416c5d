import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { ItemResult } from "../../durable/core/engine";
import { QueueError } from "../../durable/core/errors";
import { parseTaskId } from "../../durable/core/ids";
import { unwrap } from "../../durable/outcome";
import type { QueueShard } from "../../durable/queue-shard";
import {
  CompleteBatchBody,
  ConsumeToken,
  FailBatchBody,
  HeartbeatBatchBody,
  HeartbeatResults,
  ItemResults,
  LeaseBody,
  LeaseList,
  LIMITS,
  QueueName,
  ReleaseBatchBody,
  StopBody,
  Text,
} from "../../schema/api";
import type { QueueSettings } from "../../schema/shard";
import type { AppEnv } from "../env";
import { issueSocketToken } from "../keys";
import { permit } from "../middleware/auth";
import { completeItems, failItems, heartbeatItems, heartbeatView, itemView, leaseView } from "../lease-items";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { findQueue, groupByKnownShard, settingsOrDefault, shardOf, shardOrder } from "../shards";

export const leases = new OpenAPIHono<AppEnv>();

/** With several shards, a long poll waits this long on one shard before looking at all of them again. */
const MULTI_SHARD_WAIT_MS = 1000;

type Shard = DurableObjectStub<QueueShard>;
type Leased = Awaited<ReturnType<QueueShard["lease"]>>;
type LeaseAnswer = Awaited<ReturnType<typeof leaseFrom>>;

async function leaseFrom(stub: Shard, workerId: string, max: number, settings: QueueSettings, waitMs = 0) {
  return unwrap((await stub.lease(workerId, max, settings, waitMs)) as Leased);
}

leases.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/leases",
    tags: ["leases"],
    summary: "Lease tasks",
    middleware: [permit("consume")] as const,
    description:
      "Leases up to `max` tasks, highest priority first. With `waitMs`, waits until a task is ready or the time is up; an empty answer is 200 `{leases: []}`. With `complete`, the consumer's finished leases are completed first (one outcome each in `results`, as POST /leases/complete answers them): on a one-shard queue the completions and the lease are one write.",
    request: { params: z.object({ queue: QueueName }), body: jsonBody(LeaseBody) },
    responses: { 200: jsonResponse(LeaseList, "the leases (possibly none)"), ...errors(400, 413, 415) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const { workerId, max, waitMs, complete } = c.req.valid("json");
    const deadline = Date.now() + waitMs;
    const settings = await settingsOrDefault(c.env, c.var.tenant, queue);
    const stubs = shardOrder(settings.shards).map((n) => shardOf(c.env, c.var.tenant, queue, n));
    const got: LeaseAnswer["leases"] = [];
    let paused = false;
    let stopped = false;
    let results: ItemResult<null>[] | undefined;
    const leaseOne = (stub: Shard, n: number): Promise<LeaseAnswer> => leaseFrom(stub, workerId, n, settings);
    // The first lease call: on a one-shard queue whose shard holds every task to complete, it completes them too.
    let leaseFirst = leaseOne;
    if (complete?.length) {
      const items = completeItems(complete, "/complete");
      const here = (id: string) => {
        const at = parseTaskId(id);
        return at?.queue === queue && at.shard === 0;
      };
      if (settings.shards === 1 && items.every((it) => here(it.id))) {
        leaseFirst = async (stub, n) => {
          const out = unwrap(await stub.completeAndLease(items, workerId, n, settings));
          results = out.results;
          return out;
        };
      } else results = await perShard(c.env, c.var.tenant, items, async (stub, part) => unwrap(await stub.completeMany(part)));
    }
    for (;;) {
      for (const stub of stubs) {
        if (got.length >= max || paused || stopped) break;
        const out = await leaseFirst(stub, max - got.length);
        leaseFirst = leaseOne;
        got.push(...out.leases);
        ({ paused, stopped } = out);
      }
      const left = deadline - Date.now();
      if (got.length > 0 || left <= 0 || stopped) break;
      if (paused) {
        // A paused queue answers empty; a long poll still waits a little so consumers do not spin.
        await new Promise((r) => setTimeout(r, Math.min(left, MULTI_SHARD_WAIT_MS)));
        break;
      }
      // Wait on one shard's RPC, woken by an enqueue or the alarm: an idle consumer holds one open call.
      const wait = stubs.length === 1 ? left : Math.min(left, MULTI_SHARD_WAIT_MS);
      const out = await leaseFrom(stubs[Math.floor(Math.random() * stubs.length)], workerId, max, settings, wait);
      got.push(...out.leases);
      ({ paused, stopped } = out);
      if (got.length > 0 || stopped || (stubs.length === 1 && !paused)) break;
    }
    if (c.req.raw.signal?.aborted && got.length > 0) {
      // The consumer left while it waited: hand the tasks back at once instead of letting their leases expire.
      await Promise.all(
        got.map((l) => shardOf(c.env, c.var.tenant, queue, parseTaskId(l.task.id)!.shard).release(l.task.id, l.leaseToken, 0)),
      );
      got.length = 0;
    }
    const out = got.map(leaseView);
    return c.json(results ? { leases: out, results: resultsView(results) } : { leases: out }, 200);
  },
);

leases.openapi(
  createRoute({
    method: "post",
    path: "/queues/{queue}/leases/stop",
    tags: ["leases"],
    summary: "End a stopping consumer's long polls",
    middleware: [permit("consume")] as const,
    description:
      "A consumer that is shutting down names its `workerId`: its long polls on this queue end at once with no tasks, and leases for it answer none for the next 35 s. So no task is leased to a poll whose consumer has gone (a dropped connection does not always reach the queue). The SDK's `Worker.close()` calls it.",
    request: { params: z.object({ queue: QueueName }), body: jsonBody(StopBody) },
    responses: { 204: { description: "the queue's shards were told" }, ...errors(400, 415) },
  }),
  async (c) => {
    const { queue } = c.req.valid("param");
    const { workerId } = c.req.valid("json");
    const record = await findQueue(c.env, c.var.tenant, queue);
    const shards = record?.settings.shards ?? 1;
    await Promise.all(Array.from({ length: shards }, (_, n) => shardOf(c.env, c.var.tenant, queue, n).stopWaiting(workerId)));
    return c.body(null, 204);
  },
);

leases.openapi(
  createRoute({
    method: "post",
    path: "/consume/tokens",
    tags: ["leases"],
    summary: "A short-lived token for a consumer socket",
    description:
      "For the caller's tenant, valid for 60 s: pass it as `GET /api/v1/queues/{queue}/consume?token=` (not every runtime's WebSocket can send a header). The SDK's `Worker` does this.",
    middleware: [permit("consume")] as const,
    responses: { 201: jsonResponse(ConsumeToken, "the token"), ...errors() },
  }),
  async (c) => c.json(await issueSocketToken(c.env, "consume", c.var.tenant), 201),
);

leases.openapi(
  createRoute({
    method: "get",
    path: "/queues/{queue}/consume",
    tags: ["leases"],
    summary: "Consume over a WebSocket (leases pushed as tasks become ready)",
    middleware: [permit("consume")] as const,
    description:
      'Upgrade to a WebSocket to shard `shard` of the queue (one socket per shard; `GET /queues/{queue}` gives `shards`, 1 for a queue not created yet). Auth: `Authorization` header, or `?token=` from `POST /consume/tokens`. JSON text frames: send `{type: "credit", credit}` and the shard pushes `{type: "leases", leases}` whenever tasks are ready, each using one credit; send `{type: "complete" | "fail" | "heartbeat" | "release", ref, items, credit?}` (the items of `POST /leases/*`) and it answers `{type: "results", ref, results}`; `{type: "stop", ref}` ends the credit. A bad frame is answered `{type: "error", ref?, problem}`. After 15 minutes the socket is closed with 4000: open another. See docs/API.md, "Consumer sockets".',
    request: {
      params: z.object({ queue: QueueName }),
      query: z.object({
        workerId: Text(200),
        shard: z.coerce
          .number()
          .int()
          .min(0)
          .max(LIMITS.shards - 1)
          .default(0),
        token: z.string().max(200).optional(),
      }),
    },
    responses: { 101: { description: "switching to the WebSocket protocol" }, ...errors(400, 426) },
  }),
  async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket")
      throw new QueueError("upgrade_required", "GET /api/v1/queues/{queue}/consume is a WebSocket: send `Upgrade: websocket`.");
    const { queue } = c.req.valid("param");
    const { workerId, shard } = c.req.valid("query");
    const settings = await settingsOrDefault(c.env, c.var.tenant, queue);
    if (shard >= settings.shards)
      throw new QueueError("not_found", `Queue ${queue} has ${settings.shards} shard(s); there is no shard ${shard}.`);
    const url = new URL("https://shard.internal/consume");
    url.searchParams.set("workerId", workerId);
    const forward = new Request(url, { headers: { upgrade: "websocket", "x-edgeq-settings": JSON.stringify(settings) } });
    return (await shardOf(c.env, c.var.tenant, queue, shard).fetch(forward)) as never;
  },
);

/** Completions' outcomes as the lease call answers them (the shape of POST /leases/complete's). */
const resultsView = (results: ItemResult<null>[]) => results.map((r) => itemView(r)) as z.infer<typeof ItemResults>["results"];

/**
 * Runs a batch over the shards its ids name, one call per shard, and answers
 * one result per item in request order.
 */
async function perShard<I extends { id: string }, V>(
  env: Env,
  tenant: string,
  items: I[],
  call: (stub: Shard, items: I[]) => Promise<ItemResult<V>[]>,
) {
  const results = new Array<ItemResult<V>>(items.length);
  const indexed = items.map((item, i) => ({ item, i }));
  const known = await groupByKnownShard(env, tenant, indexed, (x) => x.item.id);
  await Promise.all(
    known.map(async (g) => {
      const out = await call(
        shardOf(env, tenant, g.queue, g.shard),
        g.items.map((x) => x.item),
      );
      out.forEach((r, j) => (results[g.items[j].i] = r));
    }),
  );
  // An id that names no shard of the tenant's queues: no such task.
  items.forEach((item, i) => {
    results[i] ??= { id: item.id, ok: false, problem: { code: "not_found", detail: `Task ${item.id} does not exist.` } };
  });
  return results;
}

const batchRoute = (path: string, summary: string, body: z.ZodTypeAny, answer: z.ZodTypeAny = ItemResults) =>
  createRoute({
    method: "post",
    path: `/leases/${path}`,
    tags: ["leases"],
    summary,
    middleware: [permit("consume")] as const,
    description: "One result per item, in request order; a stale token fails only its own item.",
    request: { body: jsonBody(body) },
    responses: { 200: jsonResponse(answer, "per-item outcome"), ...errors(400, 413, 415) },
  });

leases.openapi(batchRoute("complete", "Complete many leased tasks", CompleteBatchBody), async (c) => {
  const { items } = c.req.valid("json") as z.infer<typeof CompleteBatchBody>;
  const results = await perShard(c.env, c.var.tenant, completeItems(items), async (stub, part) => unwrap(await stub.completeMany(part)));
  return c.json({ results: resultsView(results) }, 200);
});

leases.openapi(batchRoute("fail", "Fail many leased tasks", FailBatchBody), async (c) => {
  const { items } = c.req.valid("json") as z.infer<typeof FailBatchBody>;
  const results = await perShard(c.env, c.var.tenant, failItems(items), async (stub, part) => unwrap(await stub.failMany(part)));
  return c.json({ results: resultsView(results) }, 200);
});

leases.openapi(batchRoute("release", "Hand many leased tasks back", ReleaseBatchBody), async (c) => {
  const { items } = c.req.valid("json") as z.infer<typeof ReleaseBatchBody>;
  const results = await perShard(c.env, c.var.tenant, items, async (stub, part) => unwrap(await stub.releaseMany(part)));
  return c.json({ results: resultsView(results) }, 200);
});

leases.openapi(batchRoute("heartbeat", "Heartbeat many leases", HeartbeatBatchBody, HeartbeatResults), async (c) => {
  const { items } = c.req.valid("json") as z.infer<typeof HeartbeatBatchBody>;
  const results = await perShard(c.env, c.var.tenant, heartbeatItems(items), async (stub, part) => unwrap(await stub.heartbeatMany(part)));
  return c.json({ results: results.map(heartbeatView) }, 200);
});

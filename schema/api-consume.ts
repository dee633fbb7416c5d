import { z } from "@hono/zod-openapi";
import { CompleteBatchBody, FailBatchBody, HeartbeatBatchBody, LIMITS, ReleaseBatchBody } from "./api-tasks";

/**
 * The wire contract of consumer sockets (`GET /queues/{queue}/consume`, docs/API.md
 * "Consumer sockets"): JSON text frames; see schema/api.ts.
 *
 * A consumer grants the shard credit; the shard pushes a `leases` frame whenever
 * tasks are ready and credit is left, each lease using one. Completions,
 * failures, heartbeats and releases go as frames with a `ref` and are answered
 * by a `results` frame with that `ref` (the same per-item results as
 * `POST /leases/*`). Any of them may grant more credit in the same frame.
 */

/** Credit to add (negative: take back); a socket holds between 0 and LIMITS.leaseMax. */
const Credit = z.number().int().min(-LIMITS.leaseMax).max(LIMITS.leaseMax);
/** The caller's number for a request, echoed by its answer. */
const Ref = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const itemsFrame = <T extends z.ZodTypeAny, K extends string>(type: K, items: T) =>
  z.object({ type: z.literal(type), ref: Ref, items, credit: Credit.optional() }).strict();

export const ConsumerFrame = z.discriminatedUnion("type", [
  z.object({ type: z.literal("credit"), credit: Credit }).strict(),
  itemsFrame("complete", CompleteBatchBody.shape.items),
  itemsFrame("fail", FailBatchBody.shape.items),
  itemsFrame("heartbeat", HeartbeatBatchBody.shape.items),
  itemsFrame("release", ReleaseBatchBody.shape.items),
  /** no more leases on this socket (credit 0); answered by empty `results` once every lease sent before it is on its way */
  z.object({ type: z.literal("stop"), ref: Ref }).strict(),
]);
export type ConsumerFrame = z.infer<typeof ConsumerFrame>;

/** How long one consumer socket may stay open; then the shard closes it (4000) and the consumer opens another, authenticating again. */
export const CONSUMER_SOCKET_MS = 15 * 60_000;
/** The close code of a socket that reached CONSUMER_SOCKET_MS: reconnect at once. */
export const CLOSE_RECONNECT = 4000;

export const ConsumeToken = z.object({ token: z.string(), expiresAt: z.string() }).openapi("ConsumeToken");

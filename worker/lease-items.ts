import type { ItemResult, Lease } from "../durable/core/types";
import { QueueError } from "../durable/core/errors";
import type { CompleteBatchBody, FailBatchBody, HeartbeatBatchBody, LeaseSchema } from "../schema/api";
import type { z } from "@hono/zod-openapi";
import { optionalJson, progressJson } from "./input";
import { problemBody } from "./problem";
import { iso, taskView } from "./view";

/**
 * What a consumer sends and is sent about its leases, shared by the HTTP routes
 * (`/queues/{queue}/leases`, `/leases/*`) and a shard's consumer sockets, so both
 * check items and answer them alike.
 */

/** A lease as the API shows it: the task, its token and expiry, and a parent's child results. */
export function leaseView(l: Lease): z.infer<typeof LeaseSchema> {
  return {
    task: taskView(l.task),
    leaseToken: l.leaseToken,
    expiresAt: iso(l.expiresAt)!,
    ...(l.childResults
      ? {
          childResults: Object.fromEntries(Object.entries(l.childResults).map(([id, r]) => [id, r === null ? null : JSON.parse(r)])),
          childResultsComplete: l.childResultsComplete ?? true,
        }
      : {}),
  };
}

/** Completions with each result as JSON text (400 or 413 for one too deep or too large; `at`: where the items are in the body). */
export const completeItems = (items: z.infer<typeof CompleteBatchBody>["items"], at = "/items") =>
  items.map((it, i) => ({ id: it.id, leaseToken: it.leaseToken, result: optionalJson(it.result, `${at}/${i}/result`) }));

export const failItems = (items: z.infer<typeof FailBatchBody>["items"]) =>
  items.map((it) => ({ id: it.id, leaseToken: it.leaseToken, error: JSON.stringify(it.error), retryable: it.retryable }));

export const heartbeatItems = (items: z.infer<typeof HeartbeatBatchBody>["items"]) =>
  items.map((it, i) => ({ id: it.id, leaseToken: it.leaseToken, progress: progressJson(it.progress, `/items/${i}/progress`) }));

/** One item's outcome as the API answers it: ok (and what `extra` adds), or its problem. */
export function itemView<V>(r: ItemResult<V>, extra: (v: V) => object = () => ({})) {
  return r.ok ? { id: r.id, ok: true, ...extra(r.value) } : { id: r.id, ok: false, problem: problemBody(QueueError.from(r.problem)) };
}

/** A heartbeat item's outcome: the new expiry and whether cancellation was requested. */
export const heartbeatView = (r: ItemResult<{ expiresAt: number; cancelRequested: boolean }>) =>
  itemView(r, (v) => ({ expiresAt: iso(v.expiresAt), cancelRequested: v.cancelRequested }));

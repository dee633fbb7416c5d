import { createExecutionContext, env, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import { ulidTimePrefix } from "../../durable/core/ids";
import type { HistoryTask } from "../../durable/core/timeline";
import { shardOf, type QueueShard } from "../../durable/queue-shard";
import worker from "../../worker/index";

export const ADMIN_TOKEN = "test-admin-token";

/**
 * Calls the API Worker's fetch handler in-process, as a client would over HTTP
 * (as the bootstrap admin unless headers say otherwise). The handler is called
 * directly: `exports.default.fetch` of the test pool slows down with every call
 * (~0.1 ms more each time), which made long suites time out.
 */
export async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://edgeq.test${path}`, init), env, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx); // what the Worker does after answering (cache writes, counters) is done too
  let json: any;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

/** A queue name no other test uses. */
export const freshQueue = (prefix = "q") => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

export function shardStub(queue: string, shard = 0, tenant = "default") {
  return shardOf(env, tenant, queue, shard);
}

/** Moves the shard's clock forward by `ms` and runs its alarm, as if that time had passed. */
export async function advance(queue: string, ms: number, shard = 0): Promise<void> {
  const stub = shardStub(queue, shard);
  await runInDurableObject(stub, (instance: QueueShard) => {
    const offset = ((instance.clock as { offset?: number }).offset ?? 0) + ms;
    instance.clock = { offset, now: () => Date.now() + offset } as QueueShard["clock"];
  });
  await runDurableObjectAlarm(stub);
}

export function expectProblem(res: { status: number; headers: Headers; body: any }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(res.body.type).toBe(`urn:edgeq:error:${code}`);
  expect(res.body.status).toBe(status);
  expect(typeof res.body.title).toBe("string");
  expect(typeof res.body.detail).toBe("string");
}

/** Polls `check` every 10 ms until it returns something truthy (alarms and cross-shard messages run on their own). */
export async function until<T>(check: () => Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The time of the shard's stored alarm (null: none). */
export function storedAlarm(queue: string, shard = 0): Promise<number | null> {
  return runInDurableObject(shardStub(queue, shard), (_i: QueueShard, state) => state.storage.getAlarm());
}

/** A task's status as stored, read without the engine (whose reads would catch up on due work first). */
export function storedStatus(queue: string, id: string, shard = 0): Promise<string | undefined> {
  return runInDurableObject(shardStub(queue, shard), (_i: QueueShard, state) => {
    const row = state.storage.sql.exec<{ status: string }>("SELECT status FROM tasks WHERE id = ?", id).toArray()[0];
    return row?.status;
  });
}

/** Resolves once a long poll is waiting in the shard (instead of sleeping and hoping it is). */
export async function pollWaiting(queue: string, shard = 0): Promise<void> {
  await until(() =>
    runInDurableObject(shardStub(queue, shard), (i: QueueShard) => (i as unknown as { waiters: Set<unknown> }).waiters.size > 0),
  );
}

/** Sends the shard's outbox to D1 history now (the alarm does it within the flush interval). */
export async function flushHistory(queue: string, shard = 0, tenant = "default"): Promise<void> {
  await runInDurableObject(shardOf(env, tenant, queue, shard), (i: QueueShard) => i.flushHistory());
}

/** An `api` that acts as an admin of `tenant` (a key made for it, not rate limited in practice). */
export async function tenantApi(tenant: string): Promise<typeof api> {
  const made = await api("POST", "/api/v1/keys", {
    tenant,
    role: "admin",
    name: `test ${tenant}`,
    limits: { perMinute: 1_000_000, perHour: 100_000_000 },
  });
  expect(made.status).toBe(201);
  const key: string = made.body.key;
  return (method, path, body, headers = {}) => api(method, path, body, { authorization: `Bearer ${key}`, ...headers });
}

/**
 * A whole task row of history as a flush of the shard that made it carries it (for tests that
 * write history through `writeHistory`): task `n` of `queue`, created at `created`, its id
 * time-sorted by it; payload and name also go to the full-text row.
 */
export function historyTask(
  n: number,
  o: {
    created: number;
    started: number | null;
    finished: number | null;
    status: string;
    queue?: string;
    name?: string;
    payload?: unknown;
    priority?: number;
    workerId?: string;
    tags?: string[];
  },
): HistoryTask {
  const payload = JSON.stringify(o.payload ?? {});
  return {
    full: true,
    text: { name: o.name ?? "job", body: payload },
    row: {
      id: `${ulidTimePrefix(o.created)}${String(n).padStart(16, "0")}.0.${o.queue ?? "a"}`,
      name: o.name ?? "job",
      payload,
      priority: o.priority ?? 5,
      status: o.status as never,
      attempts: o.started ? 1 : 0,
      maxAttempts: 3,
      backoff: "{}",
      timeoutMs: 30_000,
      runAt: o.created,
      dependsOn: null,
      depsWaiting: null,
      onDependencyFailure: null,
      parentId: null,
      waitForChildren: null,
      sealed: null,
      children: null,
      idempotencyKey: null,
      groupKey: null,
      workerId: o.started ? (o.workerId ?? "w") : null,
      cancelRequested: 0,
      progress: null,
      result: null,
      error: null,
      tags: o.tags ? JSON.stringify(o.tags) : null,
      createdAt: o.created,
      startedAt: o.started,
      finishedAt: o.finished,
      dueAt: null,
    } as HistoryTask["row"],
  };
}

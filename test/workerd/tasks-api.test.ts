import { createExecutionContext, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import type { QueueShard } from "../../durable/queue-shard";
import {
  ADMIN_TOKEN,
  advance,
  api,
  expectProblem,
  flushHistory,
  freshQueue,
  pollWaiting,
  shardStub,
  storedAlarm,
  storedStatus,
} from "./helpers";

const enqueue = (queue: string, body: object) => api("POST", `/api/v1/queues/${queue}/tasks`, body);
const lease = (queue: string, body: object = {}) => api("POST", `/api/v1/queues/${queue}/leases`, { workerId: "w1", ...body });

describe("tasks over HTTP", () => {
  it("enqueue, lease, heartbeat, complete and get", async () => {
    const q = freshQueue();
    const made = await enqueue(q, { name: "send-email", payload: { to: "ada@example.com" }, priority: 8, tags: ["mail"] });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ queue: q, name: "send-email", status: "pending", priority: 8, band: "high", attempts: 0 });
    expect(made.body).not.toHaveProperty("leaseToken");

    const leased = await lease(q);
    expect(leased.status).toBe(200);
    const [{ task, leaseToken, expiresAt }] = leased.body.leases;
    expect(task).toMatchObject({ id: made.body.id, status: "running", attempts: 1, workerId: "w1" });
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());

    const hb = await api("POST", `/api/v1/tasks/${task.id}/heartbeat`, { leaseToken, progress: 50 });
    expect(hb.status).toBe(200);
    expect(hb.body.cancelRequested).toBe(false);

    const done = await api("POST", `/api/v1/tasks/${task.id}/complete`, { leaseToken, result: { sent: true } });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: "completed", result: { sent: true }, progress: 50 });

    const got = await api("GET", `/api/v1/tasks/${task.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ status: "completed", tags: ["mail"], payload: { to: "ada@example.com" } });
    expect(got.body).not.toHaveProperty("leaseToken");
    expect(Date.parse(got.body.finishedAt)).toBeGreaterThanOrEqual(Date.parse(got.body.startedAt));
  });

  it("a stale lease token answers 409 and changes nothing", async () => {
    const q = freshQueue();
    const { body: t } = await enqueue(q, { name: "a", timeoutMs: 1000, backoff: { baseMs: 0, factor: 1, maxMs: 0 } });
    const first = (await lease(q)).body.leases[0];
    await advance(q, 1000); // the first lease expires and the task is ready again
    const second = (await lease(q)).body.leases[0];
    expect(second.leaseToken).not.toBe(first.leaseToken);
    const before = (await api("GET", `/api/v1/tasks/${t.id}`)).body;
    for (const [action, body] of [
      ["complete", { leaseToken: first.leaseToken, result: 1 }],
      ["fail", { leaseToken: first.leaseToken, error: { message: "x" } }],
      ["heartbeat", { leaseToken: first.leaseToken }],
      ["release", { leaseToken: first.leaseToken }],
    ] as const) {
      expectProblem(await api("POST", `/api/v1/tasks/${t.id}/${action}`, body), 409, "stale_lease");
    }
    expect((await api("GET", `/api/v1/tasks/${t.id}`)).body).toEqual(before);
  });

  it("completing again with the same token answers 200 with the stored result", async () => {
    const q = freshQueue();
    await enqueue(q, { name: "a" });
    const l = (await lease(q)).body.leases[0];
    const first = await api("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken, result: 1 });
    const again = await api("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken, result: 2 });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
  });

  it("failing or releasing again with the same token answers 200 with the task as stored, one by one and in batches", async () => {
    const q = freshQueue();
    // The retry's delay is drawn up to an hour (full jitter), so it is not due, and promoted, before the
    // second call (drawn up to the default second, it sometimes was).
    await enqueue(q, { name: "f", backoff: { baseMs: 3_600_000, factor: 1, maxMs: 3_600_000 } });
    await enqueue(q, { name: "r" });
    const [f, r] = (await lease(q, { max: 2 })).body.leases as { task: { id: string }; leaseToken: string }[];
    const failed = await api("POST", `/api/v1/tasks/${f.task.id}/fail`, { leaseToken: f.leaseToken, error: { message: "first" } });
    const released = await api("POST", `/api/v1/tasks/${r.task.id}/release`, { leaseToken: r.leaseToken });
    const again = await api("POST", `/api/v1/tasks/${f.task.id}/fail`, { leaseToken: f.leaseToken, error: { message: "again" } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(failed.body);
    const batch = await api("POST", "/api/v1/leases/release", { items: [{ id: r.task.id, leaseToken: r.leaseToken }] });
    expect(batch.body.results).toEqual([{ id: r.task.id, ok: true }]);
    expect((await api("GET", `/api/v1/tasks/${r.task.id}`)).body).toEqual(released.body);
    expect((await api("GET", `/api/v1/tasks/${f.task.id}`)).body.error).toEqual({ message: "first" });
  });

  it("a delayed task becomes ready when the alarm fires at runAt", async () => {
    const q = freshQueue();
    const { body: t } = await enqueue(q, { name: "later", delayMs: 60_000 });
    expect(t.status).toBe("scheduled");
    expect((await lease(q)).body.leases).toEqual([]);
    await flushHistory(q); // the first alarm sends the new task to history; then it waits for runAt
    expect(await storedAlarm(q)).toBe(Date.parse(t.runAt)); // the alarm is set for runAt
    await advance(q, 60_000);
    expect(await storedStatus(q, t.id)).toBe("pending"); // made ready by the alarm itself, not by a read
    expect((await lease(q)).body.leases.map((l: any) => l.task.id)).toEqual([t.id]);
  });

  it("runAt in the future schedules the task", async () => {
    const q = freshQueue();
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const { body: t } = await enqueue(q, { name: "at", runAt });
    expect(t).toMatchObject({ status: "scheduled", runAt });
  });

  it("a lease that is not heartbeated expires by the alarm and the task is retried", async () => {
    const q = freshQueue();
    const { body: t } = await enqueue(q, { name: "a", timeoutMs: 1000, maxAttempts: 2, backoff: { baseMs: 0, factor: 1, maxMs: 0 } });
    const [first] = (await lease(q)).body.leases;
    await flushHistory(q);
    expect(await storedAlarm(q)).toBe(Date.parse(first.expiresAt)); // the alarm is set for the lease's expiry
    await advance(q, 1000);
    expect(await storedStatus(q, t.id)).toBe("pending"); // expired by the alarm itself, not by a read
    const after = (await api("GET", `/api/v1/tasks/${t.id}`)).body;
    expect(after).toMatchObject({ status: "pending", attempts: 1 });
    expect(after.error.message).toMatch(/Lease expired/);
    await lease(q);
    await advance(q, 1000);
    expect((await api("GET", `/api/v1/tasks/${t.id}`)).body).toMatchObject({ status: "failed", attempts: 2 });
  });

  it("the same idempotency key answers 201 with a new task, then 200 with the first", async () => {
    const q = freshQueue();
    const a = await enqueue(q, { name: "a", idempotencyKey: "order-42" });
    const b = await enqueue(q, { name: "a", idempotencyKey: "order-42" });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
  });

  it("a batch of 1000 is enqueued in one call and leased in priority order, FIFO within a priority", async () => {
    const q = freshQueue();
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ name: `t${i}`, priority: 1 + ((i * 7) % 10) }));
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks });
    expect(made.status).toBe(201);
    expect(made.body.tasks).toHaveLength(1000);
    expect(made.body.tasks.map((t: any) => t.name)).toEqual(tasks.map((t) => t.name));
    const leased = (await lease(q, { max: 1000 })).body.leases.map((l: any) => l.task);
    expect(leased).toHaveLength(1000);
    const expected = tasks
      .map((t, i) => ({ ...t, i }))
      .sort((a, b) => b.priority - a.priority || a.i - b.i)
      .map((t) => t.name);
    expect(leased.map((t: any) => t.name)).toEqual(expected);
  });

  it("state survives a Durable Object restart", async () => {
    const q = freshQueue();
    const { body: t } = await enqueue(q, { name: "durable", payload: { n: 1 } });
    const l = (await lease(q)).body.leases[0];
    // Only this queue's shard: aborting every object would also cut the alarms and calls of tests running beside this one.
    await runInDurableObject(shardStub(q), (_i: QueueShard, state) => state.abort("restart")).catch(() => {});
    const got = await api("GET", `/api/v1/tasks/${t.id}`);
    expect(got.body).toMatchObject({ status: "running", payload: { n: 1 } });
    const done = await api("POST", `/api/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken });
    expect(done.body.status).toBe("completed");
  });

  it("cancel, retry and delete", async () => {
    const q = freshQueue();
    const { body: t } = await enqueue(q, { name: "a" });
    expect((await api("POST", `/api/v1/tasks/${t.id}/cancel`)).body.status).toBe("cancelled");
    expect((await api("POST", `/api/v1/tasks/${t.id}/retry`)).body).toMatchObject({ status: "pending", attempts: 0 });
    expectProblem(await api("DELETE", `/api/v1/tasks/${t.id}`), 409, "invalid_state");
    await api("POST", `/api/v1/tasks/${t.id}/cancel`);
    expect((await api("DELETE", `/api/v1/tasks/${t.id}`)).status).toBe(204);
    expectProblem(await api("GET", `/api/v1/tasks/${t.id}`), 404, "not_found");
  });

  it("cancelling a running task is seen on its next heartbeat", async () => {
    const q = freshQueue();
    await enqueue(q, { name: "a" });
    const l = (await lease(q)).body.leases[0];
    expect((await api("POST", `/api/v1/tasks/${l.task.id}/cancel`)).body).toMatchObject({ status: "running", cancelRequested: true });
    const hb = await api("POST", `/api/v1/tasks/${l.task.id}/heartbeat`, { leaseToken: l.leaseToken });
    expect(hb.body.cancelRequested).toBe(true);
    const failed = await api("POST", `/api/v1/tasks/${l.task.id}/fail`, { leaseToken: l.leaseToken, error: { message: "stopped" } });
    expect(failed.body.status).toBe("cancelled");
  });

  it("release hands the task back without using an attempt", async () => {
    const q = freshQueue();
    await enqueue(q, { name: "a" });
    const l = (await lease(q)).body.leases[0];
    const released = await api("POST", `/api/v1/tasks/${l.task.id}/release`, { leaseToken: l.leaseToken });
    expect(released.body).toMatchObject({ status: "pending", attempts: 0, workerId: null });
  });

  it("batch complete, fail and heartbeat answer one result per item", async () => {
    const q = freshQueue();
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "a" }, { name: "b" }, { name: "c" }] });
    const [a, b, c] = (await lease(q, { max: 3 })).body.leases;
    const hb = await api("POST", "/api/v1/leases/heartbeat", {
      items: [
        { id: a.task.id, leaseToken: a.leaseToken, progress: { step: 1 } },
        { id: "not-an-id", leaseToken: "x" },
      ],
    });
    expect(hb.body.results.map((r: any) => r.ok)).toEqual([true, false]);
    expect(hb.body.results[0].expiresAt).toBeTypeOf("string");
    expect(hb.body.results[1].problem.type).toBe("urn:edgeq:error:not_found");
    const done = await api("POST", "/api/v1/leases/complete", {
      items: [
        { id: a.task.id, leaseToken: a.leaseToken, result: "A" },
        { id: b.task.id, leaseToken: "forged" },
      ],
    });
    expect(done.status).toBe(200);
    expect(done.body.results).toMatchObject([
      { id: a.task.id, ok: true },
      { id: b.task.id, ok: false, problem: { status: 409, type: "urn:edgeq:error:stale_lease" } },
    ]);
    const failed = await api("POST", "/api/v1/leases/fail", {
      items: [{ id: c.task.id, leaseToken: c.leaseToken, error: { message: "no" }, retryable: false }],
    });
    expect(failed.body.results).toEqual([{ id: c.task.id, ok: true }]);
    expect((await api("GET", `/api/v1/tasks/${c.task.id}`)).body.status).toBe("failed");
    expect((await api("GET", `/api/v1/tasks/${b.task.id}`)).body.status).toBe("running");
  });

  it("a lease call completes the consumer's finished leases first, in the same shard call on a one-shard queue", async () => {
    const q = freshQueue();
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: ["a", "b", "c", "d"].map((name) => ({ name })) });
    const [a, b] = (await lease(q, { max: 2 })).body.leases;
    const requests = async () => (await api("GET", `/api/v1/queues/${q}`)).body.shards[0].requests as number;
    const before = await requests();
    const next = await lease(q, {
      max: 2,
      complete: [
        { id: a.task.id, leaseToken: a.leaseToken, result: { sent: 1 } },
        { id: b.task.id, leaseToken: "forged" },
      ],
    });
    expect(next.status).toBe(200);
    expect(next.body.results).toMatchObject([
      { id: a.task.id, ok: true },
      { id: b.task.id, ok: false, problem: { status: 409, type: "urn:edgeq:error:stale_lease" } },
    ]);
    expect(next.body.leases.map((l: any) => l.task.name)).toEqual(["c", "d"]);
    // One shard call for both (the stats read itself is one more).
    expect((await requests()) - before).toBe(2);
    expect((await api("GET", `/api/v1/tasks/${a.task.id}`)).body).toMatchObject({ status: "completed", result: { sent: 1 } });
    expect((await api("GET", `/api/v1/tasks/${b.task.id}`)).body.status).toBe("running");
    // Sent again (its answer lost): the same outcome, nothing completed twice; an empty list is no list.
    const again = await lease(q, { complete: [{ id: a.task.id, leaseToken: a.leaseToken, result: { sent: 1 } }] });
    expect(again.body).toEqual({ leases: [], results: [{ id: a.task.id, ok: true }] });
    expect((await lease(q, { complete: [] })).body).toEqual({ leases: [] });
  });

  it("a lease call completes leases of other shards and queues too, then leases", async () => {
    const q = freshQueue();
    const other = freshQueue();
    await api("PATCH", `/api/v1/queues/${q}`, { shards: 2 });
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: Array.from({ length: 6 }, (_, i) => ({ name: `t${i}` })) });
    await enqueue(other, { name: "elsewhere" });
    const mine = (await lease(q, { max: 4 })).body.leases;
    const [theirs] = (await lease(other)).body.leases;
    const held = [...mine, theirs];
    const next = await lease(q, { max: 2, complete: held.map((l: any) => ({ id: l.task.id, leaseToken: l.leaseToken })) });
    expect(next.body.results).toEqual(held.map((l: any) => ({ id: l.task.id, ok: true })));
    expect(next.body.leases).toHaveLength(2);
    for (const l of held) expect((await api("GET", `/api/v1/tasks/${l.task.id}`)).body.status).toBe("completed");
  });

  it("a lease call with a malformed completion is refused whole: nothing completed, nothing leased", async () => {
    const q = freshQueue();
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "a" }, { name: "b" }] });
    const [a] = (await lease(q)).body.leases;
    const refused = await lease(q, { complete: [{ id: a.task.id, leaseToken: a.leaseToken }, { id: a.task.id }] });
    expectProblem(refused, 400, "validation_failed");
    expect(refused.body.errors.map((e: any) => e.pointer)).toContain("/complete/1/leaseToken");
    expect((await api("GET", `/api/v1/tasks/${a.task.id}`)).body.status).toBe("running");
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toMatchObject({ pending: 1, running: 1 });
  });

  it("batch release hands many tasks back without using an attempt, one result per item", async () => {
    const q = freshQueue();
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "a" }, { name: "b" }, { name: "c" }] });
    const [a, b, c] = (await lease(q, { max: 3 })).body.leases;
    const back = await api("POST", "/api/v1/leases/release", {
      items: [
        { id: a.task.id, leaseToken: a.leaseToken },
        { id: b.task.id, leaseToken: b.leaseToken, delayMs: 60_000 },
        { id: c.task.id, leaseToken: "forged" },
      ],
    });
    expect(back.status).toBe(200);
    expect(back.body.results).toMatchObject([
      { id: a.task.id, ok: true },
      { id: b.task.id, ok: true },
      { id: c.task.id, ok: false, problem: { status: 409, type: "urn:edgeq:error:stale_lease" } },
    ]);
    expect((await api("GET", `/api/v1/tasks/${a.task.id}`)).body).toMatchObject({ status: "pending", attempts: 0 });
    expect((await api("GET", `/api/v1/tasks/${b.task.id}`)).body).toMatchObject({ status: "scheduled", attempts: 0 });
    expect((await api("GET", `/api/v1/tasks/${c.task.id}`)).body.status).toBe("running");
  });

  it("a long-polling lease is woken by an enqueue", async () => {
    const q = freshQueue();
    await enqueue(q, { name: "warm-up" });
    await lease(q);
    const started = Date.now();
    const waiting = lease(q, { waitMs: 10_000 });
    await pollWaiting(q);
    const { body: t } = await enqueue(q, { name: "wake" });
    const got = await waiting;
    expect(got.body.leases.map((l: any) => l.task.id)).toEqual([t.id]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("a long-polling lease is woken when the alarm makes a delayed task ready", async () => {
    const q = freshQueue();
    const { body: t } = await enqueue(q, { name: "later", delayMs: 60_000 });
    const started = Date.now();
    const waiting = lease(q, { waitMs: 10_000 });
    await pollWaiting(q);
    await advance(q, 60_000);
    expect((await waiting).body.leases.map((l: any) => l.task.id)).toEqual([t.id]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("a task that arrives after a long-polling consumer left is handed back, its attempt unused", async () => {
    const q = freshQueue();
    const left = new AbortController();
    const waiting = worker.fetch(
      new Request(`http://edgeq.test/api/v1/queues/${q}/leases`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ workerId: "gone", waitMs: 10_000 }),
        signal: left.signal,
      }),
      env,
      createExecutionContext(),
    );
    await pollWaiting(q);
    left.abort();
    const { body: t } = await enqueue(q, { name: "arrives-late" });
    expect(((await (await waiting).json()) as any).leases).toEqual([]);
    expect((await api("GET", `/api/v1/tasks/${t.id}`)).body).toMatchObject({ status: "pending", attempts: 0 });
    expect((await lease(q)).body.leases[0].task.id).toBe(t.id);
  });

  it("a long-polling lease on an empty queue answers empty when its time is up", async () => {
    const q = freshQueue();
    const res = await lease(q, { waitMs: 200 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ leases: [] });
  });
});

describe("large batches", () => {
  it("a batch just under the body limit, with large payloads, is stored and completed whole", async () => {
    const q = freshQueue();
    const payload = "x".repeat(120 * 1024);
    const tasks = Array.from({ length: 60 }, (_, i) => ({ name: `big${i}`, payload }));
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks });
    expect(made.status).toBe(201);
    // A lease answers at most ~4 MiB of payloads: two calls carry all 60.
    const first = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 60 })).body.leases;
    const second = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 60 })).body.leases;
    expect(first.length).toBeLessThan(60);
    const leases = [...first, ...second];
    expect(leases).toHaveLength(60);
    const done = await api("POST", "/api/v1/leases/complete", {
      items: leases.map((l: any) => ({ id: l.task.id, leaseToken: l.leaseToken, result: payload })),
    });
    expect(done.body.results.every((r: any) => r.ok)).toBe(true);
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({ completed: 60 });
  });
});

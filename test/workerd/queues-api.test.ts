import { describe, expect, it } from "vitest";
import { parseTaskId } from "../../durable/core/ids";
import { api, expectProblem, freshQueue } from "./helpers";

const batch = (queue: string, tasks: object[]) => api("POST", `/api/v1/queues/${queue}/tasks/batch`, { tasks });
const lease = (queue: string, max = 1) => api("POST", `/api/v1/queues/${queue}/leases`, { workerId: "w", max });

describe("queues over HTTP", () => {
  it("a queue is created by its first enqueue and listed with its depth per status", async () => {
    const q = freshQueue();
    expectProblem(await api("GET", `/api/v1/queues/${q}`), 404, "not_found");
    await batch(q, [{ name: "a" }, { name: "b" }, { name: "c", delayMs: 60_000 }]);
    await lease(q);
    const stats = await api("GET", `/api/v1/queues/${q}`);
    expect(stats.status).toBe(200);
    expect(stats.body.counts).toEqual({ pending: 1, running: 1, scheduled: 1 });
    expect(stats.body.settings).toMatchObject({ version: 0, shards: 1, paused: false, retentionDays: 7 });
    expect(stats.body.shards[0].rowsWritten).toBeGreaterThan(0);
    const list = await api("GET", "/api/v1/queues?limit=1000");
    expect(list.body.items.find((i: any) => i.name === q).counts).toEqual({ pending: 1, running: 1, scheduled: 1 });
  });

  it("pause stops leasing, resume starts it again", async () => {
    const q = freshQueue();
    await batch(q, [{ name: "a" }]);
    expect((await api("POST", `/api/v1/queues/${q}/pause`)).body.settings.paused).toBe(true);
    expect((await lease(q)).body.leases).toEqual([]);
    const polled = await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", waitMs: 5000 });
    expect(polled.body.leases).toEqual([]); // a long poll on a paused queue answers empty within about a second
    expect((await api("POST", `/api/v1/queues/${q}/tasks`, { name: "b" })).status).toBe(201);
    await api("POST", `/api/v1/queues/${q}/resume`);
    expect((await lease(q, 10)).body.leases).toHaveLength(2);
  });

  it("purge cancels pending and scheduled tasks and leaves running ones", async () => {
    const q = freshQueue();
    await batch(q, [{ name: "run", priority: 10 }, { name: "a" }, { name: "b", delayMs: 60_000 }]);
    const running = (await lease(q)).body.leases[0];
    const purged = await api("POST", `/api/v1/queues/${q}/purge`);
    expect(purged.status).toBe(200);
    expect(purged.body).toEqual({ cancelled: 2, done: true });
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({ running: 1, cancelled: 2 });
    const done = await api("POST", `/api/v1/tasks/${running.task.id}/complete`, { leaseToken: running.leaseToken });
    expect(done.body.status).toBe("completed");
  });

  it("retrying dead letters over HTTP makes the queue's failed tasks pending; a queue never made is 404", async () => {
    const q = freshQueue();
    await batch(q, [{ name: "a", maxAttempts: 1 }, { name: "b", maxAttempts: 1 }, { name: "c" }]);
    for (const l of (await lease(q, 2)).body.leases)
      await api("POST", `/api/v1/tasks/${l.task.id}/fail`, { leaseToken: l.leaseToken, error: { message: "x" } });
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({ pending: 1, failed: 2 });
    const retried = await api("POST", `/api/v1/queues/${q}/dead-letters/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toEqual({ retried: 2, done: true, failedBefore: expect.any(String) });
    const again = await api("POST", `/api/v1/queues/${q}/dead-letters/retry`, { failedBefore: retried.body.failedBefore });
    expect(again.body).toMatchObject({ retried: 0, done: true, failedBefore: retried.body.failedBefore });
    expectProblem(await api("POST", `/api/v1/queues/${q}/dead-letters/retry`, { failedBefore: "yesterday" }), 400, "validation_failed");
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({ pending: 3 });
    expectProblem(await api("POST", `/api/v1/queues/${freshQueue()}/dead-letters/retry`), 404, "not_found");
  });

  it("settings: defaults apply to new tasks, and shards may only grow", async () => {
    const q = freshQueue();
    const patched = await api("PATCH", `/api/v1/queues/${q}`, {
      defaults: { maxAttempts: 7, timeoutMs: 5000 },
      retentionDays: 3,
    });
    expect(patched.status).toBe(200);
    expect(patched.body.settings).toMatchObject({ retentionDays: 3, defaults: { maxAttempts: 7, timeoutMs: 5000 } });
    expect(patched.body.settings.defaults.backoff).toEqual({ baseMs: 1000, factor: 2, maxMs: 600000 });
    const t = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a" })).body;
    expect(t).toMatchObject({ maxAttempts: 7, timeoutMs: 5000 });
    expect((await api("PATCH", `/api/v1/queues/${q}`, { shards: 4 })).body.settings.shards).toBe(4);
    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { shards: 2 }), 409, "invalid_state");
    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { shards: 0 }), 400, "validation_failed");
  });

  it("with several shards, tasks spread over them, ids name their shard and every task is leased", async () => {
    const q = freshQueue();
    await api("PATCH", `/api/v1/queues/${q}`, { shards: 3 });
    const made = (
      await batch(
        q,
        Array.from({ length: 30 }, (_, i) => ({ name: `t${i}` })),
      )
    ).body.tasks;
    const shards = new Set(made.map((t: any) => parseTaskId(t.id)!.shard));
    expect([...shards].sort()).toEqual([0, 1, 2]);
    for (const t of made) expect((await api("GET", `/api/v1/tasks/${t.id}`)).body.name).toBe(t.name);
    const leased = (await lease(q, 100)).body.leases;
    expect(leased).toHaveLength(30);
    const stats = (await api("GET", `/api/v1/queues/${q}`)).body;
    expect(stats.shards.map((s: any) => s.counts.running)).toEqual([10, 10, 10]);
  });

  it("an idempotency key meets its first task on any shard count", async () => {
    const q = freshQueue();
    await api("PATCH", `/api/v1/queues/${q}`, { shards: 8 });
    const first = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a", idempotencyKey: "invoice-7" });
    const again = await batch(q, [
      { name: "a", idempotencyKey: "invoice-7" },
      { name: "b", idempotencyKey: "invoice-8" },
    ]);
    expect(again.body.tasks[0].id).toBe(first.body.id);
    expect(again.body.tasks[1].id).not.toBe(first.body.id);
  });

  it("the live listing shows dead letters page by page", async () => {
    const q = freshQueue();
    await batch(
      q,
      Array.from({ length: 5 }, (_, i) => ({ name: `t${i}`, maxAttempts: 1 })),
    );
    const leases = (await lease(q, 5)).body.leases;
    await api("POST", "/api/v1/leases/fail", {
      items: leases.map((l: any) => ({ id: l.task.id, leaseToken: l.leaseToken, error: { message: "boom" } })),
    });
    const page1 = await api("GET", `/api/v1/queues/${q}/tasks?status=failed&limit=3`);
    expect(page1.body.items).toHaveLength(3);
    expect(page1.body.nextCursor).toBe(page1.body.items[2].id);
    const page2 = await api("GET", `/api/v1/queues/${q}/tasks?status=failed&limit=3&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items).toHaveLength(2);
    expect(page2.body.nextCursor).toBeNull();
    const names = [...page1.body.items, ...page2.body.items].map((t: any) => t.name);
    expect(names).toEqual(["t0", "t1", "t2", "t3", "t4"]);
    expect(page2.body.items[0].error).toEqual({ message: "boom" });
  });

  it("health answers without credentials", async () => {
    const res = await api("GET", "/health", undefined, { authorization: "" });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok" });
  });
});

import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { advance, api, expectProblem, freshQueue } from "./helpers";

const as = (token: string) => ({ authorization: `Bearer ${token}` });

describe("workers", () => {
  it("register, heartbeat with tasks in hand and counts, list and get", async () => {
    const q = freshQueue();
    const made = await api("POST", "/api/v1/workers", { name: "billing-1", queues: [q], concurrency: 4 });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: "billing-1", queues: [q], concurrency: 4, status: "idle", completed: 0 });
    const id = made.body.id;
    expect(id).toMatch(/^w_[0-9a-f]{16}$/);

    const beat = await api("POST", `/api/v1/workers/${id}/heartbeat`, {
      currentTasks: ["01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.q"],
      completed: 5,
      failed: 1,
      busyMs: 1200,
    });
    expect(beat.body).toMatchObject({
      status: "active",
      completed: 5,
      failed: 1,
      busyMs: 1200,
      currentTasks: ["01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.q"],
    });
    const again = await api("POST", `/api/v1/workers/${id}/heartbeat`, { completed: 2, busyMs: 300 });
    expect(again.body).toMatchObject({ status: "idle", completed: 7, failed: 1, busyMs: 1500, currentTasks: [] });

    expect((await api("GET", `/api/v1/workers/${id}`)).body.completed).toBe(7);
    const list = await api("GET", "/api/v1/workers?limit=1000");
    expect(list.body.items.map((w: any) => w.id)).toContain(id);
  });

  it("a worker that misses its heartbeats shows as lost, and its tasks are leasable again once their leases expire", async () => {
    const q = freshQueue();
    const { id } = (await api("POST", "/api/v1/workers", { name: "doomed", queues: [q] })).body;
    const { body: task } = await api("POST", `/api/v1/queues/${q}/tasks`, {
      name: "t",
      timeoutMs: 1000,
      backoff: { baseMs: 0, factor: 1, maxMs: 0 },
    });
    const lease = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: id })).body.leases[0];
    await api("POST", `/api/v1/workers/${id}/heartbeat`, { currentTasks: [lease.task.id] });
    // It stops: its last heartbeat is now 31 s old, and the lease has run out.
    await runInDurableObject(env.QUEUE_REGISTRY.get(env.QUEUE_REGISTRY.idFromName("default")), (_o, state) => {
      state.storage.sql.exec("UPDATE workers SET last_seen_at = last_seen_at - 31000 WHERE id = ?", id);
    });
    expect((await api("GET", `/api/v1/workers/${id}`)).body.status).toBe("lost");
    await advance(q, 1000);
    const next = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "rescuer" })).body.leases[0];
    expect(next.task).toMatchObject({ id: task.id, attempts: 2, workerId: "rescuer" });
  });

  it("unknown workers are not found, other tenants' workers too, and registering needs the consume permission", async () => {
    expectProblem(await api("GET", "/api/v1/workers/w_0000000000000000"), 404, "not_found");
    expectProblem(await api("POST", "/api/v1/workers/w_0000000000000000/heartbeat", {}), 404, "not_found");
    expectProblem(await api("GET", "/api/v1/workers/nope"), 400, "validation_failed");
    const { id } = (await api("POST", "/api/v1/workers", { name: "mine", queues: ["a"] })).body;
    const other = (await api("POST", "/api/v1/keys", { role: "admin", name: "x", tenant: "workers-other" })).body.key;
    expectProblem(await api("GET", `/api/v1/workers/${id}`, undefined, as(other)), 404, "not_found");
    const producer = (await api("POST", "/api/v1/keys", { role: "producer", name: "p" })).body.key;
    expectProblem(await api("POST", "/api/v1/workers", { name: "x", queues: ["a"] }, as(producer)), 403, "forbidden");
    expectProblem(await api("POST", "/api/v1/workers", { name: "x", queues: [] }), 400, "validation_failed");
  });
});

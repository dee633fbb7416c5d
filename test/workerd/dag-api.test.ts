import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { QueueShard } from "../../durable/queue-shard";
import { api, expectProblem, freshQueue, shardStub, until } from "./helpers";

/** A queue with `shards` shards. */
async function queueWith(shards: number) {
  const q = freshQueue("dag");
  await api("PATCH", `/api/v1/queues/${q}`, { shards });
  return q;
}

const status = async (id: string) => (await api("GET", `/api/v1/tasks/${id}`)).body.status as string;

/** Leases whatever is ready and completes (or fails for good) each; returns the ids it ran. */
async function runReady(q: string, outcome: (id: string) => "complete" | "fail" = () => "complete") {
  const { body } = await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 100 });
  for (const l of body.leases) {
    if (outcome(l.task.id) === "complete") await api("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken });
    else await api("POST", `/api/v1/tasks/${l.task.id}/fail`, { leaseToken: l.leaseToken, error: { message: "boom" }, retryable: false });
  }
  return body.leases.map((l: { task: { id: string } }) => l.task.id) as string[];
}

/** The event types a shard's outbox holds for task `id`. */
async function eventsOf(q: string, id: string): Promise<string[]> {
  const shard = Number(id.split(".")[1]);
  return runInDurableObject(shardStub(q, shard), (_i: QueueShard, state) =>
    state.storage.sql
      .exec<{ events: string }>("SELECT events FROM outbox ORDER BY seq")
      .toArray()
      .flatMap((r) => (JSON.parse(r.events) as { id: string; type: string }[]).filter((e) => e.id === id).map((e) => e.type)),
  );
}

describe("dependencies (DAG) across shards", () => {
  it("a 3-level DAG over different shards completes in dependency order", async () => {
    const q = await queueWith(4);
    const { status: code, body } = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [
        { name: "report", ref: "report", dependsOn: ["ref:left", "ref:right"] },
        { name: "left", ref: "left", dependsOn: ["ref:upload"] },
        { name: "right", ref: "right", dependsOn: ["ref:upload"] },
        { name: "upload", ref: "upload" },
      ],
    });
    expect(code).toBe(201);
    const [report, left, right, upload] = body.tasks;
    expect(new Set(body.tasks.map((t: { id: string }) => t.id.split(".")[1])).size).toBeGreaterThan(1);
    expect(report).toMatchObject({ status: "blocked", dependsOn: [left.id, right.id], waitingOn: [left.id, right.id] });
    expect(upload.status).toBe("pending");

    const order: string[][] = [];
    for (let round = 0; order.flat().length < 4 && round < 50; round++) {
      const ran = await runReady(q);
      if (ran.length > 0) order.push(ran.sort());
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(order).toEqual([[upload.id], [left.id, right.id].sort(), [report.id]]);
    expect((await api("GET", `/api/v1/tasks/${report.id}`)).body).toMatchObject({ status: "completed", waitingOn: [] });
  });

  it("a failed root cancels its whole subtree; `run` policy releases its dependent instead", async () => {
    const q = await queueWith(3);
    const { body } = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [
        { name: "root", ref: "root", maxAttempts: 1 },
        { name: "a", ref: "a", dependsOn: ["ref:root"] },
        { name: "b", ref: "b", dependsOn: ["ref:a"] },
        { name: "c", dependsOn: ["ref:b", "ref:a"] },
        { name: "cleanup", dependsOn: ["ref:root"], onDependencyFailure: "run" },
      ],
    });
    const [root, a, b, c, cleanup] = body.tasks;
    expect(await runReady(q, () => "fail")).toEqual([root.id]);
    await until(async () => (await status(c.id)) === "cancelled");
    for (const t of [a, b, c]) expect(await status(t.id)).toBe("cancelled");
    expect((await api("GET", `/api/v1/tasks/${b.id}`)).body.error.message).toBe(`Dependency ${a.id} ended cancelled.`);
    await until(async () => (await status(cleanup.id)) === "pending");
  });

  it("a lost delivery is retried until acknowledged, and the dependent is released exactly once", async () => {
    const q = await queueWith(2);
    const { body } = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [{ name: "dep", ref: "dep" }, { name: "dependent", dependsOn: ["ref:dep"] }],
    });
    let [dep, dependent] = body.tasks;
    // The two must live on different shards for a message to cross; place the dependent again if not.
    while (dep.id.split(".")[1] === dependent.id.split(".")[1]) {
      dependent = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "dependent", dependsOn: [dep.id] })).body;
    }
    const target = shardStub(q, Number(dependent.id.split(".")[1]));
    const source = shardStub(q, Number(dep.id.split(".")[1]));
    const sql = (query: string, ...params: unknown[]) =>
      runInDurableObject(source, (_i: QueueShard, state) => state.storage.sql.exec(query, ...params).one() as Record<string, unknown>);
    await until(async () => (await sql("SELECT has_dependents AS h FROM tasks WHERE id = ?", dep.id)).h === 1); // registration delivered
    await runInDurableObject(target, (instance: QueueShard) => {
      instance.faults.receive = 1;
    });
    expect(await runReady(q)).toEqual([dep.id]);
    await until(async () => (await status(dependent.id)) === "pending");
    expect(await runInDurableObject(target, (i: QueueShard) => i.faults.receive)).toBe(0); // the fault was hit
    expect((await eventsOf(q, dependent.id)).filter((e) => e === "unblocked")).toHaveLength(1);
    expect((await sql("SELECT count(*) AS n FROM mail")).n).toBe(0);
  });

  it("cancelling a blocked task works and cancels what waits on it", async () => {
    const q = await queueWith(2);
    const { body } = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [{ name: "a", ref: "a" }, { name: "b", ref: "b", dependsOn: ["ref:a"] }, { name: "c", dependsOn: ["ref:b"] }],
    });
    const [a, b, c] = body.tasks;
    const cancelled = await api("POST", `/api/v1/tasks/${b.id}/cancel`);
    expect(cancelled.body).toMatchObject({ status: "cancelled" });
    await until(async () => (await status(c.id)) === "cancelled");
    expect(await runReady(q)).toEqual([a.id]);
    await new Promise((r) => setTimeout(r, 50));
    expect(await status(b.id)).toBe("cancelled");
  });

  it("depending on a completed task is satisfied at once; on a failed one, the policy applies at once", async () => {
    const q = await queueWith(1);
    const done = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "done" })).body;
    const bad = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "bad", maxAttempts: 1, priority: 1 })).body;
    await runReady(q, (id) => (id === bad.id ? "fail" : "complete"));
    const other = await queueWith(2); // across queues of the tenant too
    expect((await api("POST", `/api/v1/queues/${other}/tasks`, { name: "x", dependsOn: [done.id] })).body).toMatchObject({ status: "pending", waitingOn: [] });
    expect((await api("POST", `/api/v1/queues/${other}/tasks`, { name: "y", dependsOn: [bad.id] })).body.status).toBe("cancelled");
    expect((await api("POST", `/api/v1/queues/${other}/tasks`, { name: "z", dependsOn: [bad.id], onDependencyFailure: "run" })).body.status).toBe(
      "pending",
    );
  });

  it("unknown ids, other tenants' ids and cycles are refused with 400 naming them, and nothing is written", async () => {
    const q = await queueWith(1);
    const ghost = "01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.nowhere";
    const unknown = await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "ok" }, { name: "x", dependsOn: [ghost] }] });
    expectProblem(unknown, 400, "validation_failed");
    expect(unknown.body.detail).toContain(ghost);
    expect(unknown.body.errors).toEqual([{ pointer: "/tasks/1/dependsOn/0", detail: `task ${ghost} does not exist` }]);

    // A task of another tenant is unknown here.
    const key = (await api("POST", "/api/v1/keys", { tenant: "other-tenant", role: "producer", name: "p" })).body.key;
    const theirs = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "theirs" }, { authorization: `Bearer ${key}` })).body;
    const cross = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "mine", dependsOn: [theirs.id] });
    expectProblem(cross, 400, "validation_failed");
    expect(cross.body.detail).toContain(theirs.id);

    const cycle = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [{ name: "a", ref: "a", dependsOn: ["ref:b"] }, { name: "b", ref: "b", dependsOn: ["ref:a"] }],
    });
    expectProblem(cycle, 400, "validation_failed");
    expect(cycle.body.detail).toBe("dependency cycle through ref:a → ref:b");
    const missingRef = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a", dependsOn: ["ref:nope"] });
    expectProblem(missingRef, 400, "validation_failed");
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({});
  });
});

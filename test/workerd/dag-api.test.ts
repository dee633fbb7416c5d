import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { QueueShard } from "../../durable/queue-shard";
import { MAIL_MAX_ATTEMPTS } from "../../durable/core/engine";
import { shardForKey } from "../../durable/core/ids";
import { advance, api, expectProblem, freshQueue, shardStub, until } from "./helpers";

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

    // Each round leases what is ready and completes it; a task's round must come after its dependencies' rounds.
    const roundOf = new Map<string, number>();
    for (let round = 0; roundOf.size < 4 && round < 100; round++) {
      const ran = await runReady(q);
      for (const id of ran) roundOf.set(id, round);
      if (ran.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(roundOf.size).toBe(4);
    const at = (t: { id: string }) => roundOf.get(t.id)!;
    expect(at(left)).toBeGreaterThan(at(upload));
    expect(at(right)).toBeGreaterThan(at(upload));
    expect(at(report)).toBeGreaterThan(Math.max(at(left), at(right)));
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
      tasks: [
        { name: "dep", ref: "dep" },
        { name: "dependent", dependsOn: ["ref:dep"] },
      ],
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

  it("a message that always fails is retried alone, dies after MAIL_MAX_ATTEMPTS, and holds up no other", async () => {
    const q = await queueWith(2);
    const dep = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "dep" })).body;
    const depShard = Number(dep.id.split(".")[1]);
    // A group key places both dependents on the other shard, so their news crosses shards.
    let group = "g0";
    for (let i = 1; shardForKey(group, 2) === depShard; i++) group = `g${i}`;
    const add = async () =>
      (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "dependent", dependsOn: [dep.id], groupKey: group })).body;
    const poisoned = await add();
    const healthy = await add();
    const source = shardStub(q, depShard);
    const target = shardStub(q, 1 - depShard);
    const sql = (query: string) =>
      runInDurableObject(source, (_i: QueueShard, state) => state.storage.sql.exec(query).one() as Record<string, number>);
    await until(async () => (await sql(`SELECT count(*) AS n FROM edges`)).n === 2); // both registered
    await runInDurableObject(target, (i: QueueShard) => {
      i.faults.poison = poisoned.id;
    });
    expect(await runReady(q)).toEqual([dep.id]);
    await until(async () => (await status(healthy.id)) === "pending");
    expect(await status(poisoned.id)).toBe("blocked");
    for (let i = 0; i < MAIL_MAX_ATTEMPTS + 2; i++) await advance(q, 120_000, depShard);
    expect((await sql("SELECT count(*) AS n FROM mail")).n).toBe(0);
    expect((await sql("SELECT count(*) AS n FROM mail_dead")).n).toBe(1);
    const stats = (await api("GET", `/api/v1/queues/${q}`)).body.shards;
    expect(stats.find((s: { shard: number }) => s.shard === depShard).deadMail).toBe(1);
  }, 30_000);

  it("cancelling a blocked task works and cancels what waits on it", async () => {
    const q = await queueWith(2);
    const { body } = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [
        { name: "a", ref: "a" },
        { name: "b", ref: "b", dependsOn: ["ref:a"] },
        { name: "c", dependsOn: ["ref:b"] },
      ],
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
    expect((await api("POST", `/api/v1/queues/${other}/tasks`, { name: "x", dependsOn: [done.id] })).body).toMatchObject({
      status: "pending",
      waitingOn: [],
    });
    expect((await api("POST", `/api/v1/queues/${other}/tasks`, { name: "y", dependsOn: [bad.id] })).body.status).toBe("cancelled");
    expect(
      (await api("POST", `/api/v1/queues/${other}/tasks`, { name: "z", dependsOn: [bad.id], onDependencyFailure: "run" })).body.status,
    ).toBe("pending");
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
      tasks: [
        { name: "a", ref: "a", dependsOn: ["ref:b"] },
        { name: "b", ref: "b", dependsOn: ["ref:a"] },
      ],
    });
    expectProblem(cycle, 400, "validation_failed");
    expect(cycle.body.detail).toBe("dependency cycle through ref:a → ref:b");
    const missingRef = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a", dependsOn: ["ref:nope"] });
    expectProblem(missingRef, 400, "validation_failed");
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({});
  });

  it("parentId across queues must exist, like a dependency", async () => {
    const q = await queueWith(1);
    const ghost = "01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.nowhere";
    const res = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "orphan", parentId: ghost });
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors).toEqual([{ pointer: "/parentId", detail: `task ${ghost} does not exist` }]);
  });
});

describe("parents and children across shards", () => {
  it("a fan-in of 200 children to one parent: the parent runs last and receives every result", async () => {
    const q = await queueWith(4);
    const children = Array.from({ length: 200 }, (_, i) => ({ name: "render", parentId: "ref:digest", payload: { page: i } }));
    const { status: code, body } = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [{ name: "digest", ref: "digest", waitForChildren: true, priority: 10 }, ...children],
    });
    expect(code).toBe(201);
    const parent = body.tasks[0];
    // Sealed by its batch, and every child registered before the answer.
    const before = (await api("GET", `/api/v1/tasks/${parent.id}`)).body;
    expect(before).toMatchObject({ status: "blocked", waitForChildren: true, sealed: true, children: { total: 200, active: 200 } });

    let leased: {
      task: { id: string; name: string; payload: { page: number }; children: unknown };
      leaseToken: string;
      childResults?: Record<string, unknown>;
    }[] = [];
    const ran: string[] = [];
    for (let round = 0; !ran.includes(parent.id) && round < 100; round++) {
      leased = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 100 })).body.leases;
      if (leased.length === 0) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const items = leased
        .filter((l) => l.task.id !== parent.id)
        .map((l) => ({ id: l.task.id, leaseToken: l.leaseToken, result: { page: l.task.payload.page } }));
      if (items.length > 0) await api("POST", "/api/v1/leases/complete", { items });
      ran.push(...leased.map((l) => l.task.id));
    }
    expect(ran.at(-1)).toBe(parent.id);
    expect(ran).toHaveLength(201);
    const lease = leased.find((l) => l.task.id === parent.id)!;
    expect(Object.keys(lease.childResults!)).toHaveLength(200);
    body.tasks.slice(1).forEach((child: { id: string }, i: number) => expect(lease.childResults![child.id]).toEqual({ page: i }));
    expect(lease.task.children).toEqual({ total: 200, active: 0, completed: 200, failed: 0, cancelled: 0 });

    const page1 = (await api("GET", `/api/v1/tasks/${parent.id}/children?limit=150`)).body;
    const page2 = (await api("GET", `/api/v1/tasks/${parent.id}/children?limit=150&cursor=${page1.nextCursor}`)).body;
    const listed = [...page1.items, ...page2.items];
    expect(listed.map((t: { id: string }) => t.id)).toEqual(
      body.tasks
        .slice(1)
        .map((t: { id: string }) => t.id)
        .sort(),
    );
    expect(listed.every((t: { status: string; parentId: string }) => t.status === "completed" && t.parentId === parent.id)).toBe(true);
    expect(page2.nextCursor).toBeNull();
  });

  it("children added by later calls: the parent waits for POST /seal, then for the children still running", async () => {
    const q = await queueWith(2);
    const parent = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "parent", waitForChildren: true })).body;
    expect(parent).toMatchObject({ status: "blocked", sealed: false });
    const a = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a", parentId: parent.id })).body;
    const b = (await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "b", parentId: parent.id }] })).body.tasks[0];
    // Registered with the parent by the time the enqueue answered.
    expect((await api("GET", `/api/v1/tasks/${parent.id}`)).body.children).toMatchObject({ total: 2, active: 2 });
    expect(await runReady(q, (id) => (id === a.id ? "complete" : "fail"))).toHaveLength(2);
    await until(async () => (await api("GET", `/api/v1/tasks/${parent.id}`)).body.children.active === 0);
    expect(await status(parent.id)).toBe("blocked");
    const sealed = await api("POST", `/api/v1/tasks/${parent.id}/seal`);
    expect(sealed.body).toMatchObject({ status: "pending", sealed: true, children: { total: 2, completed: 1, failed: 1 } });
    const [lease] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 1 })).body.leases;
    expect(lease.childResults).toEqual({ [a.id]: null, [b.id]: null });
    expectProblem(await api("POST", "/api/v1/tasks/01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.nowhere/seal"), 404, "not_found");
    expectProblem(await api("GET", `/api/v1/tasks/01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.${q}/children`), 404, "not_found");
  });
});

import { describe, expect, it } from "vitest";
import { shardForKey } from "../../durable/core/ids";
import { env, runInDurableObject } from "cloudflare:test";
import type { QueueRegistry } from "../../durable/queue-registry";
import type { QueueShard } from "../../durable/queue-shard";
import { api, expectProblem, freshQueue, shardStub, until } from "./helpers";

/** The first name `${prefix}0`, `${prefix}1`, … whose home among `shards` is not `shard`. */
function nameAway(prefix: string, shards: number, shard: number): string {
  for (let i = 0; ; i++) if (shardForKey(`${prefix}${i}`, shards) !== shard) return `${prefix}${i}`;
}

async function queueWithShards(shards: number, prefix: string) {
  const q = freshQueue(prefix);
  expect((await api("PATCH", `/api/v1/queues/${q}`, { shards })).status).toBe(200);
  return q;
}

async function taskCount(q: string) {
  const res = await api("GET", `/api/v1/queues/${q}`);
  expect(res.status).toBe(200);
  return Object.values(res.body.counts as Record<string, number>).reduce((a, b) => a + b, 0);
}

describe("idempotency across groups and shards", () => {
  it("one idempotency key makes one task on a queue of 8 shards, whatever the groupKey", async () => {
    const q = await queueWithShards(8, "idem8");
    const answers = [];
    for (let g = 0; g < 8; g++) {
      answers.push(
        await api("POST", `/api/v1/queues/${q}/tasks`, {
          name: "charge",
          payload: { g },
          idempotencyKey: "order-42",
          groupKey: `cust-${g}`,
        }),
      );
    }
    expect(answers.map((a) => a.status)).toEqual([201, 200, 200, 200, 200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.every((a) => a.body.groupKey === "cust-0" && a.body.payload.g === 0)).toBe(true);
    // and without a group, the same key still names that task
    const plain = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "charge", idempotencyKey: "order-42" });
    expect(plain.status).toBe(200);
    expect(plain.body.id).toBe(answers[0].body.id);
    expect(await taskCount(q)).toBe(1);
  });

  it("one key inside one batch over 4 shards makes one task", async () => {
    const q = await queueWithShards(4, "idemb");
    const tasks = Array.from({ length: 6 }, (_, i) => ({ name: "t", payload: { i }, idempotencyKey: "k-1", groupKey: `g-${i}` }));
    const res = await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks });
    expect(res.status).toBe(201);
    expect(new Set(res.body.tasks.map((t: { id: string }) => t.id)).size).toBe(1);
    expect(await taskCount(q)).toBe(1);
  });

  it("a task placed by its group keeps its group's limits exact, and its key still dedupes", async () => {
    const q = await queueWithShards(4, "idemg");
    expect((await api("PATCH", `/api/v1/queues/${q}`, { groupLimits: { default: { concurrency: 1 } } })).status).toBe(200);
    // keys whose home shards differ from the group's
    const tasks = Array.from({ length: 12 }, (_, i) => ({ name: "t", idempotencyKey: `key-${i}`, groupKey: "one-group" }));
    expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks })).status).toBe(201);
    expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks })).status).toBe(201);
    expect(await taskCount(q)).toBe(12);
    const leased = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 100 })).body.leases;
    expect(leased).toHaveLength(1);
    const shards = new Set(
      (await api("GET", `/api/v1/queues/${q}/tasks?limit=100`)).body.items.map((t: { id: string }) => t.id.split(".")[1]),
    );
    expect(shards.size).toBe(1);
  });

  it("a creation cut short after its key was claimed is finished by the replay, with the claimed id", async () => {
    // The queue grew to 4 shards a minute ago (the registry's clock set back for it); the claim below is 20 s old.
    const registry = env.QUEUE_REGISTRY.get(env.QUEUE_REGISTRY.idFromName("default"));
    await runInDurableObject(registry, (r: QueueRegistry) => {
      r.clock = { now: () => Date.now() - 60_000 };
    });
    const q = await queueWithShards(4, "idemh");
    await runInDurableObject(registry, (r: QueueRegistry) => {
      r.clock = { now: () => Date.now() };
    });
    // A group away from shard 0, where any group lived while the queue had one shard.
    const grp = nameAway("grp", 4, 0);
    // Find a key and a group whose home shards differ.
    const key = nameAway("k", 4, shardForKey(grp, 4));
    const home = shardForKey(key, 4);
    const settings = (await api("GET", `/api/v1/queues/${q}`)).body.settings;
    // The claim of a request that then failed, 20 s ago (the home shard's clock set back for it).
    await runInDurableObject(shardStub(q, home), (i: QueueShard) => {
      i.clock = { now: () => Date.now() - 20_000 };
    });
    const claim = await shardStub(q, home).claim(
      { tenant: "default", queue: q, shard: home },
      [{ key, shard: shardForKey(grp, 4) }],
      settings,
    );
    await runInDurableObject(shardStub(q, home), (i: QueueShard) => {
      i.clock = { now: () => Date.now() };
    });
    if (!claim.ok) throw new Error(claim.problem.detail);
    const { id, fresh } = claim.value[0];
    expect(fresh).toBe(true);
    expect((await api("GET", `/api/v1/tasks/${id}`)).status).toBe(404);
    // A replay with another group cannot finish it (the task would sit in the wrong group's shard).
    const other = nameAway("o", 4, shardForKey(grp, 4));
    expectProblem(
      await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: other }),
      409,
      "invalid_state",
    );
    const replay = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: grp });
    expect(replay.status).toBe(201); // this request made it
    expect(replay.body.id).toBe(id);
    expect(Date.parse(replay.body.createdAt)).toBeLessThan(Date.now() - 15_000); // created when its key was claimed
    const again = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: grp });
    expect([again.status, again.body.id]).toEqual([200, id]);
    expect((await api("GET", `/api/v1/tasks/${id}`)).status).toBe(200);
    expect(await taskCount(q)).toBe(1);
  });

  it("a replay while the first creation is still on its way answers 409 and makes nothing", async () => {
    const q = await queueWithShards(4, "idemf");
    const key = nameAway("f", 4, shardForKey("grp", 4));
    const home = shardForKey(key, 4);
    const settings = (await api("GET", `/api/v1/queues/${q}`)).body.settings;
    const claim = await shardStub(q, home).claim(
      { tenant: "default", queue: q, shard: home },
      [{ key, shard: shardForKey("grp", 4) }],
      settings,
    );
    if (!claim.ok) throw new Error(claim.problem.detail);
    expectProblem(
      await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: "grp" }),
      409,
      "invalid_state",
    );
    expect(await taskCount(q)).toBe(0);
  });

  it("deleting a task frees its key, also when the key's home is another shard", async () => {
    const q = await queueWithShards(4, "idemd");
    const key = nameAway("d", 4, shardForKey("grp", 4));
    const first = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: "grp" });
    expect(first.status).toBe(201);
    expect((await api("POST", `/api/v1/tasks/${first.body.id}/cancel`)).status).toBe(200);
    expect((await api("DELETE", `/api/v1/tasks/${first.body.id}`)).status).toBe(204);
    // The delete freed the key at its home shard before it answered.
    const home = shardStub(q, shardForKey(key, 4));
    const held = await runInDurableObject(
      home,
      (_shard: QueueShard, state) => state.storage.sql.exec("SELECT key FROM idem_keys").toArray().length,
    );
    expect(held).toBe(0);
    const again = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: "grp" });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.body.id);
  });

  it("an idempotency window longer than retention is refused, so a key never outlives its task", async () => {
    const q = freshQueue("idemw");
    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { idempotencyWindowMs: 8 * 86_400_000 }), 409, "invalid_state");
    expectProblem(
      await api("PATCH", `/api/v1/queues/${q}`, { retentionDays: 1, idempotencyWindowMs: 25 * 3_600_000 }),
      409,
      "invalid_state",
    );
    const ok = await api("PATCH", `/api/v1/queues/${q}`, { retentionDays: 1, idempotencyWindowMs: 86_400_000 });
    expect(ok.status).toBe(200);
    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { retentionDays: 0 }), 400, "validation_failed");
    expect((await api("GET", `/api/v1/queues/${q}`)).body.settings).toMatchObject({ retentionDays: 1, idempotencyWindowMs: 86_400_000 });
  });

  it("a task deleted while its key's home cannot be told is not made again by a replay", async () => {
    const q = await queueWithShards(4, "idemt");
    const key = nameAway("t", 4, shardForKey("grp", 4));
    const home = shardStub(q, shardForKey(key, 4));
    // An old claim (so a missing task is not "on its way"), then the task made under it.
    await runInDurableObject(home, (i: QueueShard) => {
      i.clock = { now: () => Date.now() - 20_000 };
    });
    const first = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: "grp" });
    await runInDurableObject(home, (i: QueueShard) => {
      i.clock = { now: () => Date.now() };
      i.faults.receive = 1_000; // the home shard takes no news: the key stays claimed
    });
    expect((await api("POST", `/api/v1/tasks/${first.body.id}/cancel`)).status).toBe(200);
    expect((await api("DELETE", `/api/v1/tasks/${first.body.id}`)).status).toBe(204);
    const replay = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: "grp" });
    expectProblem(replay, 409, "invalid_state");
    expect((await api("GET", `/api/v1/tasks/${first.body.id}`)).status).toBe(404);
    await runInDurableObject(home, (i: QueueShard) => {
      i.faults.receive = 0;
    });
    // The news arrives (the deleting shard's mail); then the key is free.
    const { runDurableObjectAlarm } = await import("cloudflare:test");
    const keyHeld = () =>
      runInDurableObject(
        home,
        (_i: QueueShard, state) => state.storage.sql.exec("SELECT 1 FROM idem_keys WHERE key = ?", key).toArray().length,
      );
    await until(async () => {
      await runDurableObjectAlarm(shardStub(q, shardForKey("grp", 4))); // retries back off from 100 ms
      return (await keyHeld()) === 0;
    });
    const fresh = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: "grp" });
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(first.body.id);
  });

  it("a key claimed before the queue grew still names its task, and deleting that task frees it", async () => {
    const q = freshQueue("idemg2");
    const key = nameAway("w", 8, 0);
    const group = nameAway("h", 8, 0);
    const first = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key });
    expect(first.status).toBe(201);
    expect(first.body.id.split(".")[1]).toBe("0"); // one shard: there
    const grown = await api("PATCH", `/api/v1/queues/${q}`, { shards: 8 });
    expect(grown.status).toBe(200);
    expect(grown.body.settings).not.toHaveProperty("shardHistory"); // bookkeeping, not API
    for (const body of [
      { name: "t", idempotencyKey: key },
      { name: "t", idempotencyKey: key, groupKey: group },
    ]) {
      const replay = await api("POST", `/api/v1/queues/${q}/tasks`, body);
      expect([replay.status, replay.body.id]).toEqual([200, first.body.id]);
    }
    expect(await taskCount(q)).toBe(1);
    expect((await api("POST", `/api/v1/tasks/${first.body.id}/cancel`)).status).toBe(200);
    expect((await api("DELETE", `/api/v1/tasks/${first.body.id}`)).status).toBe(204);
    const again = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.body.id);
    expect((await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key })).body.id).toBe(again.body.id);
  });

  it("a key held by a group's shard from before home shards keeps answering its task, replay after replay", async () => {
    const q = await queueWithShards(4, "idemy");
    const key = nameAway("y", 4, shardForKey("grp", 4));
    const groupShard = shardForKey("grp", 4);
    // The task as an older version placed it: on its group's shard, its key held there.
    const old = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", groupKey: "grp" })).body;
    await runInDurableObject(shardStub(q, groupShard), (_i: QueueShard, state) => {
      state.storage.sql.exec("INSERT INTO idem_keys (key, task_id, created_at) VALUES (?, ?, ?)", key, old.id, Date.now());
    });
    const home = shardStub(q, shardForKey(key, 4));
    await runInDurableObject(home, (i: QueueShard) => {
      i.clock = { now: () => Date.now() - 20_000 }; // the claim the first replay makes is 20 s old by the second
    });
    for (let i = 0; i < 3; i++) {
      const replay = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: key, groupKey: "grp" });
      expect([replay.status, replay.body.id]).toEqual([200, old.id]);
    }
    await runInDurableObject(home, (i: QueueShard) => {
      i.clock = { now: () => Date.now() };
    });
    expect(await taskCount(q)).toBe(1);
  });

  it("an idempotency key with control characters is refused", async () => {
    const q = freshQueue("idemc");
    const res = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", idempotencyKey: "\u0000deleted:x" });
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors[0].pointer).toBe("/idempotencyKey");
  });
});

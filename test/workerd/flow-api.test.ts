import { describe, expect, it } from "vitest";
import { api, expectProblem, freshQueue } from "./helpers";

describe("flow control through the API", () => {
  it("group fairness: with one group of 1,000 and nine of 10, the small groups all start before the big group's 100th task", async () => {
    const q = freshQueue("fair");
    const big = Array.from({ length: 1000 }, (_, i) => ({ name: "big", groupKey: "big", payload: { i } }));
    expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: big })).status).toBe(201);
    const small = Array.from({ length: 9 }, (_, g) => Array.from({ length: 10 }, () => ({ name: "small", groupKey: `small-${g}` }))).flat();
    expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: small })).status).toBe(201);

    const groups = (await api("GET", `/api/v1/queues/${q}/groups`)).body.items;
    expect(groups).toHaveLength(10);
    expect(groups[0]).toEqual({ group: "big", pending: 1000, running: 0 });
    expect(groups[1]).toEqual({ group: "small-0", pending: 10, running: 0 });

    const order: string[] = [];
    while (order.filter((g) => g.startsWith("small")).length < 90) {
      const { leases } = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 25 })).body;
      const items = leases.map((l: { task: { id: string }; leaseToken: string }) => ({ id: l.task.id, leaseToken: l.leaseToken }));
      await api("POST", "/api/v1/leases/complete", { items });
      order.push(...leases.map((l: { task: { groupKey: string } }) => l.task.groupKey));
    }
    const lastSmall = order.findLastIndex((g) => g.startsWith("small"));
    const bigStarts = order.flatMap((g, i) => (g === "big" ? [i] : []));
    expect(lastSmall).toBeLessThan(bigStarts[99] ?? Infinity);
    expect(bigStarts.filter((i) => i < lastSmall).length).toBeLessThan(15); // turns, not a queue behind the big group
  });

  it("limits are set and changed with PATCH, shown in the queue, and refused when they cannot be split over the shards", async () => {
    const q = freshQueue("limits");
    const set = await api("PATCH", `/api/v1/queues/${q}`, {
      shards: 4,
      concurrency: 8,
      startLimit: { count: 100, perMs: 1000 },
      groupLimits: { default: { concurrency: 2 }, overrides: { vip: { concurrency: 5, startLimit: { count: 10, perMs: 1000 } } } },
    });
    expect(set.status).toBe(200);
    expect(set.body.settings).toMatchObject({
      concurrency: 8,
      startLimit: { count: 100, perMs: 1000 },
      groupLimits: { default: { concurrency: 2 }, overrides: { vip: { concurrency: 5 } } },
    });
    const merged = await api("PATCH", `/api/v1/queues/${q}`, { groupLimits: { overrides: { vip: null, gold: { concurrency: 3 } } } });
    expect(merged.body.settings.groupLimits).toEqual({ default: { concurrency: 2 }, overrides: { gold: { concurrency: 3 } } });
    expect((await api("PATCH", `/api/v1/queues/${q}`, { concurrency: null })).body.settings.concurrency).toBeNull();

    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { concurrency: 3 }), 409, "invalid_state");
    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { startLimit: { count: 2, perMs: 1000 } }), 409, "invalid_state");
    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { startLimit: { count: 10, perMs: 5 } }), 400, "validation_failed");
    expectProblem(await api("PATCH", `/api/v1/queues/${q}`, { concurrency: 0 }), 400, "validation_failed");
    expect((await api("GET", `/api/v1/queues/${q}`)).body.settings.startLimit).toEqual({ count: 100, perMs: 1000 });
  });

  it("a group lives in one shard, so its limit holds exactly even with many shards", async () => {
    const q = freshQueue("groupshard");
    await api("PATCH", `/api/v1/queues/${q}`, { shards: 4, groupLimits: { default: { concurrency: 3 } } });
    const { body } = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: Array.from({ length: 20 }, () => ({ name: "t", groupKey: "acme" })),
    });
    expect(new Set(body.tasks.map((t: { id: string }) => t.id.split(".")[1])).size).toBe(1);
    const leased = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 20 })).body.leases;
    expect(leased).toHaveLength(3);
  });
});

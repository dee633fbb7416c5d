import { describe, expect, it } from "vitest";
import { planBatch, resolveDependency } from "../../durable/core/dag";
import { ShardEngine, type NewTask } from "../../durable/core/engine";
import { MemoryStore } from "../../durable/core/memory-store";
import { made } from "../suites/harness";
import { DEFAULT_SETTINGS, type TaskRow } from "../../schema/shard";

describe("planBatch: refs, waves and cycles", () => {
  it("orders a batch so every task comes after the refs it names", () => {
    const r = planBatch([
      { ref: "d", dependsOn: ["ref:b", "ref:c"] },
      { ref: "b", dependsOn: ["ref:a"] },
      { ref: "a" },
      { ref: "c", dependsOn: ["ref:a", "01J0000000000000000000000.0.other"] },
      { dependsOn: ["01J0000000000000000000000.0.other"] },
    ]);
    expect(r).toEqual({ ok: true, plan: { waves: [[2, 4], [1, 3], [0]], external: ["01J0000000000000000000000.0.other"] } });
  });

  it("names a cycle through the batch, a self-reference, unknown and duplicate refs", () => {
    expect(
      planBatch([
        { ref: "a", dependsOn: ["ref:c"] },
        { ref: "b", dependsOn: ["ref:a"] },
        { ref: "c", dependsOn: ["ref:b"] },
        { ref: "free" },
      ]),
    ).toEqual({
      ok: false,
      problems: [{ kind: "cycle", refs: ["a", "c", "b"] }],
    });
    expect(planBatch([{ ref: "self", dependsOn: ["ref:self"] }])).toEqual({ ok: false, problems: [{ kind: "cycle", refs: ["self"] }] });
    // Behind a cycle, not on it: the cycle is what gets named.
    const behind = planBatch([
      { ref: "x", dependsOn: ["ref:y"] },
      { ref: "y", dependsOn: ["ref:z"] },
      { ref: "z", dependsOn: ["ref:y"] },
    ]);
    expect(behind).toEqual({ ok: false, problems: [{ kind: "cycle", refs: ["y", "z"] }] });
    expect(planBatch([{ ref: "a" }, { ref: "a" }, { dependsOn: ["ref:nope"] }])).toEqual({
      ok: false,
      problems: [
        { kind: "duplicate_ref", index: 1, ref: "a" },
        { kind: "unknown_ref", index: 2, ref: "nope" },
      ],
    });
  });

  it("a ref parent must come first too", () => {
    const r = planBatch([{ parentId: "ref:p" }, { ref: "p" }]);
    expect(r).toEqual({ ok: true, plan: { waves: [[1], [0]], external: [] } });
  });
});

describe("resolveDependency", () => {
  it("waits, releases on the last, cancels or runs on a failure by policy, ignores duplicates", () => {
    expect(resolveDependency(["a", "b"], "a", true, "cancel")).toEqual({ waiting: ["b"], action: "wait" });
    expect(resolveDependency(["b"], "b", true, "cancel")).toEqual({ waiting: [], action: "release" });
    expect(resolveDependency(["a", "b"], "a", false, "cancel")).toEqual({ waiting: ["b"], action: "cancel" });
    expect(resolveDependency(["a"], "a", false, "run")).toEqual({ waiting: [], action: "release" });
    expect(resolveDependency(["b"], "a", true, "cancel")).toEqual({ waiting: ["b"], action: "none" });
  });
});

/** Shards of one queue with their messages carried by hand, so every hop can be watched. */
function cluster(n: number) {
  let now = 1_700_000_000_000;
  let tokens = 0;
  const clock = { now: () => now };
  const entropy = { random: () => 0.5, token: () => `lease-${++tokens}` };
  const settings = { ...DEFAULT_SETTINGS, shards: n };
  const stores = Array.from({ length: n }, () => new MemoryStore());
  const engines = stores.map((s) => new ShardEngine(s, clock, entropy));
  const address = (shard: number) => ({ tenant: "t", queue: "q", shard });
  const shardOf = (id: string) => Number(id.split(".")[1]);
  return {
    stores,
    engines,
    tick: (ms: number) => (now += ms),
    add: (shard: number, task: NewTask) => made(engines[shard].enqueue(address(shard), [task], settings)[0]).task,
    get: (id: string) => engines[shardOf(id)].get(id) as TaskRow,
    /** Delivers every message, including the ones delivering causes, as often as `copies` says. */
    deliver(copies = 1) {
      for (let moved = 1; moved > 0;) {
        moved = 0;
        engines.forEach((engine) => {
          const due = engine.mailDue();
          for (const m of due) {
            const target = m.to.shard;
            for (let c = 0; c < copies; c++) engines[target].receive(address(target), [m.mail]);
          }
          engine.mailDelivered(due.map((m) => m.seq));
          moved += due.length;
        });
      }
    },
    run(id: string, outcome: "complete" | "fail") {
      const engine = engines[shardOf(id)];
      const lease = engine.lease("w", 100, settings).find((l) => l.task.id === id);
      if (!lease) throw new Error(`${id} was not leasable`);
      if (outcome === "complete") engine.complete(id, lease.leaseToken, '"ok"');
      else engine.fail(id, lease.leaseToken, '{"message":"boom"}', false);
    },
    events: (id: string) => stores.flatMap((s) => s.outbox.flatMap((o) => o.events.filter((e) => e.id === id).map((e) => e.type))),
  };
}

describe("dependencies across shards (engine, messages carried by hand)", () => {
  it("a dependent is blocked until every dependency completes, then ready exactly once", () => {
    const c = cluster(2);
    const a = c.add(0, { name: "a", payload: "null" });
    const b = c.add(1, { name: "b", payload: "null" });
    const d = c.add(0, { name: "d", payload: "null", dependsOn: [a.id, b.id] });
    expect(d.status).toBe("blocked");
    c.deliver();
    c.run(a.id, "complete");
    c.deliver();
    expect(c.get(d.id)).toMatchObject({ status: "blocked", depsWaiting: JSON.stringify([b.id]) });
    c.run(b.id, "complete");
    c.deliver(3); // every message arrives three times
    expect(c.get(d.id)).toMatchObject({ status: "pending", depsWaiting: null });
    expect(c.events(d.id).filter((e) => e === "unblocked")).toHaveLength(1);
  });

  it("a terminal failure cancels the dependents transitively, across shards", () => {
    const c = cluster(3);
    const root = c.add(0, { name: "root", payload: "null", maxAttempts: 1 });
    const mid = c.add(1, { name: "mid", payload: "null", dependsOn: [root.id] });
    const leaf = c.add(2, { name: "leaf", payload: "null", dependsOn: [mid.id] });
    const sibling = c.add(0, { name: "sibling", payload: "null", dependsOn: [root.id] });
    c.deliver();
    c.run(root.id, "fail");
    c.deliver();
    for (const t of [mid, leaf, sibling]) expect(c.get(t.id).status).toBe("cancelled");
    expect(JSON.parse(c.get(leaf.id).error!).message).toBe(`Dependency ${mid.id} ended cancelled.`);
  });

  it("policy run: a failed dependency releases the dependent instead", () => {
    const c = cluster(2);
    const root = c.add(0, { name: "root", payload: "null", maxAttempts: 1 });
    const after = c.add(1, { name: "cleanup", payload: "null", dependsOn: [root.id], onDependencyFailure: "run" });
    c.deliver();
    c.run(root.id, "fail");
    c.deliver();
    expect(c.get(after.id).status).toBe("pending");
  });

  it("a dependency already completed is satisfied at once; one already failed applies the policy at once", () => {
    const c = cluster(1);
    const done = c.add(0, { name: "done", payload: "null" });
    c.run(done.id, "complete");
    const bad = c.add(0, { name: "bad", payload: "null", maxAttempts: 1 });
    c.run(bad.id, "fail");
    expect(c.add(0, { name: "x", payload: "null", dependsOn: [done.id] }).status).toBe("pending");
    expect(c.add(0, { name: "y", payload: "null", dependsOn: [bad.id] }).status).toBe("cancelled");
  });

  it("cancelling a blocked task cancels its own dependents and ignores the later resolution", () => {
    const c = cluster(2);
    const a = c.add(0, { name: "a", payload: "null" });
    const b = c.add(1, { name: "b", payload: "null", dependsOn: [a.id] });
    const d = c.add(0, { name: "d", payload: "null", dependsOn: [b.id] });
    c.deliver();
    c.engines[1].cancel(b.id);
    c.deliver();
    expect(c.get(d.id).status).toBe("cancelled");
    c.run(a.id, "complete");
    c.deliver();
    expect(c.get(b.id).status).toBe("cancelled");
  });
});

describe("parents and children across shards (engine)", () => {
  it("a parent that waits runs after it is sealed and every child has finished, with their results", () => {
    const c = cluster(3);
    const parent = c.add(0, { name: "digest", payload: "null", waitForChildren: true });
    expect(parent.status).toBe("blocked");
    const kids = [1, 2, 0].map((shard, i) => c.add(shard, { name: `render-${i}`, payload: "null", parentId: parent.id, maxAttempts: 1 }));
    c.deliver();
    expect(JSON.parse(c.get(parent.id).children!)).toEqual({ total: 3, completed: 0, failed: 0, cancelled: 0 });
    c.run(kids[0].id, "complete");
    c.run(kids[1].id, "fail");
    c.engines[0].cancel(kids[2].id);
    c.deliver();
    expect(c.get(parent.id).status).toBe("blocked"); // not sealed: more children may come
    expect(c.engines[0].seal(parent.id).status).toBe("pending");
    expect(JSON.parse(c.get(parent.id).children!)).toEqual({ total: 3, completed: 1, failed: 1, cancelled: 1 });
    const lease = c.engines[0].lease("w", 10, { ...DEFAULT_SETTINGS, shards: 3 }).find((l) => l.task.id === parent.id)!;
    expect(lease.childResults).toEqual({ [kids[0].id]: '"ok"', [kids[1].id]: null, [kids[2].id]: null });
  });

  it("sealed before the children finish, it waits for them; news arriving out of order counts each child once", () => {
    const c = cluster(2);
    const parent = c.add(0, { name: "p", payload: "null", waitForChildren: true });
    const kid = c.add(1, { name: "k", payload: "null", parentId: parent.id });
    // The child finishes before its 'added' news is delivered: both messages then arrive, finished first.
    c.run(kid.id, "complete");
    const due = c.engines[1].mailDue();
    expect(due.map((m) => m.mail.kind)).toEqual(["child_added", "child_finished"]);
    c.engines[0].receive({ tenant: "t", queue: "q", shard: 0 }, [due[1].mail, due[0].mail, due[1].mail]);
    c.engines[1].mailDelivered(due.map((m) => m.seq));
    expect(JSON.parse(c.get(parent.id).children!)).toEqual({ total: 1, completed: 1, failed: 0, cancelled: 0 });
    expect(c.engines[0].seal(parent.id).status).toBe("pending");
    expect(c.engines[0].children(parent.id, undefined, 10)).toEqual([{ id: kid.id, status: "completed" }]);
  });

  it("a parent without waitForChildren runs at once and still counts its children", () => {
    const c = cluster(1);
    const parent = c.add(0, { name: "p", payload: "null" });
    c.add(0, { name: "k", payload: "null", parentId: parent.id });
    expect(c.get(parent.id).status).toBe("pending");
    expect(JSON.parse(c.get(parent.id).children!).total).toBe(1);
  });
});

import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { newRow } from "../../durable/core/rules";
import { SqlStore } from "../../durable/sql-store";
import { SELECT } from "../../durable/task-rows";
import { DEFAULT_SETTINGS, type TaskRow } from "../../schema/shard";
import { engineSuite } from "../suites/engine-suite";
import { makeHarness, type WithHarness } from "../suites/harness";
import { propertySuite } from "../suites/property-suite";

// The same contract as the unit project, on a real Durable Object's SQLite storage.
const withSqlite: WithHarness = async (body, options) => {
  const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`engine-${crypto.randomUUID()}`));
  await runInDurableObject(stub, (_instance, state) => {
    body(makeHarness(new SqlStore(state.storage), options?.seed, options?.settings));
  });
};

engineSuite("durable object sqlite", withSqlite);
propertySuite("durable object sqlite", withSqlite, 40);

describe("hot reads use indexes, not scans", () => {
  const plan = (state: DurableObjectState, query: string, ...params: string[]) =>
    state.storage.sql
      .exec(`EXPLAIN QUERY PLAN ${query}`, ...params)
      .toArray()
      .map((r) => String(r.detail))
      .join("; ");

  it("dead letters and blocked tasks are listed through partial indexes", async () => {
    const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`plan-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_i, state) => {
      expect(plan(state, "SELECT id FROM tasks WHERE status = 'failed' AND id > '' ORDER BY id LIMIT 50")).toContain("tasks_failed");
      expect(plan(state, "SELECT id FROM tasks WHERE status = 'blocked' ORDER BY id LIMIT 50")).toContain("tasks_blocked");
      expect(plan(state, "SELECT id FROM tasks WHERE status = ? ORDER BY id LIMIT 50", "failed")).toContain("tasks_failed");
    });
  });

  it("a bound LIMIT written `? + 0` (which the planner does not read, so a cached statement is not prepared again) keeps each read's index order", async () => {
    const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`limit-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_i, state) => {
      const ready = plan(
        state,
        `${SELECT} WHERE status = 'pending' AND group_key IS NULL ORDER BY priority DESC, ready_at, seq LIMIT ? + 0`,
        "16",
      );
      expect(ready).toContain("USING INDEX tasks_ready");
      const due = plan(
        state,
        `${SELECT} WHERE due_at IS NOT NULL AND status <> 'running' AND due_at <= ? ORDER BY due_at LIMIT ? + 0`,
        "1",
        "16",
      );
      expect(due).toContain("USING INDEX tasks_due");
      for (const p of [ready, due]) expect(p).not.toContain("TEMP B-TREE"); // no sort
    });
  });

  it("a start reads no task: counts and the ready order come from memory and one meta row", async () => {
    const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`start-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_i, state) => {
      const h = makeHarness(new SqlStore(state.storage));
      h.engine.enqueue(
        h.address,
        Array.from({ length: 300 }, (_, i) => ({ name: `t${i}`, payload: "{}" })),
        h.settings,
      );
      const store = new SqlStore(state.storage);
      const restarted = makeHarness(store, 2);
      expect(store.rowsRead).toBeLessThan(20); // meta rows and the due index, not 300 tasks
      restarted.engine.enqueue(restarted.address, [{ name: "after", payload: "{}" }], restarted.settings);
      const next = restarted.engine.lease("w", 1000, restarted.settings).map((l) => l.task.name);
      expect(next[next.length - 1]).toBe("after"); // still ordered after the tasks made before the start
      restarted.engine.counts(); // one grouped count after a start
      const before = store.rowsRead;
      expect(restarted.engine.counts()).toEqual({ running: 301 });
      expect(store.rowsRead - before).toBe(0); // then memory
    });
  });
});

describe("an enqueue that leases in its own transaction (a consumer socket waiting)", () => {
  it("hands out the lease order over stored and new tasks alike, and writes a task handed at once once, as running", async () => {
    const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`handoff-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_i, state) => {
      const store = new SqlStore(state.storage);
      const h = makeHarness(store);
      expect(h.engine.lease("w0", 1, h.settings)).toEqual([]); // flow control's counts are read once after a start
      h.engine.enqueue(h.address, [{ name: "old", payload: "{}", priority: 1 }], h.settings);
      const before = store.rowsWritten;
      const { made, leases } = h.engine.enqueueAndLease(
        h.address,
        [
          { name: "high", payload: "{}", priority: 9 },
          { name: "low", payload: "{}", priority: 1 },
        ],
        h.settings,
        [
          { workerId: "w1", max: 1 },
          { workerId: "w2", max: 5 },
        ],
      );
      // In lease order, served in turn: w1 the highest priority, w2 the older of the two at priority 1, then nothing.
      expect(leases.map((l) => l.map((x) => x.task.name))).toEqual([["high"], ["old", "low"]]);
      // Answered as they stand: running, for their consumers, without the token that is theirs alone.
      expect(made.map((m) => ("task" in m ? [m.task.status, m.task.workerId, m.task.leaseToken] : null))).toEqual([
        ["running", "w1", null],
        ["running", "w2", null],
      ]);
      const written = store.rowsWritten - before;
      // high and low written once each, as running; old's row once; one outbox row; one leases row.
      expect(written).toBe(2 + 1 + 1 + 1);
      const fresh = new SqlStore(state.storage); // what is stored, not buffered
      for (const name of ["high", "low", "old"]) {
        const id = leases.flat().find((l) => l.task.name === name)!.task.id;
        expect(fresh.get(id)).toMatchObject({ status: "running", attempts: 1 });
      }
      expect(h.engine.counts()).toEqual({ running: 3 });
    });
  });

  it("leases nothing while the queue is paused, and hands a new task to no one past the queue's concurrency", async () => {
    const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`handoff-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_i, state) => {
      const h = makeHarness(new SqlStore(state.storage), 1, { concurrency: 1 });
      const first = h.engine.enqueueAndLease(h.address, [{ name: "a", payload: "{}" }], h.settings, [{ workerId: "w", max: 5 }]);
      expect(first.leases).toEqual([[expect.objectContaining({ task: expect.objectContaining({ name: "a" }) })]]);
      const second = h.engine.enqueueAndLease(h.address, [{ name: "b", payload: "{}" }], h.settings, [{ workerId: "w", max: 5 }]);
      expect(second.leases).toEqual([[]]); // the cap is taken by a
      const paused = { ...h.settings, paused: true, concurrency: null, version: h.settings.version + 1 };
      const third = h.engine.enqueueAndLease(h.address, [{ name: "c", payload: "{}" }], paused, [{ workerId: "w", max: 5 }]);
      expect(third.leases).toEqual([[]]);
      expect(h.engine.counts()).toEqual({ running: 1, pending: 2 });
    });
  });
});

describe("a batch's task writes bind the values its rows share once", () => {
  it("stores every row as written, each field of its type, whether its value is shared by the batch or its own", async () => {
    const stub = env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`writes-${crypto.randomUUID()}`));
    await runInDurableObject(stub, (_i, state) => {
      const store = new SqlStore(state.storage);
      const base = newRow("placeholder", { name: "job", payload: '{"n":1}', priority: 5 }, DEFAULT_SETTINGS, 1_000);
      // Three tasks alike but for id, seq and (the third) payload and priority; and one alone.
      const rows: TaskRow[] = [0, 1, 2].map((i) => ({
        ...base,
        id: `01JWRITES000000000000000${i}.0.q`,
        seq: i + 1,
        status: "pending",
        readyAt: 1_000,
        payload: i === 2 ? '{"n":2}' : base.payload,
        priority: i === 2 ? 7 : 5,
      }));
      store.transaction(() => rows.forEach((r) => store.insert(r)));
      store.transaction(() => store.insert({ ...rows[0], id: "01JWRITES0000000000000009.0.q", seq: 9 }));
      // Leased together: status, worker, start and expiry shared; tokens their own; readyAt a shared null.
      store.transaction(() =>
        rows.forEach((r, i) =>
          store.update(r.id, {
            status: "running",
            workerId: "w1",
            leaseToken: `token-${i}`,
            startedAt: 2_000,
            dueAt: 32_000,
            readyAt: null,
            attempts: 1,
          }),
        ),
      );
      // Completed together, one result shared by two and the third its own; progress a shared null.
      store.transaction(() =>
        rows.forEach((r, i) =>
          store.update(r.id, { status: "completed", result: i === 1 ? '"other"' : '"ok"', finishedAt: 3_000, dueAt: null, progress: null }),
        ),
      );
      const fresh = new SqlStore(state.storage); // what is stored, not buffered
      rows.forEach((r, i) =>
        expect(fresh.get(r.id)).toEqual({
          ...r,
          status: "completed",
          workerId: "w1",
          leaseToken: `token-${i}`,
          startedAt: 2_000,
          dueAt: null,
          readyAt: null,
          attempts: 1,
          result: i === 1 ? '"other"' : '"ok"',
          finishedAt: 3_000,
          progress: null,
        }),
      );
      expect(fresh.get("01JWRITES0000000000000009.0.q")).toEqual({ ...rows[0], id: "01JWRITES0000000000000009.0.q", seq: 9 });
      // Integers stay integers whether bound once or read from each row's JSON.
      const types = state.storage.sql
        .exec(
          "SELECT DISTINCT typeof(priority) AS p, typeof(seq) AS s, typeof(started_at) AS t, typeof(status) AS st FROM tasks WHERE status = 'completed'",
        )
        .toArray();
      expect(types).toEqual([{ p: "integer", s: "integer", t: "integer", st: "text" }]);
    });
  });
});

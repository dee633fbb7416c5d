import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { QueueShard } from "../../durable/queue-shard";
import { migrate } from "../../durable/migrate";
import { SHARD_MIGRATIONS } from "../../schema/migrations/shard";
import { advance, api, freshQueue, shardStub, storedAlarm } from "./helpers";

// A lease's expiry is registered once per lease call (a `leases` row), not once per task in an index.
const lease = (queue: string, body: object = {}) => api("POST", `/api/v1/queues/${queue}/leases`, { workerId: "w1", ...body });
const noBackoff = { baseMs: 0, factor: 1, maxMs: 0 };
const rowsWritten = async (q: string): Promise<number> => (await api("GET", `/api/v1/queues/${q}`)).body.shards[0].rowsWritten;
const task = async (id: string) => (await api("GET", `/api/v1/tasks/${id}`)).body;
const leaseRows = (q: string) =>
  runInDurableObject(shardStub(q), (_i: QueueShard, state) =>
    state.storage.sql
      .exec<{ ids: string }>("SELECT ids FROM leases ORDER BY expires_at")
      .toArray()
      .map((r) => JSON.parse(r.ids) as string[]),
  );

describe("lease expiry, registered per lease call", () => {
  it("rows written per task lifecycle: enqueue 2 (row, ready entry), lease 1, complete 1, and a few per call", async () => {
    const q = freshQueue("rows");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "warm" }); // the shard exists, its settings written
    const before = await rowsWritten(q);
    const n = 100;
    expect(
      (await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}` })) })).status,
    ).toBe(201);
    const leased = (await lease(q, { max: n + 1 })).body.leases as { task: { id: string }; leaseToken: string }[];
    expect(leased).toHaveLength(n + 1);
    const done = await api("POST", "/api/v1/leases/complete", { items: leased.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })) });
    expect(done.body.results.every((r: { ok: boolean }) => r.ok)).toBe(true);
    const written = (await rowsWritten(q)) - before;
    // 4 per task (the warm-up task is leased and completed: 2 more), at most 3 per call (its outbox row, the lease row)
    expect(written).toBeLessThanOrEqual(4 * n + 2 + 3 * 3);
    expect(written).toBeGreaterThanOrEqual(4 * n + 2);
  });

  it("a lease kept alive by heartbeats past the call's first expiry is registered again and expires at its own time", async () => {
    const q = freshQueue("hb");
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: ["a", "b", "c"].map((name) => ({ name, timeoutMs: 1000, backoff: noBackoff })),
    });
    const [a, b, c] = made.body.tasks.map((t: { id: string }) => t.id);
    const leased = (await lease(q, { max: 3 })).body.leases as { task: { id: string }; leaseToken: string }[];
    expect(await leaseRows(q)).toEqual([[a, b, c]]);
    await advance(q, 600);
    const held = leased.find((l) => l.task.id === a)!;
    expect((await api("POST", `/api/v1/tasks/${a}/heartbeat`, { leaseToken: held.leaseToken })).status).toBe(200); // a: expires at 1600
    await advance(q, 500); // 1100: b and c expired, a runs on
    expect(await task(b)).toMatchObject({ status: "pending", attempts: 1 });
    expect(await task(c)).toMatchObject({ status: "pending", attempts: 1 });
    expect(await task(a)).toMatchObject({ status: "running", attempts: 1 });
    expect(await leaseRows(q)).toEqual([[a]]);
    await advance(q, 400); // 1500: not yet
    expect(await task(a)).toMatchObject({ status: "running" });
    await advance(q, 200); // 1700
    expect(await task(a)).toMatchObject({ status: "pending", attempts: 1 });
    expect(await leaseRows(q)).toEqual([]);
  });

  it("a grouped lease takes a turn per group and still writes one row for the call; its tasks expire", async () => {
    const q = freshQueue("groups");
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: Array.from({ length: 6 }, (_, i) => ({ name: `g${i}`, groupKey: `g${i % 3}`, timeoutMs: 1000, backoff: noBackoff })),
    });
    const leased = (await lease(q, { max: 6 })).body.leases as { task: { id: string } }[];
    expect(leased).toHaveLength(6);
    const rows = await leaseRows(q);
    expect(rows).toHaveLength(1);
    expect(rows[0].sort()).toEqual(made.body.tasks.map((t: { id: string }) => t.id).sort());
    await advance(q, 1100);
    for (const t of made.body.tasks) expect(await task(t.id)).toMatchObject({ status: "pending", attempts: 1 });
  });

  it("rows of lease calls whose tasks finished come due a second's worth at a time: one alarm a second, not one per call", async () => {
    const q = freshQueue("together");
    const n = 30;
    // One task runs throughout, so rows are taken apart one by one (with nothing running they go at once: below).
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "long", timeoutMs: 600_000 });
    expect((await lease(q)).body.leases).toHaveLength(1);
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, timeoutMs: 5000 })),
    });
    const started = Date.now();
    for (let i = 0; i < n; i++) {
      const [l] = (await lease(q)).body.leases;
      expect((await api("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken })).status).toBe(200);
      await advance(q, 100); // lease calls over 3 s of the shard's clock (and whatever real time they take)
    }
    const apart = 100 + (Date.now() - started) / n; // ms of the shard's clock between two rows
    expect(await leaseRows(q)).toHaveLength(n + 1);
    await advance(q, 2000); // the first row's time
    const alarm = await storedAlarm(q);
    expect(alarm).not.toBeNull(); // rows are left (the calls took less than 2 s of real time)
    expect(alarm! % 1000).toBe(0);
    const left = (await leaseRows(q)).length;
    await advance(q, 1000);
    // A second's rows in one pass (~9 at 100 ms apart; fewer as the calls take longer on a slow machine), not one.
    expect(left - (await leaseRows(q)).length).toBeGreaterThanOrEqual(Math.max(2, Math.floor(1000 / apart) - 1));
  });

  it("with no task running, the rows of finished lease calls are forgotten in one pass, before any comes due", async () => {
    const q = freshQueue("drained");
    const n = 20;
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, timeoutMs: 5000 })),
    });
    const leased: { task: { id: string }; leaseToken: string }[] = [];
    for (let i = 0; i < n; i++) leased.push(...(await lease(q)).body.leases); // a row per call
    for (const l of leased.slice(0, -1))
      expect((await api("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken })).status).toBe(200);
    await advance(q, 100); // one task still runs: nothing is due, every row stays
    expect(await leaseRows(q)).toHaveLength(n);
    const last = leased[n - 1];
    expect((await api("POST", `/api/v1/tasks/${last.task.id}/complete`, { leaseToken: last.leaseToken })).status).toBe(200);
    await advance(q, 100); // the next pass (the alarm) finds nothing running
    expect(await leaseRows(q)).toEqual([]);
    const alarm = await storedAlarm(q); // none left to come due in 5 s: history's flush (60 s here) or retention, if anything
    expect(alarm === null || alarm > Date.now() + 30_000).toBe(true);
    for (const l of leased) expect(await task(l.task.id)).toMatchObject({ status: "completed", attempts: 1 });
  });

  it("a task in two lease rows (failed, leased again, its first row taken apart early) expires once", async () => {
    const q = freshQueue("twice");
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [
        { name: "x", timeoutMs: 1000, backoff: noBackoff, maxAttempts: 5 },
        { name: "y", timeoutMs: 300, backoff: noBackoff },
      ],
    });
    const [x] = made.body.tasks.map((t: { id: string }) => t.id);
    const first = (await lease(q, { max: 2 })).body.leases as { task: { id: string }; leaseToken: string }[];
    const fx = first.find((l) => l.task.id === x)!;
    expect((await api("POST", `/api/v1/tasks/${x}/fail`, { leaseToken: fx.leaseToken, error: { message: "again" } })).body.status).toBe(
      "pending",
    );
    expect((await lease(q, { max: 1 })).body.leases[0].task).toMatchObject({ id: x, attempts: 2 }); // a second row holds x
    await advance(q, 400); // the first row comes due with y's expiry: y expires, x (running on its new lease) is registered again
    const rows = await leaseRows(q);
    expect(rows.filter((ids) => ids.includes(x))).toHaveLength(2);
    await advance(q, 1000); // both rows holding x come due in one pass
    expect(await task(x)).toMatchObject({ status: "pending", attempts: 2 });
    expect(await leaseRows(q)).toEqual([]);
  });

  it("upgrading registers the tasks running under the old index, and they still expire", async () => {
    const q = freshQueue("upgrade");
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: Array.from({ length: 3 }, (_, i) => ({ name: `u${i}`, timeoutMs: 1000, backoff: noBackoff })),
    });
    await lease(q, { max: 3 });
    // The shard as the previous version left it: no `leases`, running tasks in tasks_due.
    await runInDurableObject(shardStub(q), (_i: QueueShard, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE leases");
      sql.exec("DROP INDEX tasks_due");
      sql.exec("CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL");
      sql.exec("DELETE FROM _migrations WHERE name = '0010_lease_batches'");
      migrate(state.storage, SHARD_MIGRATIONS);
      const index = sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'tasks_due'").one().sql;
      expect(index).toContain("status <> 'running'");
    });
    expect((await leaseRows(q)).flat().sort()).toEqual(made.body.tasks.map((t: { id: string }) => t.id).sort());
    await advance(q, 1100);
    for (const t of made.body.tasks) expect(await task(t.id)).toMatchObject({ status: "pending", attempts: 1 });
  });
});

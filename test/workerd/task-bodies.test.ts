import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { QueueShard } from "../../durable/queue-shard";
import { planHistory } from "../../durable/core/timeline";
import { writeHistory } from "../../durable/history";
import { INLINE_PAYLOAD_MAX } from "../../durable/task-rows";
import { advance, api, flushHistory, freshQueue, shardStub, storedStatus } from "./helpers";

// A long payload is kept in its own row (task_bodies), written once; the task's row, written again
// at every lease and completion, holds '' in its place. Everything that reads a task sees it whole.
const DAY = 86_400_000;
const lease = (queue: string, body: object = {}) => api("POST", `/api/v1/queues/${queue}/leases`, { workerId: "w1", ...body });
const rowsWritten = async (q: string): Promise<number> => (await api("GET", `/api/v1/queues/${q}`)).body.shards[0].rowsWritten;
/** What the shard stores: each task's payload column, and the bodies table. */
const stored = (q: string) =>
  runInDurableObject(shardStub(q), (_i: QueueShard, state) => ({
    rows: Object.fromEntries(
      state.storage.sql
        .exec<{ id: string; payload: string }>("SELECT id, payload FROM tasks")
        .toArray()
        .map((r) => [r.id, r.payload]),
    ),
    bodies: Object.fromEntries(
      state.storage.sql
        .exec<{ id: string; payload: string }>("SELECT id, payload FROM task_bodies")
        .toArray()
        .map((r) => [r.id, r.payload]),
    ),
  }));
/** A payload whose JSON text is exactly `bytes` bytes of UTF-8, of `letter` (1, 2 or 3 bytes each) and ASCII. */
const payloadOf = (bytes: number, letter = "e") => {
  const size = new TextEncoder().encode(letter).length;
  const room = bytes - '{"s":""}'.length;
  return { s: letter.repeat(Math.floor(room / size)) + "e".repeat(room % size) };
};
const utf8 = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).length;

describe("long payloads in task_bodies", () => {
  it("a payload past the inline limit is stored once beside its task and comes back whole from GET, lease, retry and the idempotency key", async () => {
    const q = freshQueue("body");
    const long = { text: "ü€😀".repeat(400), list: [1, 2.5, null, true], nested: { a: "b" } };
    const made = await api("POST", `/api/v1/queues/${q}/tasks`, {
      name: "long",
      payload: long,
      idempotencyKey: `k-${q}`,
      maxAttempts: 2,
      backoff: { baseMs: 0, factor: 1, maxMs: 0 },
    });
    expect(made.status).toBe(201);
    const id = made.body.id as string;
    expect(made.body.payload).toEqual(long);
    const { rows, bodies } = await stored(q);
    expect(rows[id]).toBe("");
    expect(JSON.parse(bodies[id])).toEqual(long);

    expect((await api("GET", `/api/v1/tasks/${id}`)).body.payload).toEqual(long);
    const again = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "long", payload: { other: 1 }, idempotencyKey: `k-${q}` });
    expect(again.body).toMatchObject({ id, payload: long });

    const first = (await lease(q)).body.leases[0];
    expect(first.task.payload).toEqual(long);
    const failed = await api("POST", `/api/v1/tasks/${id}/fail`, { leaseToken: first.leaseToken, error: { message: "again" } });
    expect(failed.status).toBe(200);
    const second = (await lease(q)).body.leases[0];
    expect(second.task).toMatchObject({ id, attempts: 2, payload: long });
    expect((await api("POST", `/api/v1/tasks/${id}/complete`, { leaseToken: second.leaseToken, result: { ok: 1 } })).status).toBe(200);
    expect((await api("GET", `/api/v1/tasks/${id}`)).body).toMatchObject({ status: "completed", payload: long });
    expect(Object.keys((await stored(q)).bodies)).toEqual([id]); // written once, through every change
  });

  it(`a payload of ${INLINE_PAYLOAD_MAX} bytes stays in the task's row; one byte more goes to its own, in the same batch; bytes, not characters`, async () => {
    const q = freshQueue("edge");
    const payloads = {
      inline: payloadOf(INLINE_PAYLOAD_MAX),
      apart: payloadOf(INLINE_PAYLOAD_MAX + 1),
      cjkInline: payloadOf(INLINE_PAYLOAD_MAX, "中"),
      cjkApart: payloadOf(INLINE_PAYLOAD_MAX + 1, "中"), // ~170 characters, over 512 bytes
      none: null,
    };
    expect([utf8(payloads.inline), utf8(payloads.apart), utf8(payloads.cjkInline), utf8(payloads.cjkApart)]).toEqual([
      INLINE_PAYLOAD_MAX,
      INLINE_PAYLOAD_MAX + 1,
      INLINE_PAYLOAD_MAX,
      INLINE_PAYLOAD_MAX + 1,
    ]);
    expect(JSON.stringify(payloads.cjkApart).length).toBeLessThan(200);
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: Object.entries(payloads).map(([name, payload]) => (payload === null ? { name } : { name, payload })),
    });
    expect(made.status).toBe(201);
    const ids = Object.fromEntries(made.body.tasks.map((t: { id: string; name: string }) => [t.name, t.id]));
    const { rows, bodies } = await stored(q);
    expect(JSON.parse(rows[ids.inline])).toEqual(payloads.inline);
    expect(JSON.parse(rows[ids.cjkInline])).toEqual(payloads.cjkInline);
    expect(JSON.parse(rows[ids.none])).toBeNull();
    expect([rows[ids.apart], rows[ids.cjkApart]]).toEqual(["", ""]);
    expect(Object.keys(bodies).sort()).toEqual([ids.apart, ids.cjkApart].sort());
    const leases = (await lease(q, { max: 5 })).body.leases as { task: { name: string; payload: unknown } }[];
    expect(Object.fromEntries(leases.map((l) => [l.task.name, l.task.payload]))).toEqual(payloads);
  });

  it("a long payload stored in its task's row (before task_bodies) reads as stored, and its task deletes cleanly", async () => {
    const q = freshQueue("old");
    const long = payloadOf(3_000);
    const id = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "old", payload: long })).body.id as string;
    // As the row was written before the migration: the payload inline, no body.
    await runInDurableObject(shardStub(q), (_i: QueueShard, state) => {
      state.storage.sql.exec("UPDATE tasks SET payload = ? WHERE id = ?", JSON.stringify(long), id);
      state.storage.sql.exec("DELETE FROM task_bodies WHERE id = ?", id);
    });
    expect((await api("GET", `/api/v1/tasks/${id}`)).body.payload).toEqual(long);
    const l = (await lease(q)).body.leases[0];
    expect(l.task.payload).toEqual(long);
    await api("POST", `/api/v1/tasks/${id}/complete`, { leaseToken: l.leaseToken });
    expect((await api("DELETE", `/api/v1/tasks/${id}`)).status).toBe(204);
    expect(await stored(q)).toEqual({ rows: {}, bodies: {} });
  });

  it("a long payload costs one row more, written when the task is made; lease and completion write the task's row only", async () => {
    const q = freshQueue("rows");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "warm" });
    const before = await rowsWritten(q);
    const n = 50;
    const tasks = Array.from({ length: n }, (_, i) => ({ name: `t${i}`, payload: { i, pad: "x".repeat(2_000) } }));
    expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks })).status).toBe(201);
    const leased = (await lease(q, { max: n + 1 })).body.leases as { task: { id: string }; leaseToken: string }[];
    expect(leased).toHaveLength(n + 1);
    const done = await api("POST", "/api/v1/leases/complete", { items: leased.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })) });
    expect(done.body.results.every((r: { ok: boolean }) => r.ok)).toBe(true);
    const written = (await rowsWritten(q)) - before;
    // 5 per long-payload task (its body, its row and ready entry, lease, complete), 2 for the warm-up task, at most 3 per call
    expect(written).toBeGreaterThanOrEqual(5 * n + 2);
    expect(written).toBeLessThanOrEqual(5 * n + 2 + 3 * 3);
  });

  it("a task's body goes with it when retention deletes the task", async () => {
    const q = freshQueue("gone");
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [
        { name: "long", payload: payloadOf(4_000) },
        { name: "short", payload: { n: 1 } },
      ],
    });
    const ids = made.body.tasks.map((t: { id: string }) => t.id) as string[];
    const leased = (await lease(q, { max: 2 })).body.leases as { task: { id: string }; leaseToken: string }[];
    await api("POST", "/api/v1/leases/complete", { items: leased.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })) });
    expect(Object.keys((await stored(q)).bodies)).toEqual([ids[0]]);
    await advance(q, 8 * DAY); // past the queue's 7-day retention
    const after = await stored(q);
    expect(after.rows).toEqual({});
    expect(after.bodies).toEqual({});
  });
});

describe("long payloads in history (D1's task_payloads)", () => {
  /** What D1 stores for a task: its row's payload column, and its task_payloads row. */
  const inD1 = async (id: string) => ({
    row: (await env.DB.prepare("SELECT payload FROM tasks WHERE tenant = 'default' AND id = ?").bind(id).first<{ payload: string }>())
      ?.payload,
    body: (
      await env.DB.prepare("SELECT payload FROM task_payloads WHERE tenant = 'default' AND id = ?").bind(id).first<{ payload: string }>()
    )?.payload,
  });

  it("history keeps a long payload once beside the task's row; search, reports and GET after the shard's retention show it whole", async () => {
    const q = freshQueue("hist");
    // Made 8 days ago by the shard's clock (set before it makes any id), so its retention can drop it.
    await runInDurableObject(shardStub(q), (i: QueueShard) => {
      i.clock = { offset: -8 * DAY, now: () => Date.now() - 8 * DAY } as QueueShard["clock"];
    });
    const long = { words: "needle ".repeat(100), n: 1 };
    const made = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [
        { name: "long", payload: long },
        { name: "short", payload: { n: 2 } },
      ],
    });
    const [a, b] = made.body.tasks.map((t: { id: string }) => t.id) as string[];
    await flushHistory(q); // made: the whole rows
    expect(await inD1(a)).toEqual({ row: "", body: JSON.stringify(long) });
    expect(await inD1(b)).toEqual({ row: '{"n":2}', body: undefined });
    const leased = (await lease(q, { max: 2 })).body.leases as { task: { id: string }; leaseToken: string }[];
    await api("POST", "/api/v1/leases/complete", { items: leased.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })) });
    await flushHistory(q); // finished: the changed columns only
    expect(await inD1(a)).toEqual({ row: "", body: JSON.stringify(long) });

    const found = await api("GET", `/api/v1/tasks?queue=${q}&q=needle`);
    expect(found.body.items.map((t: { id: string; payload: unknown }) => [t.id, t.payload])).toEqual([[a, long]]);
    const listed = await api("GET", `/api/v1/tasks?queue=${q}&status=completed&sort=created`);
    expect(listed.body.items.map((t: { payload: unknown }) => t.payload)).toEqual([long, { n: 2 }]);
    const report = await api("POST", "/api/v1/reports", {
      fields: ["id", "payload"],
      filters: { queue: [q] },
      sort: "created",
      format: "json",
    });
    expect(report.status).toBe(200);
    expect(report.body.map((r: { payload: unknown }) => r.payload)).toEqual([long, { n: 2 }]);

    await advance(q, 8 * DAY); // back to now: past the queue's 7-day retention, the shard drops both
    expect(await storedStatus(q, a)).toBeUndefined();
    const res = await api("GET", `/api/v1/tasks/${a}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: a, status: "completed", payload: long });
  });

  it("a batch sent again over a row written before task_payloads (its payload inline) leaves it as it is, with no payload row", async () => {
    const q = freshQueue("upg");
    const long = payloadOf(2_000);
    const id = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "long", payload: long })).body.id as string;
    const plan = await runInDurableObject(shardStub(q), (i: QueueShard) =>
      planHistory((i as unknown as { engine: { outbox: { batch(n: number): never } } }).engine.outbox.batch(5000)),
    );
    await writeHistory(env.DB, "default", `${q}:0`, plan);
    // As the old code wrote it: the payload in the row, no payload row.
    await env.DB.batch([
      env.DB.prepare("UPDATE tasks SET payload = ? WHERE tenant = 'default' AND id = ?").bind(JSON.stringify(long), id),
      env.DB.prepare("DELETE FROM task_payloads WHERE tenant = 'default' AND id = ?").bind(id),
    ]);
    await writeHistory(env.DB, "default", `${q}:0`, plan); // D1 took it, the answer was lost; sent again by the new code
    expect(await inD1(id)).toEqual({ row: JSON.stringify(long), body: undefined });
    const found = await api("GET", `/api/v1/tasks?queue=${q}`);
    expect(found.body.items.map((t: { payload: unknown }) => t.payload)).toEqual([long]);
  });

  it("a batch sent again writes the long payload no second time, and deleting the task from history deletes it", async () => {
    const q = freshQueue("again");
    const id = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "long", payload: payloadOf(3_000) })).body.id as string;
    const plan = await runInDurableObject(shardStub(q), (i: QueueShard) =>
      planHistory((i as unknown as { engine: { outbox: { batch(n: number): never } } }).engine.outbox.batch(5000)),
    );
    const first = await writeHistory(env.DB, "default", `${q}:0`, plan);
    const again = await writeHistory(env.DB, "default", `${q}:0`, plan); // D1 took it, the answer was lost
    expect(first.rowsWritten).toBeGreaterThan(5);
    expect(again.rowsWritten).toBe(2); // the doc counter and the rollup ledger only
    expect(await inD1(id)).toEqual({ row: "", body: JSON.stringify(payloadOf(3_000)) });
    await api("POST", `/api/v1/tasks/${id}/cancel`);
    expect((await api("DELETE", `/api/v1/tasks/${id}`)).status).toBe(204);
    await flushHistory(q);
    expect(await inD1(id)).toEqual({ row: undefined, body: undefined });
  });
});

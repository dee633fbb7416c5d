import { describe, expect, it } from "vitest";
import { BODY_MAX, EVENTS_ROW_MAX, SEQ_SCALE, flattenText, planHistory, publicEvent } from "../../durable/core/timeline";
import { DEFAULT_SETTINGS, type TaskEvent, type TaskRow } from "../../schema/shard";
import { MemoryStore } from "../../durable/core/memory-store";
import { ShardEngine } from "../../durable/core/engine";

const row = (id: string, payload = "{}") => ({ id, name: "job", payload }) as TaskRow;
const ev = (type: TaskEvent["type"], id: string, changes: TaskEvent["changes"] = {}, at = 1): TaskEvent => ({ type, id, at, changes });

describe("flattenText", () => {
  it("keeps string and number values in document order, at any depth; not keys, booleans or null", () => {
    expect(flattenText(JSON.stringify({ to: "ada@example.com", user: { name: "Ada", tags: ["x", 42] }, ok: true, none: null }))).toBe(
      "ada@example.com Ada x 42",
    );
    expect(flattenText('"just text"')).toBe("just text");
    expect(flattenText("null")).toBe("");
  });

  it("stops at BODY_MAX characters, and is not recursive (deep nesting is fine)", () => {
    expect(flattenText(JSON.stringify(Array(10_000).fill("word")))).toHaveLength(BODY_MAX);
    const deep = "[".repeat(5000) + '"bottom"' + "]".repeat(5000);
    expect(flattenText(deep)).toBe("bottom");
  });
});

describe("publicEvent", () => {
  it("renames leases to started and progress to heartbeat, and shows what a user needs", () => {
    expect(publicEvent(ev("leased", "t", { status: "running", attempts: 2, workerId: "w", dueAt: 99, startedAt: 5 }))).toEqual({
      type: "started",
      at: 1,
      status: "running",
      attempt: 2,
      workerId: "w",
      expiresAt: 99,
    });
    expect(publicEvent(ev("progress", "t", { progress: '{"pct":5}', dueAt: 7 }))).toEqual({
      type: "heartbeat",
      at: 1,
      progress: { pct: 5 },
      expiresAt: 7,
    });
    expect(publicEvent(ev("retrying", "t", { status: "scheduled", runAt: 50, error: '{"message":"x"}', workerId: null }))).toEqual({
      type: "retrying",
      at: 1,
      status: "scheduled",
      runAt: 50,
      error: { message: "x" },
    });
  });

  it("never carries engine bookkeeping (ready order, due times, sequence numbers)", () => {
    const out = publicEvent(ev("enqueued", "t", { status: "pending", seq: 3, readyAt: 1, dueAt: null, payload: "{}", runAt: 1 }));
    expect(out).toEqual({ type: "enqueued", at: 1, status: "pending" });
  });
});

describe("planHistory", () => {
  const batch = (rows: { seq: number; events: TaskEvent[] }[]) => ({
    rows: rows.map((r) => ({ ...r, at: 1 })),
    upTo: rows[rows.length - 1].seq,
  });
  const made = (id: string, payload = "{}") => ev("enqueued", id, { ...row(id, payload), status: "pending", priority: 5 });

  it("a task the batch saw made is whole, with its search text; one made before carries only what changed", () => {
    const plan = planHistory(
      batch([
        { seq: 7, events: [made("a", '{"k":"v"}'), made("b")] },
        {
          seq: 8,
          events: [ev("leased", "a", { status: "running", workerId: "w" }), ev("leased", "c", { status: "running", attempts: 2 })],
        },
        { seq: 9, events: [ev("heartbeat", "c", { dueAt: 99 })] },
      ]),
    );
    expect(plan.upTo).toBe(9);
    expect(plan.tasks.map((t) => [t.row.id, t.full, t.text])).toEqual([
      ["a", true, { name: "job", body: "v" }],
      ["b", true, { name: "job", body: "" }],
      ["c", false, null],
    ]);
    expect(plan.tasks[0].row).toMatchObject({ id: "a", name: "job", status: "running", workerId: "w", priority: 5 });
    expect(plan.tasks[2].row).toEqual({ id: "c", status: "running", attempts: 2, dueAt: 99 });
    expect(plan.events.map((e) => [e.taskId, e.seq, e.lastSeq, e.events.map((x) => x.type)])).toEqual([
      ["a", 7 * SEQ_SCALE, 8 * SEQ_SCALE, ["enqueued", "started"]],
      ["b", 7 * SEQ_SCALE + 1, 7 * SEQ_SCALE + 1, ["enqueued"]],
      ["c", 8 * SEQ_SCALE + 1, 9 * SEQ_SCALE, ["started", "heartbeat"]],
    ]);
  });

  it("a deleted task is deleted from history, whatever else it did in the batch", () => {
    const plan = planHistory(batch([{ seq: 1, events: [ev("cancelled", "a"), ev("deleted", "a")] }]));
    expect(plan).toMatchObject({ tasks: [], events: [], deletes: ["a"], dead: [] });
  });

  it("splits a task's events into rows of at most EVENTS_ROW_MAX, the same way every time", () => {
    const big = "x".repeat(40_000);
    const events = Array.from({ length: 20 }, () => ev("progress", "a", { progress: JSON.stringify(big) }));
    const plan = planHistory(batch([{ seq: 1, events }]));
    expect(plan.events.length).toBeGreaterThan(2);
    for (const r of plan.events) expect(JSON.stringify(r.events).length).toBeLessThanOrEqual(EVENTS_ROW_MAX + 2);
    expect(plan.events.flatMap((r) => r.events)).toHaveLength(20);
    expect(planHistory(batch([{ seq: 1, events }])).events.map((r) => r.seq)).toEqual(plan.events.map((r) => r.seq));
  });

  it("a row that cannot be prepared is set aside with its reason, the rest go on", () => {
    const plan = planHistory(batch([{ seq: 1, events: [made("bad", "{not json"), made("ok")] }]));
    expect(plan.tasks.map((t) => t.row.id)).toEqual(["ok"]);
    expect(plan.dead).toHaveLength(1);
    expect(plan.dead[0]).toMatchObject({ taskId: "bad", reason: expect.stringMatching(/could not be prepared/) });
  });
});

describe("Outbox.batch", () => {
  it("stops at about 4 MB of event JSON, whatever the event count, and never returns less than one entry", () => {
    const store = new MemoryStore();
    const engine = new ShardEngine(store, { now: () => 1_000 }, { random: () => 0.5, token: () => "t" });
    const payload = { blob: "x".repeat(100_000) };
    for (let i = 0; i < 60; i++)
      engine.enqueue({ tenant: "t", queue: "q", shard: 0 }, [{ name: "big", payload: JSON.stringify(payload) }], DEFAULT_SETTINGS);
    const batch = engine.outbox.batch(10_000)!;
    const chars = batch.rows.reduce((n, r) => n + r.size, 0);
    expect(batch.rows.length).toBeGreaterThan(10);
    expect(batch.rows.length).toBeLessThan(60);
    expect(chars).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(engine.outbox.batch(1)!.rows).toHaveLength(1);
  });
});

describe("planHistory's rollup marks", () => {
  it("count what the shard's totals count, each with its outbox position: made, retried (a failed run or a lease run out with attempts left), ended at its finish", () => {
    const plan = planHistory({
      upTo: 8,
      rows: [
        {
          seq: 7,
          events: [ev("enqueued", "a.0.q", { ...row("a.0.q"), status: "pending" }, 10), ev("leased", "a.0.q", { status: "running" }, 11)],
        },
        {
          seq: 8,
          events: [
            ev("expired", "a.0.q", { status: "pending" }, 12),
            ev("retrying", "b.0.q", { status: "scheduled" }, 13),
            ev("expired", "c.0.q", { status: "failed", finishedAt: 14 }, 14),
            ev("completed", "d.0.q", { status: "completed", finishedAt: 20 }, 21),
            ev("progress", "d.0.q", { progress: "1" }, 22),
          ],
        },
      ],
    });
    expect(plan.marks).toEqual([
      [7, "a.0.q", 10, "enqueued"],
      [8, "a.0.q", 12, "retried"],
      [8, "b.0.q", 13, "retried"],
      [8, "c.0.q", 14, "failed"],
      [8, "d.0.q", 20, "completed"],
    ]);
  });
});

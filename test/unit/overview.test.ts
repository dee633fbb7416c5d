import { describe, expect, it } from "vitest";
import { advance, empty, fold, lastMinute, SECONDS } from "../../app/lib/overview";

// The dashboard overview's state, folded from live messages.
describe("overview", () => {
  const t0 = Date.parse("2026-11-30T10:00:00Z");
  const snapshot = {
    type: "snapshot" as const,
    seq: 1,
    at: "",
    queues: [{ name: "email", counts: { pending: 3 } }],
    rates: { enqueued: 9, completed: 6, failed: 3, seconds: 60 },
    workers: { active: 2 },
  };

  it("a snapshot sets the queues, the minute's counts and the workers", () => {
    const o = fold(empty(t0), snapshot, t0);
    expect(o).toMatchObject({ queues: { email: { pending: 3 } }, workers: 2, at: t0 });
    expect(lastMinute(o)).toMatchObject({ completed: 6, failed: 3 });
    expect(lastMinute(o).perSecond).toBeCloseTo(9 / 60);
  });

  it("a delta replaces its queue's counts and adds its finishes to the current second", () => {
    let o = fold(empty(t0), snapshot, t0);
    o = fold(
      o,
      { type: "delta", seq: 2, at: "", queue: "email", counts: { pending: 1, completed: 2 }, changes: { pending: -2, completed: 2 } },
      t0 + 200,
    );
    o = fold(o, { type: "delta", seq: 3, at: "", queue: "sms", counts: { failed: 1 }, changes: { failed: 1 } }, t0 + 300);
    expect(o.queues).toEqual({ email: { pending: 1, completed: 2 }, sms: { failed: 1 } });
    expect(lastMinute(o).finished.at(-1)).toBeCloseTo(3 + 9 / 60);
    expect(lastMinute(o)).toMatchObject({ completed: 8, failed: 4 });
  });

  it("'the last minute' means it: what the snapshot counted and what came since age out after 60 s", () => {
    let o = fold(empty(t0), snapshot, t0);
    o = fold(o, { type: "delta", seq: 2, at: "", queue: "q", counts: {}, changes: { completed: 4, failed: -1 } }, t0 + 30_000);
    expect(lastMinute(advance(o, t0 + 30_000))).toMatchObject({ completed: 7, failed: 2 }); // half the snapshot's minute has passed
    expect(lastMinute(advance(o, t0 + 61_000))).toMatchObject({ completed: 4, failed: 0 });
    expect(lastMinute(advance(o, t0 + 91_000))).toMatchObject({ completed: 0, failed: 0 });
  });

  it("the per-second window moves with the clock and keeps a minute", () => {
    let o = fold(empty(t0), { type: "delta", seq: 1, at: "", queue: "q", counts: {}, changes: { completed: 4 } }, t0);
    o = advance(o, t0 + 2_000);
    expect(lastMinute(o).finished.slice(-3)).toEqual([4, 0, 0]);
    expect(lastMinute(o).finished).toHaveLength(SECONDS);
    expect(lastMinute(advance(o, t0 + 120_000)).finished.every((n) => n === 0)).toBe(true);
  });
});

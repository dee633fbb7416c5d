import { describe, expect, it } from "vitest";
import { advance, empty, fold, SECONDS } from "../../app/lib/overview";

// The dashboard overview's state, folded from live messages.
describe("overview", () => {
  const t0 = Date.parse("2026-11-30T10:00:00Z");
  const snapshot = { type: "snapshot" as const, seq: 1, at: "", queues: [{ name: "email", counts: { pending: 3 } }], rates: { enqueued: 9, completed: 5, failed: 1, seconds: 60 }, workers: { active: 2 } };

  it("a snapshot sets the queues, the minute's counts and the workers", () => {
    const o = fold(empty(t0), snapshot, t0);
    expect(o).toMatchObject({ queues: { email: { pending: 3 } }, completed: 5, failed: 1, workers: 2, at: t0 });
  });

  it("a delta replaces its queue's counts and adds its finishes to the current second", () => {
    let o = fold(empty(t0), snapshot, t0);
    o = fold(o, { type: "delta", seq: 2, at: "", queue: "email", counts: { pending: 1, completed: 2 }, changes: { pending: -2, completed: 2 } }, t0 + 200);
    o = fold(o, { type: "delta", seq: 3, at: "", queue: "sms", counts: { failed: 1 }, changes: { failed: 1 } }, t0 + 300);
    expect(o.queues).toEqual({ email: { pending: 1, completed: 2 }, sms: { failed: 1 } });
    expect(o.finished.at(-1)).toBe(3);
    expect(o).toMatchObject({ completed: 7, failed: 2 });
  });

  it("the per-second window moves with the clock and keeps a minute", () => {
    let o = fold(empty(t0), { type: "delta", seq: 1, at: "", queue: "q", counts: {}, changes: { completed: 4 } }, t0);
    o = advance(o, t0 + 2_000);
    expect(o.finished.slice(-3)).toEqual([4, 0, 0]);
    expect(o.finished).toHaveLength(SECONDS);
    expect(advance(o, t0 + 120_000).finished.every((n) => n === 0)).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { iso, taskView } from "../../worker/view";
import type { TaskRow } from "../../schema/shard";

// How the API writes a stored task: times in ISO-8601 exactly as Date.prototype.toISOString does.
describe("task view", () => {
  it("times are written as toISOString writes them, whatever second they fall in", () => {
    const now = Date.UTC(2026, 10, 30, 23, 59, 59, 999);
    const times = [0, 1, 9, 10, 99, 100, 999, 1000, now, now + 1, now - 999, now + 30_000, 253_402_300_799_999];
    for (let i = 0; i < 2_000; i++) times.push(Math.floor(Math.random() * 4_102_444_800_000)); // to the year 2100
    // The same times again, now that their seconds are known, and in another order.
    for (const t of [...times, ...times.reverse()]) expect(iso(t)).toBe(new Date(t).toISOString());
  });

  it("times toISOString writes otherwise (before 1970, past the year 9999, fractions) are written whole", () => {
    for (const t of [-1, -86_400_001, 253_402_300_800_000, 8.64e15, 1_700_000_000_000.5]) expect(iso(t)).toBe(new Date(t).toISOString());
    expect(iso(null)).toBeNull();
  });

  it("each view has its own backoff object, even when tasks share one text", () => {
    const row = {
      id: "01JDQ4Z5N8Q1V8G7W6X5Y4Z3A2.0.mail",
      name: "send",
      payload: '{"to":"ada"}',
      priority: 5,
      status: "pending",
      attempts: 0,
      maxAttempts: 3,
      backoff: '{"baseMs":1000,"factor":2,"maxMs":60000,"jitter":"full"}',
      timeoutMs: 30_000,
      runAt: 1_764_547_200_123,
      createdAt: 1_764_547_200_120,
      ...Object.fromEntries(
        ["parentId", "dependsOn", "depsWaiting", "children", "progress", "result", "error", "tags", "startedAt", "finishedAt", "dueAt"].map(
          (k) => [k, null],
        ),
      ),
    } as unknown as TaskRow;
    const [a, b] = [taskView(row), taskView(row)];
    expect(a.backoff).toEqual({ baseMs: 1000, factor: 2, maxMs: 60000, jitter: "full" });
    a.backoff.baseMs = 5;
    expect(b.backoff.baseMs).toBe(1000);
    expect(taskView(row).backoff.baseMs).toBe(1000);
    expect(a.runAt).toBe("2025-12-01T00:00:00.123Z");
    expect(a.queue).toBe("mail");
  });
});

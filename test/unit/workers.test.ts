import { describe, expect, it } from "vitest";
import { HEARTBEAT_MS, LOST_AFTER_BEATS, workerStatus } from "../../durable/core/workers";

describe("worker status", () => {
  it("is active with tasks in hand, idle without, and lost after missed heartbeats", () => {
    const seen = 1_000_000;
    expect(workerStatus(seen, 2, seen + 1000)).toBe("active");
    expect(workerStatus(seen, 0, seen + 1000)).toBe("idle");
    expect(workerStatus(seen, 2, seen + HEARTBEAT_MS * LOST_AFTER_BEATS)).toBe("active");
    expect(workerStatus(seen, 2, seen + HEARTBEAT_MS * LOST_AFTER_BEATS + 1)).toBe("lost");
  });
});

import { describe, expect, it } from "vitest";
import { limitsOf, StartWindow, WINDOW_SLOTS } from "../../durable/core/flow";
import { DEFAULT_SETTINGS } from "../../schema/shard";

describe("start windows", () => {
  it("stay at most WINDOW_SLOTS + 1 entries whatever the count, and never admit more than the count", () => {
    const limit = { count: 1_000_000, perMs: 60_000 };
    const w = new StartWindow();
    let started = 0;
    const times: number[] = [];
    for (let now = 0; now < 200_000; now += 7) {
      const n = Math.min(3, w.room(limit, now));
      if (n > 0) {
        w.record(limit, now, n);
        for (let i = 0; i < n; i++) times.push(now);
        started += n;
      }
      expect(w.entries.length).toBeLessThanOrEqual(WINDOW_SLOTS + 1);
    }
    expect(started).toBeGreaterThan(0);
    expect(JSON.stringify(w.entries).length).toBeLessThan(4000);
  });

  it("a small limit holds exactly in every window of perMs", () => {
    const limit = { count: 5, perMs: 1000 };
    const w = new StartWindow();
    const times: number[] = [];
    for (let now = 0; now < 10_000; now += 13) {
      const n = w.room(limit, now);
      if (n > 0) {
        w.record(limit, now, n);
        for (let i = 0; i < n; i++) times.push(now);
      }
    }
    for (const t of times) expect(times.filter((u) => u > t - 1000 && u <= t).length).toBeLessThanOrEqual(5);
    expect(times.length).toBeGreaterThan(40); // it does admit: about 5 per second
  });
});

describe("group limits", () => {
  it("a group named like an Object.prototype member gets the default, not the member", () => {
    const settings = { ...DEFAULT_SETTINGS, groupLimits: { default: { concurrency: 1 }, overrides: { vip: { concurrency: 5 } } } };
    for (const key of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"])
      expect(limitsOf(settings, key)).toEqual({ concurrency: 1 });
    expect(limitsOf(settings, "vip")).toEqual({ concurrency: 5 });
  });
});

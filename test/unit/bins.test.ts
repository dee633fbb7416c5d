import { describe, expect, it } from "vitest";
import { BIN_LOWS, binOf, binValue, percentiles } from "../../durable/core/bins";

// The histogram behind /analytics percentiles: its stated error bound, checked over the whole range.
describe("duration bins", () => {
  it("a value read back from its bin is within 5 % + 1 ms, from 0 ms to the last bin; exact below 10 ms", () => {
    for (let v = 0; v < BIN_LOWS[BIN_LOWS.length - 1]; v = v < 20_000 ? v + 1 : Math.ceil(v * 1.001)) {
      const back = binValue(binOf(v));
      expect(Math.abs(back - v), `${v} → ${back}`).toBeLessThanOrEqual(0.05 * v + 1);
      if (v < 10) expect(back).toBe(v);
    }
  });

  it("bins are ordered and each value falls in the one whose range holds it; negatives count as 0", () => {
    for (let i = 1; i < BIN_LOWS.length; i++) expect(BIN_LOWS[i]).toBeGreaterThan(BIN_LOWS[i - 1]);
    expect(binOf(BIN_LOWS[40])).toBe(40);
    expect(binOf(BIN_LOWS[41] - 1)).toBe(40);
    expect(binOf(-5)).toBe(0);
    expect(binOf(1e15)).toBe(BIN_LOWS.length - 1);
  });

  it("nearest-rank percentiles of a histogram; null when it is empty", () => {
    const h = new Map<number, number>();
    for (let v = 1; v <= 100; v++) h.set(binOf(v), (h.get(binOf(v)) ?? 0) + 1);
    const [p50, p95, p99] = percentiles(h, [50, 95, 99]);
    for (const [got, exact] of [
      [p50, 50],
      [p95, 95],
      [p99, 99],
    ] as const)
      expect(Math.abs(got! - exact)).toBeLessThanOrEqual(0.05 * exact + 1);
    expect(percentiles(new Map([[binOf(7), 3]]), [50, 99])).toEqual([7, 7]);
    expect(percentiles(new Map(), [50])).toEqual([null]);
  });
});

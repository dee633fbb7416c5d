import { describe, expect, it } from "vitest";
import {
  bars,
  bucketsFor,
  bucketTicks,
  countSeries,
  DEFAULT_VIEW,
  fromSearch,
  latencySeries,
  linePath,
  maxOf,
  performancePath,
  tickCount,
  toSearch,
  totals,
  trendsPath,
  distributionsPath,
  withRange,
} from "../../app/lib/analytics";

// The Analytics page's view (its URL) and what its charts draw.
describe("analytics view and the URL", () => {
  it("round-trips: what the URL says is what the page shows, and back", () => {
    const url = "?tab=distributions&range=7d&bucket=day&queue=email";
    const v = fromSearch(new URLSearchParams(url));
    expect(v).toEqual({ tab: "distributions", range: "7d", bucket: "day", queue: "email" });
    expect(toSearch(v)).toBe(url);
  });

  it("a bare /analytics is the last 24 hours by hour, on trends; the queue is left out when it is all of them", () => {
    expect(fromSearch(new URLSearchParams(""))).toEqual(DEFAULT_VIEW);
    expect(toSearch(DEFAULT_VIEW)).toBe("?tab=trends&range=24h&bucket=hour");
    expect(toSearch({ ...DEFAULT_VIEW, queue: "  " })).toBe("?tab=trends&range=24h&bucket=hour");
  });

  it("ignores what it does not know, and a bucket the range cannot take becomes the range's own", () => {
    expect(fromSearch(new URLSearchParams("tab=graphs&range=1y&bucket=second"))).toEqual(DEFAULT_VIEW);
    expect(fromSearch(new URLSearchParams("range=30d&bucket=minute")).bucket).toBe("day");
    expect(fromSearch(new URLSearchParams("range=1h&bucket=day")).bucket).toBe("minute");
  });

  it("minutes only where the API's 1,500 buckets reach (a day, with its rounding), days only from a day", () => {
    expect(bucketsFor("1h")).toEqual(["minute", "hour"]);
    expect(bucketsFor("24h")).toEqual(["minute", "hour", "day"]);
    expect(bucketsFor("7d")).toEqual(["hour", "day"]);
    expect(bucketsFor("30d")).toEqual(["hour", "day"]);
  });

  it("a new range takes its default bucket", () => {
    expect(withRange({ ...DEFAULT_VIEW, bucket: "minute" }, "30d")).toMatchObject({ range: "30d", bucket: "day" });
    expect(withRange(DEFAULT_VIEW, "1h")).toMatchObject({ range: "1h", bucket: "minute" });
  });

  it("asks the API for the range ending now, the queue only when chosen", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    const v = { ...DEFAULT_VIEW, range: "1h" as const, bucket: "minute" as const, queue: "a b" };
    expect(trendsPath(v, now)).toBe("/analytics/trends?from=2026-11-30T11%3A00%3A00.000Z&bucket=minute&queue=a+b");
    expect(distributionsPath({ ...v, queue: "" }, now)).toBe("/analytics/distributions?from=2026-11-30T11%3A00%3A00.000Z");
    expect(performancePath({ ...v, queue: "" })).toBe("/analytics/performance?");
    expect(performancePath(v)).toBe("/analytics/performance?queue=a+b");
  });
});

describe("analytics chart data", () => {
  const t0 = Date.parse("2026-11-30T10:00:00Z");
  const p = (p50: number | null) => ({ p50, p95: p50 === null ? null : p50 * 2, p99: p50 === null ? null : p50 * 3 });
  const item = (h: number, enqueued: number, completed: number, failed: number, wait: number | null) => ({
    at: new Date(t0 + h * 3_600_000).toISOString(),
    enqueued,
    completed,
    failed,
    completionRate: null,
    failureRate: null,
    waitMs: p(wait),
    runMs: p(wait === null ? null : wait * 10),
  });
  const items = [item(0, 5, 2, 1, 100), item(1, 0, 0, 0, null), item(2, 1, 3, 0, 40)];

  it("counts: one series each for enqueued, completed and failed, a point per bucket", () => {
    const s = countSeries(items);
    expect(s.map((x) => x.key)).toEqual(["enqueued", "completed", "failed"]);
    expect(s[0].values).toEqual([
      { x: t0, y: 5 },
      { x: t0 + 3_600_000, y: 0 },
      { x: t0 + 7_200_000, y: 1 },
    ]);
    expect(totals(items)).toEqual({ enqueued: 6, completed: 5, failed: 1, completionRate: 5 / 6 });
    expect(totals([]).completionRate).toBeNull();
  });

  it("latency: p50, p95, p99; a bucket where nothing finished is a gap, not a zero", () => {
    const s = latencySeries(items, "runMs", "red");
    expect(s.map((x) => x.key)).toEqual(["p50", "p95", "p99"]);
    expect(s[2].values.map((v) => v.y)).toEqual([3000, null, 1200]);
    expect(maxOf(s)).toBe(3000);
    expect(maxOf([])).toBe(1);
  });

  it("a line breaks at a gap, and a point alone is a dot", () => {
    const id = (q: { x: number; y: number | null }) => q.x;
    const y = (q: { x: number; y: number | null }) => q.y ?? NaN;
    const pts = [
      { x: 0, y: 1 },
      { x: 10, y: 2 },
      { x: 20, y: null },
      { x: 30, y: 4 },
      { x: 40, y: null },
    ];
    expect(linePath(pts, id, y)).toEqual({ d: "M0,1L10,2M30,4", dots: [{ x: 30, y: 4 }] });
    expect(linePath([], id, y)).toEqual({ d: "", dots: [] });
  });

  it("time ticks only on whole buckets; as many as fit", () => {
    const day = Date.parse("2026-11-30T00:00:00Z");
    expect(bucketTicks([day, day + 43_200_000, day + 86_400_000], "day")).toEqual([day, day + 86_400_000]);
    expect(bucketTicks([new Date(t0), new Date(t0 + 30_000), new Date(t0 + 60_000)], "minute")).toEqual([t0, t0 + 60_000]);
    expect(tickCount(320)).toBe(3);
    expect(tickCount(50)).toBe(2);
  });
});

describe("distribution bars", () => {
  it("statuses and bands in their own order, not by count", () => {
    expect(bars({ failed: 2, completed: 3, pending: 1 }, "status").map((b) => b.key)).toEqual(["pending", "completed", "failed"]);
    expect(bars({ low: 9, high: 1, medium: 4 }, "band").map((b) => b.key)).toEqual(["high", "medium", "low"]);
  });

  it("priorities from the highest; names largest first", () => {
    expect(bars({ "1": 5, "10": 1, "5": 2 }, "priority").map((b) => b.key)).toEqual(["10", "5", "1"]);
    expect(bars({ b: 1, a: 5, c: 3 }, "name")).toEqual([
      { key: "a", count: 5 },
      { key: "c", count: 3 },
      { key: "b", count: 1 },
    ]);
  });

  it("past the limit the smallest are summed under (other), with what the API summed there; zeros are left out", () => {
    const counts = { a: 9, b: 8, c: 7, d: 1, e: 1, z: 0, "(other)": 4 };
    expect(bars(counts, "queue", 3)).toEqual([
      { key: "a", count: 9 },
      { key: "b", count: 8 },
      { key: "(other)", count: 13 },
    ]);
    expect(bars({ a: 1, "(other)": 2 }, "worker")).toEqual([
      { key: "a", count: 1 },
      { key: "(other)", count: 2 },
    ]);
  });
});

import { describe, expect, it } from "vitest";
import { QueueError } from "../../durable/core/errors";
import { dueFire, nextFires } from "../../durable/core/schedule";

const iso = (ms: number[]) => ms.map((t) => new Date(t).toISOString());

describe("schedules: cron in time zones", () => {
  it("a daily 02:30 in Berlin across the spring-forward night runs at 03:00 local once, then 02:30 again", () => {
    const fires = nextFires("30 2 * * *", "Europe/Berlin", Date.parse("2026-03-28T00:00:00Z"), 3);
    // 28 Mar: 02:30 CET = 01:30Z; 29 Mar: 02:30 does not exist (clocks jump 02:00 → 03:00); 30 Mar: 02:30 CEST = 00:30Z.
    expect(iso(fires)).toEqual(["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]);
  });

  it("a daily 01:30 in New York on the fall-back night runs once, not twice", () => {
    const fires = nextFires("30 1 * * *", "America/New_York", Date.parse("2026-10-31T12:00:00Z"), 3);
    expect(fires).toHaveLength(3);
    expect(new Set(fires.map((t) => new Date(t).toISOString().slice(0, 10))).size).toBe(3); // one per day
    // 1 Nov: 01:30 EDT (05:30Z), the first of the two 01:30s; 2 Nov: 01:30 EST (06:30Z).
    expect(iso(fires).slice(0, 2)).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
  });

  it("weekdays at 09:00 in a zone; six fields mean seconds", () => {
    expect(iso(nextFires("0 9 * * 1-5", "America/New_York", Date.parse("2026-11-27T15:00:00Z"), 2))).toEqual([
      "2026-11-30T14:00:00.000Z",
      "2026-12-01T14:00:00.000Z",
    ]);
    expect(iso(nextFires("*/2 * * * * *", "UTC", Date.parse("2026-01-01T00:00:00.500Z"), 2))).toEqual([
      "2026-01-01T00:00:02.000Z",
      "2026-01-01T00:00:04.000Z",
    ]);
  });

  it("invalid cron or time zone is a validation error naming the field", () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as QueueError;
      }
      throw new Error("no error");
    };
    expect(err(() => nextFires("61 * * * *", "UTC", 0, 1))).toMatchObject({ code: "validation_failed", errors: [{ pointer: "/cron" }] });
    expect(err(() => nextFires("* * * * *", "Mars/Olympus", 0, 1))).toMatchObject({
      code: "validation_failed",
      errors: [{ pointer: "/timezone" }],
    });
  });

  it("after downtime, one catch-up run at the latest missed time, then the next fire after now", () => {
    const due = Date.parse("2026-01-01T10:00:00Z");
    const now = Date.parse("2026-01-01T15:08:30Z");
    expect(dueFire("* * * * *", "UTC", due, now)).toEqual({
      fireAt: Date.parse("2026-01-01T15:08:00Z"),
      missed: 308,
      nextAt: Date.parse("2026-01-01T15:09:00Z"),
    });
    expect(dueFire("* * * * *", "UTC", due, due + 5)).toEqual({ fireAt: due, missed: 0, nextAt: due + 60_000 });
    const long = dueFire("* * * * * *", "UTC", due, due + 86_400_000);
    expect(long).toMatchObject({ fireAt: due + 86_400_000, missed: -1, nextAt: due + 86_401_000 });
  });
});

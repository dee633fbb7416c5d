import { describe, expect, it } from "vitest";
import { bucketLabel, compact, duration, percent, perSecond, tickLabel } from "../../app/lib/format";

// How the dashboard writes durations, rates, counts and times.
describe("format", () => {
  it("durations in the unit a person reads: ms, s, min, h, d", () => {
    expect(duration(0)).toBe("0 ms");
    expect(duration(850)).toBe("850 ms");
    expect(duration(1_200)).toBe("1.2 s");
    expect(duration(12_400)).toBe("12 s");
    expect(duration(180_000)).toBe("3 min");
    expect(duration(90_000)).toBe("1.5 min");
    expect(duration(5.5 * 3_600_000)).toBe("5.5 h");
    expect(duration(3 * 86_400_000)).toBe("3 d");
  });

  it("durations that round up to the next unit say so: never 1000 ms or 60 s", () => {
    expect(duration(999.6)).toBe("1 s");
    expect(duration(59_970)).toBe("1 min");
    expect(duration(3_599_000)).toBe("1 h");
  });

  it("a missing duration is a dash; a negative one (clock skew) is none", () => {
    expect(duration(null)).toBe("–");
    expect(duration(undefined)).toBe("–");
    expect(duration(Number.NaN)).toBe("–");
    expect(duration(-5)).toBe("0 ms");
  });

  it("rates as percentages, one decimal at most; a tiny rate is not 0%", () => {
    expect(percent(0.667)).toBe("66.7%");
    expect(percent(0.02)).toBe("2%");
    expect(percent(1)).toBe("100%");
    expect(percent(0)).toBe("0%");
    expect(percent(0.0004)).toBe("<0.1%");
    expect(percent(null)).toBe("–");
  });

  it("compact counts: 950, 1.2k, 34k, 1.5M, and 999,950 is 1M", () => {
    expect(compact(0)).toBe("0");
    expect(compact(950)).toBe("950");
    expect(compact(1_200)).toBe("1.2k");
    expect(compact(34_000)).toBe("34k");
    expect(compact(1_500_000)).toBe("1.5M");
    expect(compact(999_950)).toBe("1M");
    expect(compact(2.5)).toBe("2.5");
    expect(compact(-1_200)).toBe("-1.2k");
  });

  it("throughput per second, minute or hour, whichever has a whole number in front", () => {
    expect(perSecond(41.5)).toBe("42/s");
    expect(perSecond(4.15)).toBe("4.2/s");
    expect(perSecond(0.2)).toBe("12/min");
    expect(perSecond(3 / 3600)).toBe("3/h");
    expect(perSecond(0)).toBe("0/s");
    expect(perSecond(null)).toBe("–");
  });

  describe("time labels", () => {
    const z = { locale: "en-US", timeZone: "UTC" };
    const t = Date.parse("2026-11-30T14:05:00Z");
    const midnight = Date.parse("2026-11-30T00:00:00Z");

    it("minute and hour ticks say the time of day, and the date at midnight", () => {
      expect(tickLabel(t, "minute", z)).toBe("14:05");
      expect(tickLabel(t, "hour", z)).toBe("14:05");
      expect(tickLabel(midnight, "hour", z)).toBe("Nov 30");
    });

    it("day ticks and rows say the UTC date (the API's days are UTC days), wherever the reader is", () => {
      expect(tickLabel(midnight, "day", z)).toBe("Nov 30");
      expect(tickLabel(midnight, "day", { locale: "en-US", timeZone: "America/New_York" })).toBe("Nov 30");
      expect(bucketLabel(midnight, "day", { locale: "en-US", timeZone: "America/New_York" })).toBe("Nov 30");
    });

    it("the reader's time zone moves minute and hour labels", () => {
      expect(tickLabel(t, "hour", { locale: "en-US", timeZone: "Asia/Kolkata" })).toBe("19:35");
      expect(bucketLabel(t, "minute", z)).toBe("Nov 30, 14:05");
    });
  });
});

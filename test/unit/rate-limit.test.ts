import { describe, expect, it } from "vitest";
import { NO_WINDOWS, take, type Windows } from "../../durable/core/rate-limit";

const limits = { perMinute: 100, perHour: 1000 };

function run(n: number, start: Windows, now: number) {
  let w = start;
  let allowed = 0;
  let last;
  for (let i = 0; i < n; i++) {
    const r = take(w, limits, now);
    w = r.windows;
    last = r.decision;
    if (r.decision.allowed) allowed++;
  }
  return { w, allowed, last: last! };
}

describe("rate limits", () => {
  it("allows exactly the per-minute burst, then refuses with a retry time", () => {
    const t = 1_000_000;
    const { allowed, last } = run(150, NO_WINDOWS, t);
    expect(allowed).toBe(100);
    expect(last).toMatchObject({ allowed: false, remaining: 0, limit: 100 });
    expect(last.retryAfterMs).toBe(60_000);
  });

  it("a new minute window starts a minute after the first request, not on the clock boundary", () => {
    const t = 1_000_000 + 59_000; // one second before a clock-minute boundary
    const first = run(100, NO_WINDOWS, t);
    expect(run(1, first.w, t + 2_000).allowed).toBe(0);
    expect(run(1, first.w, t + 60_000).allowed).toBe(1);
  });

  it("the hourly limit holds across minutes", () => {
    let w = NO_WINDOWS;
    let allowed = 0;
    for (let minute = 0; minute < 60; minute++) {
      const r = run(100, w, 5_000_000 + minute * 60_000);
      w = r.w;
      allowed += r.allowed;
    }
    expect(allowed).toBe(1000);
    const refused = take(w, limits, 5_000_000 + 59 * 60_000 + 1).decision;
    expect(refused).toMatchObject({ allowed: false, limit: 1000, remaining: 0 });
    expect(refused.retryAfterMs).toBe(3_600_000 - 59 * 60_000 - 1);
  });

  it("a refused request changes nothing", () => {
    const full = run(100, NO_WINDOWS, 0).w;
    expect(take(full, limits, 10).windows).toEqual(full);
  });
});

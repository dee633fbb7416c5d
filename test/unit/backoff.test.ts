import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../durable/core/backoff";

const policy = { baseMs: 1000, factor: 2, maxMs: 600_000 };

describe("backoff", () => {
  it("grows exponentially: the ceiling of retry n is baseMs * factor^(n-1)", () => {
    const justUnder = () => 0.999999;
    expect(backoffDelay(1, policy, justUnder)).toBe(999);
    expect(backoffDelay(2, policy, justUnder)).toBe(1999);
    expect(backoffDelay(5, policy, justUnder)).toBe(15_999);
  });

  it("never exceeds maxMs however many attempts", () => {
    for (let n = 1; n < 200; n++) expect(backoffDelay(n, policy, () => 0.999999)).toBeLessThan(policy.maxMs);
  });

  it("uses full jitter: delays spread between zero and the ceiling", () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const delays = Array.from({ length: 2000 }, () => backoffDelay(4, policy, random));
    expect(Math.min(...delays)).toBeLessThan(800);
    expect(Math.max(...delays)).toBeGreaterThan(7200);
    expect(delays.every((d) => d >= 0 && d < 8000)).toBe(true);
  });
});

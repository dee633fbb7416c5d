import { describe, expect, it } from "vitest";
import { formOf, patchOf, refusal } from "../../app/lib/settings";

const settings = {
  version: 3,
  shards: 2,
  paused: false,
  defaults: { maxAttempts: 3, backoff: { baseMs: 1000, factor: 2, maxMs: 600000 }, timeoutMs: 30000 },
  retentionDays: 7,
  idempotencyWindowMs: 86400000,
  concurrency: 20,
  startLimit: { count: 50, perMs: 1000 },
  groupLimits: { default: { concurrency: 2, startLimit: { count: 5, perMs: 1000 } }, overrides: {} },
};

// The Queue page's settings form and the PATCH it sends.
describe("queue settings form", () => {
  it("sends nothing when nothing changed", () => {
    expect(patchOf(settings, formOf(settings))).toEqual({});
  });

  it("sends only what changed, nested where the API nests it", () => {
    const form = { ...formOf(settings), maxAttempts: "5", backoffFactor: "1.5", retentionDays: " 14 " };
    expect(patchOf(settings, form)).toEqual({
      defaults: { maxAttempts: 5, backoff: { baseMs: 1000, factor: 1.5, maxMs: 600000 } },
      retentionDays: 14,
    });
  });

  it("a cleared limit is sent as null, which removes it; a group's start limit stays", () => {
    const form = { ...formOf(settings), concurrency: "", startCount: "", startPerMs: "", groupConcurrency: "" };
    expect(patchOf(settings, form)).toEqual({
      concurrency: null,
      startLimit: null,
      groupLimits: { default: { startLimit: { count: 5, perMs: 1000 } } },
    });
    const none = { ...settings, groupLimits: { default: { concurrency: 2 }, overrides: {} } };
    expect(patchOf(none, { ...formOf(none), groupConcurrency: "" })).toEqual({ groupLimits: { default: null } });
  });

  it("the API's refusal is said under the form's labels", () => {
    const problem = {
      problem: {
        errors: [
          { pointer: "/defaults/maxAttempts", detail: "Too small: expected number to be >=1" },
          { pointer: "/defaults/backoff/maxMs", detail: "must be at least baseMs" },
        ],
      },
    };
    expect(refusal(problem)).toBe("Max attempts: Too small: expected number to be >=1 · Backoff max (ms): must be at least baseMs");
    expect(refusal(new Error("network"))).toBeNull();
  });

  it("names the field that is not a whole number", () => {
    expect(() => patchOf(settings, { ...formOf(settings), concurrency: "ten" })).toThrow(/Concurrency/);
    expect(() => patchOf(settings, { ...formOf(settings), startPerMs: "" })).toThrow(/Start limit: per \(ms\)/);
  });
});

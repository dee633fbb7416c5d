import { describe, expect, it } from "vitest";
import { actionsFor, consequence, describe as describeEvent, pretty } from "../../app/lib/task";

// What the Task page offers and says, by the task's state.
describe("the task page", () => {
  it("offers only the actions the API accepts in each state", () => {
    const offer = (status: any, cancelRequested = false) => actionsFor({ status, cancelRequested });
    expect(offer("pending")).toEqual(["cancel"]);
    expect(offer("scheduled")).toEqual(["cancel"]);
    expect(offer("blocked")).toEqual(["cancel"]);
    expect(offer("running")).toEqual(["cancel"]);
    expect(offer("running", true)).toEqual([]); // asked already
    expect(offer("completed")).toEqual(["delete"]);
    expect(offer("failed")).toEqual(["retry", "delete"]);
    expect(offer("cancelled")).toEqual(["retry", "delete"]);
  });

  it("says what confirming will do before it is done", () => {
    expect(consequence("cancel", { status: "running", name: "resize" })).toMatch(/next heartbeat/);
    expect(consequence("cancel", { status: "pending", name: "resize" })).toMatch(/will not run/);
    expect(consequence("delete", { status: "failed", name: "resize" })).toMatch(/cannot be undone/);
  });

  it("puts a timeline event in words with what matters for it", () => {
    expect(describeEvent({ type: "started", at: "2026-01-01T00:00:00Z", attempt: 2, workerId: "w1" })).toBe("started attempt 2 by w1");
    expect(describeEvent({ type: "retrying", at: "2026-01-01T00:00:00Z", error: { message: "timeout" } })).toBe("retrying: timeout");
    expect(describeEvent({ type: "cancel_requested", at: "2026-01-01T00:00:00Z" })).toBe("cancel requested");
    expect(describeEvent({ type: "heartbeat", at: "2026-01-01T00:00:00Z", progress: 40 })).toBe("heartbeat, progress 40%");
  });

  it("shows JSON indented, and nothing as a dash", () => {
    expect(pretty({ a: 1 })).toBe('{\n  "a": 1\n}');
    expect(pretty(null)).toBe("—");
  });
});

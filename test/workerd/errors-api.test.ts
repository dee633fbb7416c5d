import { describe, expect, it } from "vitest";
import { api, expectProblem, freshQueue } from "./helpers";

describe("bad input gets a clear problem+json and changes nothing", () => {
  it("a payload over 128 KiB is 413 and enqueues nothing", async () => {
    const q = freshQueue();
    const res = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "big", payload: "x".repeat(128 * 1024) });
    expectProblem(res, 413, "payload_too_large");
    expect(res.body.errors[0].pointer).toBe("/payload");
    expectProblem(await api("GET", `/api/v1/queues/${q}`), 404, "not_found");
  });

  it("one oversized payload in a batch refuses the whole batch", async () => {
    const q = freshQueue();
    const res = await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [{ name: "ok" }, { name: "big", payload: "x".repeat(130 * 1024) }],
    });
    expectProblem(res, 413, "payload_too_large");
    expect(res.body.errors[0].pointer).toBe("/tasks/1/payload");
    expectProblem(await api("GET", `/api/v1/queues/${q}`), 404, "not_found");
  });

  it("a body over 8 MiB is 413, even when every payload in it is under 128 KiB", async () => {
    const q = freshQueue();
    // 70 payloads of 120 KiB: each within the payload limit, together over the body limit.
    const tasks = Array.from({ length: 70 }, (_, i) => ({ name: `t${i}`, payload: "x".repeat(120 * 1024) }));
    const body = JSON.stringify({ tasks });
    expect(body.length).toBeGreaterThan(8 * 1024 * 1024);
    const res = await api("POST", `/api/v1/queues/${q}/tasks/batch`, body);
    expectProblem(res, 413, "payload_too_large");
    expect(res.body.detail).toMatch(/body/i);
    // 60 of them fit: the limit is the body's, not the payloads'.
    expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, JSON.stringify({ tasks: tasks.slice(0, 60) }))).status).toBe(201);
    // and one payload over 128 KiB in a small body is refused by the payload limit, naming it
    const big = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "big", payload: "x".repeat(129 * 1024) });
    expectProblem(big, 413, "payload_too_large");
    expect(big.body.errors[0].pointer).toBe("/payload");
  });

  it("invalid fields are 400 with a pointer per field", async () => {
    const res = await api("POST", `/api/v1/queues/${freshQueue()}/tasks`, { name: "", priority: 11, timeoutMs: 5, colour: "red" });
    expectProblem(res, 400, "validation_failed");
    const pointers = res.body.errors.map((e: any) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(["/name", "/priority", "/timeoutMs"]));
    expect(res.body.errors.every((e: any) => typeof e.detail === "string" && e.detail.length > 0)).toBe(true);
  });

  it("a backoff whose longest wait is shorter than its first is 400 on /maxMs, for a task and for a queue's defaults, and changes nothing", async () => {
    const q = freshQueue();
    const task = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a", backoff: { baseMs: 900_000, factor: 2, maxMs: 1000 } });
    expectProblem(task, 400, "validation_failed");
    expect(task.body.errors.map((e: any) => e.pointer)).toEqual(["/backoff/maxMs"]);
    const settings = await api("PATCH", `/api/v1/queues/${q}`, { defaults: { backoff: { baseMs: 900_000, factor: 2, maxMs: 1000 } } });
    expectProblem(settings, 400, "validation_failed");
    expect(settings.body.errors.map((e: any) => e.pointer)).toEqual(["/defaults/backoff/maxMs"]);
    expectProblem(await api("GET", `/api/v1/queues/${q}`), 404, "not_found");
  });

  it("a lone surrogate in a stored string is 400 on its pointer and changes nothing; a surrogate pair is a character like any other", async () => {
    const q = freshQueue();
    // JSON carries half a UTF-16 pair as an escape; such a group key came back from storage as
    // replacement characters and its task was never leased.
    const lone = (text: string) => text.replace("LONE", "\\ud800");
    const bodies: [string, string, string][] = [
      [`/api/v1/queues/${q}/tasks`, `{"name": "t", "groupKey": "gLONE"}`, "/groupKey"],
      [`/api/v1/queues/${q}/tasks`, `{"name": "tLONE"}`, "/name"],
      [`/api/v1/queues/${q}/tasks`, `{"name": "t", "idempotencyKey": "kLONE"}`, "/idempotencyKey"],
      [`/api/v1/queues/${q}/tasks`, `{"name": "t", "tags": ["ok", "xLONE"]}`, "/tags/1"],
      [`/api/v1/queues/${q}/tasks/batch`, `{"tasks": [{"name": "ok"}, {"name": "t", "groupKey": "LONE"}]}`, "/tasks/1/groupKey"],
      [`/api/v1/queues/${q}/leases`, `{"workerId": "wLONE"}`, "/workerId"],
    ];
    for (const [path, body, pointer] of bodies) {
      const res = await api("POST", path, lone(body));
      expectProblem(res, 400, "validation_failed");
      expect(res.body.errors.map((e: any) => e.pointer)).toEqual([pointer]);
      expect(res.body.errors[0].detail).toMatch(/well-formed Unicode/);
    }
    expectProblem(await api("GET", `/api/v1/queues/${q}`), 404, "not_found");
    // A pair (an emoji) is fine, is stored as it came, and its group's task is leased.
    const made = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t\u{1F600}", groupKey: "g\u{1F600}", tags: ["\u{1F600}"] });
    expect(made.status).toBe(201);
    const leased = await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w\u{1F600}", max: 1 });
    expect(leased.body.leases.map((l: any) => [l.task.id, l.task.name, l.task.groupKey])).toEqual([
      [made.body.id, "t\u{1F600}", "g\u{1F600}"],
    ]);
  });

  it("a batch over 1000 tasks is 400", async () => {
    const tasks = Array.from({ length: 1001 }, () => ({ name: "t" }));
    expectProblem(await api("POST", `/api/v1/queues/${freshQueue()}/tasks/batch`, { tasks }), 400, "validation_failed");
  });

  it("delayMs and runAt together are refused", async () => {
    const res = await api("POST", `/api/v1/queues/${freshQueue()}/tasks`, { name: "a", delayMs: 5, runAt: new Date().toISOString() });
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors[0].pointer).toBe("/runAt");
  });

  it("an invalid queue name is 400", async () => {
    const res = await api("POST", "/api/v1/queues/Bad.Name/tasks", { name: "a" });
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors[0].pointer).toBe("{queue}");
  });

  it("malformed JSON is 400", async () => {
    expectProblem(await api("POST", `/api/v1/queues/${freshQueue()}/tasks`, '{"name": "a",'), 400, "malformed_json");
  });

  it("a body that is not JSON is 415", async () => {
    const res = await api("POST", `/api/v1/queues/${freshQueue()}/tasks`, "name=a", { "content-type": "text/plain" });
    expectProblem(res, 415, "unsupported_media_type");
  });

  it("an unknown route is 404 and an unknown task is 404", async () => {
    expectProblem(await api("GET", "/api/v1/nothing-here"), 404, "not_found");
    expectProblem(await api("GET", "/api/v1/tasks/01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.nowhere"), 404, "not_found");
    expectProblem(await api("GET", "/api/v1/tasks/not-a-task-id"), 404, "not_found");
    expectProblem(await api("POST", "/api/v1/tasks/not-a-task-id/complete", { leaseToken: "x" }), 404, "not_found");
  });

  it("a wrong method on a known path is 405 with Allow", async () => {
    const res = await api("PUT", `/api/v1/queues/${freshQueue()}/tasks`, { name: "a" });
    expectProblem(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toBe("POST, GET");
  });

  it("lease limits are enforced", async () => {
    const q = freshQueue();
    expectProblem(await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 1001 }), 400, "validation_failed");
    expectProblem(await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", waitMs: 30_001 }), 400, "validation_failed");
  });

  it("a list query with a bad limit is 400 with the parameter named", async () => {
    const q = freshQueue();
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a" });
    const res = await api("GET", `/api/v1/queues/${q}/tasks?limit=0`);
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors[0].pointer).toBe("?limit");
  });
});

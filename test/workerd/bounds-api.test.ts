import { describe, expect, it } from "vitest";
import { api, expectProblem, freshQueue, until } from "./helpers";

const DAY = 86_400_000;

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe("work and input have bounds", () => {
  it("JSON nested deeper than 64 levels is refused with 400 naming where, and nothing is written", async () => {
    const q = freshQueue("deep");
    const res = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", payload: nested(20_000) });
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors[0].pointer).toBe(`/payload${"/a".repeat(64)}`);
    expect((await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", payload: nested(64) })).status).toBe(201);
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({ pending: 1 });
    const [l] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" })).body.leases;
    const deepResult = await api("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken, result: nested(100) });
    expectProblem(deepResult, 400, "validation_failed");
    expect((await api("GET", `/api/v1/tasks/${l.task.id}`)).body.status).toBe("running");
  });

  it("runAt more than 365 days ahead is refused like delayMs", async () => {
    const q = freshQueue("ahead");
    const far = new Date(Date.now() + 366 * DAY).toISOString();
    const res = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", runAt: far });
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors[0].pointer).toBe("/runAt");
    expectProblem(await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", delayMs: 366 * DAY }), 400, "validation_failed");
    const near = new Date(Date.now() + 364 * DAY).toISOString();
    expect((await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", runAt: near })).status).toBe(201);
  });

  it("a progress report over 16 KiB is refused with 413 and the lease goes on", async () => {
    const q = freshQueue("prog");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t" });
    const [l] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" })).body.leases;
    const big = await api("POST", `/api/v1/tasks/${l.task.id}/heartbeat`, {
      leaseToken: l.leaseToken,
      progress: { log: "x".repeat(17 * 1024) },
    });
    expectProblem(big, 413, "payload_too_large");
    const ok = await api("POST", `/api/v1/tasks/${l.task.id}/heartbeat`, {
      leaseToken: l.leaseToken,
      progress: { log: "x".repeat(15 * 1024) },
    });
    expect(ok.status).toBe(200);
  });

  it("a lease of large payloads stops at about 4 MiB, and always carries at least one task", async () => {
    const q = freshQueue("bytes");
    const payload = { blob: "x".repeat(120 * 1024) };
    for (let i = 0; i < 5; i++) {
      const tasks = Array.from({ length: 10 }, () => ({ name: "big", payload }));
      expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks })).status).toBe(201);
    }
    const res = await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 1000 });
    expect(res.status).toBe(200);
    const n = res.body.leases.length;
    expect(n).toBeGreaterThanOrEqual(30);
    expect(n).toBeLessThan(50);
    expect(n * 120 * 1024).toBeLessThanOrEqual(4 * 1024 * 1024);
    const rest = await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 1000 });
    expect(rest.body.leases.length).toBe(50 - n);
  });

  it("a purge of more than one pass answers 202 and its alarm cancels the rest", async () => {
    const q = freshQueue("purge");
    for (let i = 0; i < 2; i++) {
      const tasks = Array.from({ length: 700 }, (_, j) => ({ name: `t${i}-${j}` }));
      expect((await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks })).status).toBe(201);
    }
    const res = await api("POST", `/api/v1/queues/${q}/purge`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ cancelled: 500, done: false });
    const after = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "after" });
    await until(async () => (await api("GET", `/api/v1/queues/${q}`)).body.counts.cancelled === 1400);
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({ cancelled: 1400, pending: 1 });
    expect((await api("GET", `/api/v1/tasks/${after.body.id}`)).body.status).toBe("pending");
  });
});

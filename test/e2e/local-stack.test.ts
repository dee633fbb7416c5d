import { afterAll, describe, expect, it } from "vitest";
import { LocalStack, until } from "./stack";

/**
 * The local stack as `npm start` runs it (the Worker bundle on workerd, local D1 in a workerd of
 * its own, state on disk), driven over real HTTP: it must start, serve a task's whole life, and
 * keep its state across a restart.
 */
const stack = new LocalStack();
const start = () => stack.start();
const stop = () => stack.stop();

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

afterAll(() => stack.dispose());

describe("the local stack", () => {
  it("starts, runs a task's whole life over HTTP, and keeps state across a restart", { timeout: 120_000 }, async () => {
    await start();
    const made = await call("POST", "/api/v1/queues/e2e/tasks", { name: "send", payload: { n: 1 }, priority: 9 });
    expect(made.status).toBe(201);
    const delayed = await call("POST", "/api/v1/queues/e2e/tasks", { name: "later", delayMs: 3_600_000 });
    const leased = await call("POST", "/api/v1/queues/e2e/leases", { workerId: "w", max: 1, waitMs: 1000 });
    const lease = leased.body.leases[0];
    expect(lease.task.id).toBe(made.body.id);
    expect((await call("POST", `/api/v1/tasks/${lease.task.id}/heartbeat`, { leaseToken: lease.leaseToken, progress: 50 })).status).toBe(
      200,
    );
    const done = await call("POST", `/api/v1/tasks/${lease.task.id}/complete`, { leaseToken: lease.leaseToken, result: { ok: true } });
    expect(done.body.status).toBe("completed");
    expect((await fetch(`${stack.url}/api/v1/queues/e2e`)).status).toBe(401);

    await stop();
    await start();
    expect((await call("GET", `/api/v1/tasks/${made.body.id}`)).body).toMatchObject({ status: "completed", result: { ok: true } });
    expect((await call("GET", `/api/v1/tasks/${delayed.body.id}`)).body.status).toBe("scheduled");
    expect((await call("GET", "/api/v1/queues/e2e")).body.counts).toEqual({ completed: 1, scheduled: 1 });
    const docs = await fetch(`${stack.url}/openapi.json`);
    expect(docs.status).toBe(200);
  });

  it("runs local D1 in a workerd of its own, and history written before a restart is searched after it", { timeout: 120_000 }, async () => {
    await start();
    expect(stack.processes()).toEqual(["node", "workerd", "workerd"]);
    const word = `zebra${Math.random().toString(36).slice(2, 8)}`;
    const made = await call("POST", "/api/v1/queues/e2e-history/tasks", { name: "index", payload: { note: `a ${word} crossing` } });
    expect(made.status).toBe(201);
    const found = async () => (await call("GET", `/api/v1/tasks?q=${word}`)).body.items?.map((t: { id: string }) => t.id);
    await until(async () => (await found())?.length === 1);
    await stop();
    await start();
    expect(await found()).toEqual([made.body.id]);
  });

  it("stops the API when local D1's process dies, rather than serve on with history stopped", { timeout: 120_000 }, async () => {
    await start();
    expect(await stack.crashLocalD1()).toBe(1);
    await start(); // a new start brings both back, history included
    const made = await call("POST", "/api/v1/queues/e2e-history/tasks", { name: "after" });
    expect(made.status).toBe(201);
    await until(async () => (await call("GET", `/api/v1/tasks?q=after`)).body.items?.some((t: { id: string }) => t.id === made.body.id));
  });

  it(
    "answers a refused call whose body it never needed, and keeps the connection: no reset on keep-alive",
    { timeout: 120_000 },
    async () => {
      await start();
      const failures: string[] = [];
      for (let i = 0; i < 300; i++) {
        // A bad queue name or an unknown route is refused before the body is read.
        const path = i % 2 ? "/api/v1/queues/%20/tasks" : "/api/v1/nowhere";
        try {
          const res = await fetch(`${stack.url}${path}`, {
            method: "POST",
            headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
            body: JSON.stringify({ name: "x".repeat(i * 50) }),
          });
          expect([400, 404]).toContain(res.status);
          expect(res.headers.get("content-type")).toContain("application/problem+json");
          await res.text();
        } catch (e) {
          failures.push(`${i}: ${(e as { cause?: { code?: string } }).cause?.code ?? e}`);
        }
      }
      // A body over the 8 MiB limit is refused with 413, and still read, so the client sees the answer.
      for (let i = 0; i < 5; i++) {
        try {
          const res = await fetch(`${stack.url}/api/v1/queues/big/tasks`, {
            method: "POST",
            headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
            body: `{"name":"a","payload":"${"x".repeat(10 * 1024 * 1024)}"}`,
          });
          expect(res.status).toBe(413);
          await res.text();
        } catch (e) {
          failures.push(`over the limit: ${(e as { cause?: { code?: string } }).cause?.code ?? e}`);
        }
      }
      expect(failures).toEqual([]);
    },
  );
});

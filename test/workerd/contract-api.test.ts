import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccessKey } from "../../durable/access-key";
import { accessKeyOf } from "../../worker/keys";
import { api, expectProblem, freshQueue } from "./helpers";

const as = (token: string) => ({ authorization: `Bearer ${token}` });

async function createKey(role: string, extra: object = {}) {
  const res = await api("POST", "/api/v1/keys", { role, name: `${role}-key`, ...extra });
  expect(res.status).toBe(201);
  return res.body as { id: string; key: string };
}

/** Moves a key's clock forward, as if that much time had passed. */
async function advanceKey(id: string, ms: number) {
  await runInDurableObject(accessKeyOf(env, id), (o: AccessKey) => {
    const offset = ((o.clock as { offset?: number }).offset ?? 0) + ms;
    o.clock = { offset, now: () => Date.now() + offset } as AccessKey["clock"];
  });
}

const hasLeaseToken = (v: unknown): boolean => JSON.stringify(v).includes('"leaseToken"');

describe("rate limits over HTTP", () => {
  it("the hourly window binds across minutes, answers Retry-After to its end, resets, and survives a restart", async () => {
    const { id, key } = await createKey("read-only", { limits: { perMinute: 5, perHour: 8 } });
    const get = () => api("GET", "/api/v1/queues?limit=1", undefined, as(key));
    const statuses = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await get()).status);
      return out;
    };
    expect(await statuses(6)).toEqual([200, 200, 200, 200, 200, 429]); // the minute
    await advanceKey(id, 61_000);
    // Restart: the object reads its windows back from storage.
    await runInDurableObject(accessKeyOf(env, id), (o: AccessKey) => {
      const self = o as unknown as { ready: boolean; record: unknown; windows: unknown; prepare(): void };
      self.ready = false;
      self.record = null;
      self.windows = { minuteStart: 0, minuteCount: 0, hourStart: 0, hourCount: 0 };
      self.prepare();
    });
    expect(await statuses(3)).toEqual([200, 200, 200]); // 8 in the hour
    const limited = await get();
    expectProblem(limited, 429, "rate_limited");
    const retry = Number(limited.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(60); // the hour's end, not the minute's
    expect(retry).toBeLessThanOrEqual(3600);
    await advanceKey(id, 3600_000);
    expect((await get()).status).toBe(200); // a new hour
  });
});

describe("tenant isolation of lists, workers, schedules and batch calls", () => {
  it("another tenant sees none of it, and its ids in batch calls are not found", async () => {
    const acme = (await createKey("admin", { tenant: "acme-contract" })).key;
    const globex = (await createKey("admin", { tenant: "globex-contract" })).key;
    const q = freshQueue("iso");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "secret" }, as(acme));
    const [lease] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" }, as(acme))).body.leases;
    const worker = await api("POST", "/api/v1/workers", { name: "acme-worker", queues: [q], concurrency: 1 }, as(acme));
    expect(worker.status).toBe(201);
    const sched = await api("POST", `/api/v1/queues/${q}/schedules`, { id: "nightly", cron: "0 3 * * *", task: { name: "n" } }, as(acme));
    expect(sched.status).toBe(201);

    const queues = await api("GET", "/api/v1/queues?limit=200", undefined, as(globex));
    expect(queues.status).toBe(200);
    expect(queues.body.items.map((x: { name: string }) => x.name)).not.toContain(q);
    const workers = await api("GET", "/api/v1/workers?limit=200", undefined, as(globex));
    expect(workers.status).toBe(200);
    expect(workers.body.items.map((x: { id: string }) => x.id)).not.toContain(worker.body.id);
    expectProblem(await api("GET", `/api/v1/workers/${worker.body.id}`, undefined, as(globex)), 404, "not_found");
    const schedules = await api("GET", `/api/v1/queues/${q}/schedules`, undefined, as(globex));
    expect(schedules.status === 404 || schedules.body.items.length === 0).toBe(true);
    expectProblem(await api("GET", `/api/v1/queues/${q}/schedules/nightly`, undefined, as(globex)), 404, "not_found");

    const items = [{ id: lease.task.id, leaseToken: lease.leaseToken }];
    for (const path of ["complete", "heartbeat", "fail"]) {
      const body = path === "fail" ? { items: items.map((i) => ({ ...i, error: { message: "x" } })) } : { items };
      const res = await api("POST", `/api/v1/leases/${path}`, body, as(globex));
      expect(res.status).toBe(200);
      expect(res.body.results[0]).toMatchObject({ id: lease.task.id, ok: false, problem: { type: "urn:edgeq:error:not_found" } });
    }
    expect((await api("GET", `/api/v1/tasks/${lease.task.id}`, undefined, as(acme))).body.status).toBe("running");
  });
});

describe("batch lease calls with stale tokens", () => {
  it("a superseded token fails its item in batch fail and heartbeat, and changes nothing", async () => {
    const q = freshQueue("stale");
    await api("PATCH", `/api/v1/queues/${q}`, { defaults: { timeoutMs: 100, backoff: { baseMs: 0, factor: 1, maxMs: 0 } } });
    const t = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t" })).body;
    const old = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" })).body.leases[0];
    await new Promise((r) => setTimeout(r, 150)); // the lease expires; the task is ready again at once
    const current = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" })).body.leases[0];
    expect(current.task.id).toBe(t.id);
    for (const path of ["heartbeat", "fail"]) {
      const item = { id: t.id, leaseToken: old.leaseToken, ...(path === "fail" ? { error: { message: "late" } } : {}) };
      const res = await api("POST", `/api/v1/leases/${path}`, { items: [item] });
      expect(res.body.results[0]).toMatchObject({ ok: false, problem: { type: "urn:edgeq:error:stale_lease", status: 409 } });
    }
    const now = await api("GET", `/api/v1/tasks/${t.id}`);
    expect(now.body).toMatchObject({ status: "running", attempts: 2, error: { message: expect.stringMatching(/Lease expired/) } });
  });
});

describe("the lease token stays with the lease", () => {
  it("no answer but a lease carries leaseToken: get, lists, children, complete, fail, cancel", async () => {
    const q = freshQueue("token");
    const parent = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "parent" })).body;
    await api("POST", `/api/v1/queues/${q}/tasks/batch`, {
      tasks: [{ name: "a", parentId: parent.id }, { name: "b", parentId: parent.id }, { name: "c" }],
    });
    const leases = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 10 })).body.leases;
    expect(leases.every((l: { leaseToken: string }) => typeof l.leaseToken === "string")).toBe(true);
    const by = (name: string) => leases.find((l: { task: { name: string } }) => l.task.name === name);
    const answers = [
      await api("POST", `/api/v1/tasks/${by("a").task.id}/complete`, { leaseToken: by("a").leaseToken }),
      await api("POST", `/api/v1/tasks/${by("b").task.id}/fail`, {
        leaseToken: by("b").leaseToken,
        error: { message: "x" },
        retryable: false,
      }),
      await api("POST", `/api/v1/tasks/${by("c").task.id}/cancel`),
      await api("GET", `/api/v1/tasks/${by("c").task.id}`),
      await api("GET", `/api/v1/queues/${q}/tasks?limit=100`),
      await api("GET", `/api/v1/queues/${q}/tasks?status=running`),
      await api("GET", `/api/v1/tasks/${parent.id}/children`),
    ];
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(hasLeaseToken(a.body)).toBe(false);
    }
    expect(answers[6].body.items).toHaveLength(2);
  });
});

describe("limits on what a task carries", () => {
  it("a result over 128 KiB is 413, more than 20 tags or a timeout over 12 h is 400, and nothing changes", async () => {
    const q = freshQueue("limits");
    const tags = Array.from({ length: 21 }, (_, i) => `t${i}`);
    const tooMany = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", tags });
    expectProblem(tooMany, 400, "validation_failed");
    expect(tooMany.body.errors.map((e: { pointer: string }) => e.pointer)).toContain("/tags");
    const longLease = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", timeoutMs: 12 * 3600_000 + 1 });
    expectProblem(longLease, 400, "validation_failed");
    expect(longLease.body.errors.map((e: { pointer: string }) => e.pointer)).toContain("/timeoutMs");
    expect((await api("POST", `/api/v1/queues/${q}/tasks`, { name: "t", tags: tags.slice(0, 20), timeoutMs: 12 * 3600_000 })).status).toBe(
      201,
    );
    const [l] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w" })).body.leases;
    const big = await api("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken, result: "x".repeat(128 * 1024) });
    expectProblem(big, 413, "payload_too_large");
    expect((await api("GET", `/api/v1/tasks/${l.task.id}`)).body).toMatchObject({ status: "running", result: null });
    expect((await api("GET", `/api/v1/queues/${q}`)).body.counts).toEqual({ running: 1 });
  });
});

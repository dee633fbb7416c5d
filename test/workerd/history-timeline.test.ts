import { createExecutionContext, createScheduledController, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ulidTimePrefix } from "../../durable/core/ids";
import { sweepHistory } from "../../worker/retention";
import worker from "../../worker/index";
import { unavailableD1 } from "../../durable/flusher";
import type { QueueShard } from "../../durable/queue-shard";
import { ADMIN_TOKEN, advance, api, expectProblem, flushHistory, freshQueue, shardStub, storedStatus, tenantApi } from "./helpers";

const DAY = 86_400_000;

async function lease(queue: string, workerId = "w-1") {
  const res = await api("POST", `/api/v1/queues/${queue}/leases`, { workerId, max: 1 });
  expect(res.body.leases).toHaveLength(1);
  return res.body.leases[0] as { task: { id: string }; leaseToken: string };
}

async function events(id: string, query = "") {
  const res = await api("GET", `/api/v1/tasks/${id}/events${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { items: { type: string; at: string; [k: string]: unknown }[]; nextCursor: string | null };
}

describe("GET /tasks/{id}/events", () => {
  it("tells a task's life in order: runs, heartbeats, a retry, the end", async () => {
    const q = freshQueue("tl");
    const made = await api("POST", `/api/v1/queues/${q}/tasks`, {
      name: "resize",
      maxAttempts: 3,
      backoff: { baseMs: 1000, factor: 2, maxMs: 1000 },
    });
    const id = made.body.id;
    const one = await lease(q);
    await api("POST", `/api/v1/tasks/${id}/heartbeat`, { leaseToken: one.leaseToken, progress: 40 });
    await api("POST", `/api/v1/tasks/${id}/fail`, { leaseToken: one.leaseToken, error: { message: "disk full" } });
    await advance(q, 1500); // the retry becomes ready
    const two = await lease(q, "w-2");
    await api("POST", `/api/v1/tasks/${id}/release`, { leaseToken: two.leaseToken });
    const three = await lease(q, "w-3");
    await api("POST", `/api/v1/tasks/${id}/complete`, { leaseToken: three.leaseToken, result: { ok: true } });
    await flushHistory(q);
    const page = await events(id);
    expect(page.items.map((e) => e.type)).toEqual([
      "enqueued",
      "started",
      "heartbeat",
      "retrying",
      "promoted",
      "started",
      "released",
      "started",
      "completed",
    ]);
    expect(page.items[1]).toMatchObject({ status: "running", attempt: 1, workerId: "w-1" });
    expect(page.items[2]).toMatchObject({ progress: 40 });
    expect(page.items[3]).toMatchObject({ status: "scheduled", error: { message: "disk full" } });
    expect(typeof page.items[3].runAt).toBe("string");
    expect(page.items[5]).toMatchObject({ attempt: 2, workerId: "w-2" });
    const times = page.items.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(page.nextCursor).toBeNull();
    expect(JSON.stringify(page)).not.toMatch(/leaseToken|lease_token/i);
    expect(JSON.stringify(page)).not.toContain(three.leaseToken);
  });

  it("pages with the cursor: every event once, oldest first", async () => {
    const q = freshQueue("tl");
    const id = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "long" })).body.id;
    const l = await lease(q);
    for (let i = 1; i <= 6; i++) {
      await api("POST", `/api/v1/tasks/${id}/heartbeat`, { leaseToken: l.leaseToken, progress: i * 10 });
      if (i % 2 === 0) await flushHistory(q); // events spread over several flushes
    }
    await api("POST", `/api/v1/tasks/${id}/complete`, { leaseToken: l.leaseToken });
    await flushHistory(q);
    const all = (await events(id)).items;
    expect(all.map((e) => e.type)).toEqual(["enqueued", "started", ...Array(6).fill("heartbeat"), "completed"]);
    const paged: unknown[] = [];
    let cursor: string | null = null;
    do {
      const page = await events(id, `?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      paged.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
    expectProblem(await api("GET", `/api/v1/tasks/${id}/events?cursor=nonsense`), 400, "validation_failed");
    expectProblem(await api("GET", `/api/v1/tasks/${id}/events?limit=201`), 400, "validation_failed");
  });

  it("cancel while running, and a lease that expires", async () => {
    const q = freshQueue("tl");
    const a = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "a", priority: 9 })).body.id;
    const b = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "b", timeoutMs: 1000, maxAttempts: 1 })).body.id;
    const la = await lease(q);
    await api("POST", `/api/v1/tasks/${a}/cancel`);
    await api("POST", `/api/v1/tasks/${a}/fail`, { leaseToken: la.leaseToken, error: { message: "stopping" } });
    await lease(q);
    await advance(q, 1500);
    await flushHistory(q);
    expect((await events(a)).items.map((e) => e.type)).toEqual(["enqueued", "started", "cancel_requested", "cancelled"]);
    expect((await events(b)).items.map((e) => e.type)).toEqual(["enqueued", "started", "expired"]);
    expect((await events(b)).items[2]).toMatchObject({ status: "failed" });
  });

  it("a live task not yet in history has an empty timeline; an unknown one is 404; another tenant's is 404", async () => {
    const q = freshQueue("tl");
    const id = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "fresh" })).body.id;
    expect(await events(id)).toEqual({ items: [], nextCursor: null });
    await flushHistory(q);
    expect((await events(id)).items).toHaveLength(1);
    expectProblem(await api("GET", `/api/v1/tasks/01M8MMTV804A6QM2BCKEV96WQQ.0.${q}/events`), 404, "not_found");
    expectProblem(await api("GET", "/api/v1/tasks/not-an-id/events"), 404, "not_found");
    const other = await tenantApi(`tl-${crypto.randomUUID().slice(0, 6)}`);
    expectProblem(await other("GET", `/api/v1/tasks/${id}/events`), 404, "not_found");
    expectProblem(await other("GET", `/api/v1/tasks/${id}`), 404, "not_found");
  });
});

describe("GET /tasks/{id} after the shard's retention", () => {
  it("falls back to history once the shard's retention has dropped the finished task", async () => {
    const q = freshQueue("tl");
    // The task is made and finished 8 days ago, by the shard's clock (set before the shard makes any id).
    await runInDurableObject(shardStub(q), (i: QueueShard) => {
      i.clock = { offset: -8 * DAY, now: () => Date.now() - 8 * DAY } as QueueShard["clock"];
    });
    const id = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "old", payload: { keep: "me" }, priority: 9 })).body.id;
    const l = await lease(q);
    expect(l.task.id).toBe(id);
    await api("POST", `/api/v1/tasks/${id}/complete`, { leaseToken: l.leaseToken, result: 7 });
    const live = (await api("GET", `/api/v1/tasks/${id}`)).body;
    await flushHistory(q);
    await advance(q, 8 * DAY); // back to now: past the queue's 7-day retention, the shard sweeps the task
    expect(await storedStatus(q, id)).toBeUndefined();
    const res = await api("GET", `/api/v1/tasks/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...live, expiresAt: null });
  });

  it("a task deleted by hand is not served from history, even before history has heard of the delete", async () => {
    const q = freshQueue("tl");
    const id = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "gone" })).body.id;
    await api("POST", `/api/v1/tasks/${id}/cancel`);
    await flushHistory(q);
    expect((await api("DELETE", `/api/v1/tasks/${id}`)).status).toBe(204);
    expectProblem(await api("GET", `/api/v1/tasks/${id}`), 404, "not_found");
  });

  it("a task its shard does not have, while D1 is down: 503, not 500", async () => {
    const q = freshQueue("tl");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "x" });
    const req = new Request(`http://edgeq.test/api/v1/tasks/01M8MMTV804A6QM2BCKEV96WQQ.0.${q}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const res = await worker.fetch(req, { ...env, DB: unavailableD1 }, createExecutionContext());
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});

describe("history retention", () => {
  it("finished tasks leave history after the tenant's retention; live ones stay; each tenant has its own", async () => {
    const short = `rt-${crypto.randomUUID().slice(0, 6)}`;
    const long = `rt-${crypto.randomUUID().slice(0, 6)}`;
    const callShort = await tenantApi(short);
    const callLong = await tenantApi(long);
    expect((await callLong("PUT", "/api/v1/tenant/history", { retentionDays: 60 })).body).toEqual({ tenant: long, retentionDays: 60 });
    expect((await callShort("GET", "/api/v1/tenant/history")).body).toEqual({ tenant: short, retentionDays: 30 });
    for (const call of [callShort, callLong]) {
      const done = (await call("POST", "/api/v1/queues/q/tasks", { name: "done", maxAttempts: 1 })).body.id;
      await call("POST", `/api/v1/tasks/${done}/cancel`);
      await call("POST", "/api/v1/queues/q/tasks", { name: "waiting", delayMs: 86_400_000 });
    }
    await flushHistory("q", 0, short);
    await flushHistory("q", 0, long);
    const count = async (tenant: string) =>
      (await env.DB.prepare("SELECT name FROM tasks WHERE tenant = ? ORDER BY name").bind(tenant).all<{ name: string }>()).results.map(
        (r) => r.name,
      );
    await sweepHistory(env.DB, Date.now() + 29 * DAY);
    expect(await count(short)).toEqual(["done", "waiting"]);
    await sweepHistory(env.DB, Date.now() + 31 * DAY);
    expect(await count(short)).toEqual(["waiting"]);
    expect(await count(long)).toEqual(["done", "waiting"]);
    await sweepHistory(env.DB, Date.now() + 61 * DAY);
    expect(await count(long)).toEqual(["waiting"]);
    const events = await env.DB.prepare("SELECT count(*) AS n FROM task_events WHERE tenant IN (?, ?)")
      .bind(short, long)
      .first<{ n: number }>();
    expect(events!.n).toBe(2); // the waiting tasks' timelines only
    expectProblem(await callShort("PUT", "/api/v1/tenant/history", { retentionDays: 6 }), 400, "validation_failed");
    expect((await callLong("PUT", "/api/v1/tenant/history", { retentionDays: null })).body.retentionDays).toBe(30);
  });

  it("the cron trigger runs the sweep", async () => {
    const tenant = `rt-${crypto.randomUUID().slice(0, 6)}`;
    const old = Date.now() - 40 * DAY;
    const id = `${ulidTimePrefix(old)}0000000000000000.0.q`;
    await env.DB.batch([
      env.DB.prepare(
        `INSERT INTO tasks (tenant, id, doc, queue, name, payload, priority, status, attempts, max_attempts, backoff, timeout_ms, run_at, cancel_requested, created_at, finished_at, version)
         VALUES (?, ?, 987654321, 'q', 'ancient', '{}', 5, 'completed', 1, 3, '{}', 30000, ?, 0, ?, ?, 1)`,
      ).bind(tenant, id, old, old, old + 1000),
      env.DB.prepare("INSERT INTO task_events (tenant, task_id, seq, last_seq, events) VALUES (?, ?, 1, 1, '[]')").bind(tenant, id),
      env.DB.prepare("INSERT INTO task_text (rowid, id, name, body) VALUES (987654321, ?, 'ancient', 'fossil')").bind(id),
      // Rollups: an hour 40 days old and a minute 8 days old go; a minute and an hour of today stay.
      ...[
        ["h", old],
        ["m", Date.now() - 8 * DAY],
        ["m", Date.now()],
        ["h", Date.now()],
      ].map(([res, at]) =>
        env.DB.prepare(
          "INSERT INTO rollups (tenant, res, at, queue, enqueued, completed, failed, cancelled, retried) VALUES (?, ?, ?, 'q', 1, 1, 0, 0, 0)",
        ).bind(tenant, res, at),
      ),
      env.DB.prepare("INSERT INTO rollup_hist (tenant, res, at, queue, kind, bin, n) VALUES (?, 'h', ?, 'q', 'run', 5, 1)").bind(
        tenant,
        old,
      ),
      // A tenant whose task rows are all gone still has its old rollups swept.
      env.DB.prepare(
        "INSERT INTO rollups (tenant, res, at, queue, enqueued, completed, failed, cancelled, retried) VALUES (?, 'h', ?, 'q', 1, 0, 0, 0, 0)",
      ).bind(`${tenant}-gone`, old),
    ]);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "7 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM tasks WHERE tenant = ?").bind(tenant).first("n")).toBe(0);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM task_events WHERE tenant = ?").bind(tenant).first("n")).toBe(0);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM task_text WHERE task_text MATCH 'fossil'").first("n")).toBe(0);
    expect(
      (await env.DB.prepare("SELECT res FROM rollups WHERE tenant = ? ORDER BY res").bind(tenant).all<{ res: string }>()).results.map(
        (r) => r.res,
      ),
    ).toEqual(["h", "m"]);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM rollup_hist WHERE tenant = ?").bind(tenant).first("n")).toBe(0);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM rollups WHERE tenant = ?").bind(`${tenant}-gone`).first("n")).toBe(0);
  });
});

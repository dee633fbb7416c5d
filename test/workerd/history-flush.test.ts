import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { planHistory } from "../../durable/core/timeline";
import { planStatements, writeHistory } from "../../durable/history";
import { unavailableD1 } from "../../durable/flusher";
import { rollupStatements } from "../../durable/rollups";
import type { QueueShard } from "../../durable/queue-shard";
import { api, flushHistory, freshQueue, shardStub, storedAlarm, tenantApi } from "./helpers";

/**
 * Shards drain their outbox into D1 history: in order, exactly once, through
 * D1 outages, with bad rows set aside. Each test works in a tenant of its own
 * and reads D1 directly.
 */

const fresh = () => `hf-${crypto.randomUUID().slice(0, 8)}`;

async function inShard<T>(tenant: string, queue: string, fn: (i: QueueShard, state: DurableObjectState) => T | Promise<T>) {
  const { shardOf } = await import("../../durable/queue-shard");
  return runInDurableObject(shardOf(env, tenant, queue, 0), fn);
}

const outboxRows = (tenant: string, queue: string) =>
  inShard(tenant, queue, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox").one().n);

/** Every timeline event D1 holds for the tenant, by task, oldest first. */
async function timelines(tenant: string) {
  const rows = (
    await env.DB.prepare("SELECT task_id, seq, events FROM task_events WHERE tenant = ? ORDER BY task_id, seq")
      .bind(tenant)
      .all<{ task_id: string; events: string }>()
  ).results;
  const out = new Map<string, string[]>();
  for (const r of rows)
    out.set(r.task_id, [...(out.get(r.task_id) ?? []), ...(JSON.parse(r.events) as { type: string }[]).map((e) => e.type)]);
  return out;
}

const historyRows = async (tenant: string) =>
  (
    await env.DB.prepare("SELECT id, status, version FROM tasks WHERE tenant = ? ORDER BY id")
      .bind(tenant)
      .all<{ id: string; status: string; version: number }>()
  ).results;

/** Enqueues `n` tasks in batches of 10, then leases and completes them all in batches: the load shape of a busy queue. */
async function load(call: Awaited<ReturnType<typeof tenantApi>>, queue: string, n: number) {
  for (let i = 0; i < n; i += 10) {
    const res = await call("POST", `/api/v1/queues/${queue}/tasks/batch`, {
      tasks: Array.from({ length: 10 }, (_, j) => ({ name: "job", payload: { n: i + j } })),
    });
    expect(res.status).toBe(201);
  }
  for (let done = 0; done < n;) {
    const leases = (await call("POST", `/api/v1/queues/${queue}/leases`, { workerId: "w", max: 7 })).body.leases as {
      task: { id: string };
      leaseToken: string;
    }[];
    const res = await call("POST", "/api/v1/leases/complete", { items: leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })) });
    expect(res.status).toBe(200);
    done += leases.length;
  }
}

describe("outbox to D1", () => {
  it("every event lands once, in order, and the outbox is emptied", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    await load(call, "q", 30);
    expect(await outboxRows(tenant, "q")).toBeGreaterThan(0);
    await flushHistory("q", 0, tenant);
    expect(await outboxRows(tenant, "q")).toBe(0);
    const lines = await timelines(tenant);
    expect(lines.size).toBe(30);
    for (const [, types] of lines) expect(types).toEqual(["enqueued", "started", "completed"]);
    const rows = await historyRows(tenant);
    expect(rows.map((r) => r.status)).toEqual(Array(30).fill("completed"));
    // A flush with nothing new writes nothing.
    await flushHistory("q", 0, tenant);
    expect(await timelines(tenant)).toEqual(lines);
  });

  it("each later flush moves a task's row forward, with a version that only grows", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    const id = (await call("POST", "/api/v1/queues/q/tasks", { name: "steps" })).body.id;
    const seen: { status: string; version: number }[] = [];
    const step = async () => {
      await flushHistory("q", 0, tenant);
      const [row] = await historyRows(tenant);
      seen.push({ status: row.status, version: row.version });
    };
    await step();
    const l = (await call("POST", "/api/v1/queues/q/leases", { workerId: "w", max: 1 })).body.leases[0];
    await step();
    await call("POST", `/api/v1/tasks/${id}/complete`, { leaseToken: l.leaseToken });
    await step();
    expect(seen.map((s) => s.status)).toEqual(["pending", "running", "completed"]);
    expect(seen[1].version).toBeGreaterThan(seen[0].version);
    expect(seen[2].version).toBeGreaterThan(seen[1].version);
    expect((await timelines(tenant)).get(id)).toEqual(["enqueued", "started", "completed"]);
  });

  it("a task made and finished within one flush is written once: six D1 rows for its whole life", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    await load(call, "q", 10);
    await flushHistory("q", 0, tenant);
    const stats = await inShard(tenant, "q", (i) => i.stats());
    if (!stats.ok) throw new Error("stats failed");
    // Per task: its row, three index entries (status, queue, finished), its FTS text, its events row; plus one counter row per flush.
    // Plus the analytics rollups, a few rows per flush whatever the number of tasks (test/workerd/analytics.test.ts).
    expect(stats.value.history.rowsWritten - stats.value.history.rollupRows).toBe(10 * 6 + 1);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM task_events WHERE tenant = ?").bind(tenant).first<{ n: number }>())!.n).toBe(
      10,
    );
  });

  it("a batch sent again (D1 took it, the answer was lost) changes nothing", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    await load(call, "q", 20);
    const plan = await inShard(tenant, "q", (i) =>
      planHistory((i as unknown as { engine: { outbox: { batch(n: number): never } } }).engine.outbox.batch(5000)),
    );
    const first = await writeHistory(env.DB, tenant, "q:0", plan);
    const before = { rows: await historyRows(tenant), lines: await timelines(tenant) };
    const again = await writeHistory(env.DB, tenant, "q:0", plan);
    expect(first.rowsWritten).toBeGreaterThan(20);
    expect(again.rowsWritten).toBe(2); // the doc counter and the rollup ledger only: no task, event, text or rollup row twice
    expect(first.rollupRows).toBeGreaterThan(0);
    expect({ rows: await historyRows(tenant), lines: await timelines(tenant) }).toEqual(before);
    const texts = await env.DB.prepare(
      "SELECT count(*) AS n FROM task_text WHERE task_text MATCH 'job' AND id IN (SELECT id FROM tasks WHERE tenant = ?)",
    )
      .bind(tenant)
      .first<{ n: number }>();
    expect(texts!.n).toBe(20);
  });

  it("a flush of many tasks goes to D1 in slices; one cut off after its first slice lands whole when sent again", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    for (let i = 0; i < 1200; i += 100) {
      await call("POST", "/api/v1/queues/q/tasks/batch", {
        tasks: Array.from({ length: 100 }, (_, j) => ({ name: "sliced", payload: { n: i + j } })),
      });
    }
    const plan = await inShard(tenant, "q", (i) =>
      planHistory((i as unknown as { engine: { outbox: { batch(n: number): never } } }).engine.outbox.batch(5000)),
    );
    let calls = 0;
    const cutOff = new Proxy(env.DB, {
      get: (db, key) =>
        key === "batch"
          ? (statements: D1PreparedStatement[]) => {
              if (++calls > 1) throw new Error("D1_ERROR: Network connection lost.");
              return db.batch(statements);
            }
          : Reflect.get(db, key).bind(db),
    });
    await expect(writeHistory(cutOff, tenant, "q:0", plan)).rejects.toThrow(/unavailable/);
    const landed = (await historyRows(tenant)).length;
    expect(landed).toBeGreaterThan(0); // the first slice
    expect(landed).toBeLessThan(1200); // and no more
    let slices = 0;
    const counted = new Proxy(env.DB, {
      get: (db, key) => (key === "batch" ? (st: D1PreparedStatement[]) => (slices++, db.batch(st)) : Reflect.get(db, key).bind(db)),
    });
    await writeHistory(counted, tenant, "q:0", plan);
    expect(slices).toBeGreaterThan(1);
    expect((await historyRows(tenant)).length).toBe(1200);
    expect([...(await timelines(tenant)).values()].every((types) => types.join() === "enqueued")).toBe(true);
    const texts = await env.DB.prepare(
      "SELECT count(*) AS n FROM task_text WHERE task_text MATCH 'sliced' AND id IN (SELECT id FROM tasks WHERE tenant = ?)",
    )
      .bind(tenant)
      .first<{ n: number }>();
    expect(texts!.n).toBe(1200); // the first slice's text not written twice
  });

  it("D1 down during enqueue and completion load: history waits, then has every event exactly once", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    await inShard(tenant, "q", (i) => {
      i.faults.d1 = unavailableD1;
    });
    await load(call, "q", 40);
    await flushHistory("q", 0, tenant);
    await load(call, "q", 20);
    await flushHistory("q", 0, tenant);
    const down = await inShard(tenant, "q", (i) => i.stats());
    if (!down.ok) throw new Error("stats failed");
    expect(down.value.history.failing).toBe(2);
    expect(down.value.history.waitingSince).not.toBeNull();
    expect(await historyRows(tenant)).toEqual([]);
    // The API goes on meanwhile: the live task is there.
    const some = (await call("GET", "/api/v1/queues/q/tasks?limit=1")).body.items[0];
    expect((await call("GET", `/api/v1/tasks/${some.id}`)).status).toBe(200);
    // Back up: the next flush (the alarm's, after its backoff) sends everything once.
    await inShard(tenant, "q", (i) => {
      i.faults.d1 = null;
    });
    await flushHistory("q", 0, tenant);
    const lines = await timelines(tenant);
    const whole = [...lines.values()].filter((t) => t.join() === "enqueued,started,completed").length;
    const repeated = [...lines.values()].filter((t) => new Set(t).size < t.length).length;
    console.log(
      `edgeq-faults ${JSON.stringify({ name: "d1-down", injected: down.value.history.failing, lost: 60 - whole - repeated, duplicated: repeated, checked: 60 })}`,
    );
    expect(lines.size).toBe(60);
    for (const [, types] of lines) expect(types).toEqual(["enqueued", "started", "completed"]);
    expect((await historyRows(tenant)).every((r) => r.status === "completed")).toBe(true);
    expect(await outboxRows(tenant, "q")).toBe(0);
    const up = await inShard(tenant, "q", (i) => i.stats());
    if (!up.ok) throw new Error("stats failed");
    expect(up.value.history).toMatchObject({ failing: 0, dead: 0, waitingSince: null });
  });

  it("a row D1 refuses goes to the dead-letter table with its reason; the rows around it land; /metrics counts it", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    // D1 itself refuses this one row (a trigger), while it takes every other.
    await env.DB.prepare(
      `CREATE TRIGGER refuse_${tenant.replaceAll("-", "_")} BEFORE INSERT ON tasks WHEN new.tenant = '${tenant}' AND new.name = 'poison' BEGIN SELECT RAISE(ABORT, 'this row is refused'); END`,
    ).run();
    try {
      await call("POST", "/api/v1/queues/q/tasks/batch", {
        tasks: [{ name: "good" }, { name: "poison" }, { name: "good" }, { name: "good" }],
      });
      await flushHistory("q", 0, tenant);
      const rows = await env.DB.prepare("SELECT name FROM tasks WHERE tenant = ?").bind(tenant).all<{ name: string }>();
      expect(rows.results.map((r) => r.name)).toEqual(["good", "good", "good"]);
      expect(await outboxRows(tenant, "q")).toBe(0);
      const dead = await inShard(tenant, "q", (_i, state) =>
        state.storage.sql.exec<{ reason: string; body: string }>("SELECT reason, body FROM history_dead").toArray(),
      );
      expect(dead).toHaveLength(1);
      expect(dead[0].reason).toMatch(/D1 refused the row: .*this row is refused/);
      expect(dead[0].body).toContain("poison");
      // The flush was one D1 batch until the refusal; sent again the careful way, its rollups count the batch once.
      const enqueued = (res: string) =>
        env.DB.prepare("SELECT sum(enqueued) AS n FROM rollups WHERE tenant = ? AND res = ? AND queue = 'q'")
          .bind(tenant, res)
          .first<{ n: number }>();
      expect((await enqueued("m"))!.n).toBe(4);
      const metrics = await call("GET", "/metrics");
      expect(metrics.body).toMatch(/edgeq_history_dead_rows\{queue="q"\} 1/);
      // Later rows are not held up by it.
      await call("POST", "/api/v1/queues/q/tasks", { name: "after" });
      await flushHistory("q", 0, tenant);
      expect((await env.DB.prepare("SELECT count(*) AS n FROM tasks WHERE tenant = ?").bind(tenant).first<{ n: number }>())!.n).toBe(4);
    } finally {
      await env.DB.prepare(`DROP TRIGGER refuse_${tenant.replaceAll("-", "_")}`).run();
    }
  });

  it("a passing D1 failure (the probe answers, the error is not about the rows) sets nothing aside: the batch is sent again later", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    await call("POST", "/api/v1/queues/q/tasks/batch", { tasks: [{ name: "one" }, { name: "two" }] });
    // D1 answers the probe but fails the batch, as an overloaded or restarting database does.
    await inShard(tenant, "q", (i) => {
      const failing = {
        prepare: (sql: string) => env.DB.prepare(sql),
        batch: async () => {
          throw new Error("D1_ERROR: Network connection lost.");
        },
      };
      i.faults.d1 = failing as unknown as D1Database;
    });
    await flushHistory("q", 0, tenant);
    const stats = await inShard(tenant, "q", (i) => i.stats());
    if (!stats.ok) throw new Error("stats failed");
    expect(stats.value.history).toMatchObject({ dead: 0, failing: 1 });
    expect(await outboxRows(tenant, "q")).toBeGreaterThan(0);
    await inShard(tenant, "q", (i) => {
      i.faults.d1 = null;
    });
    await flushHistory("q", 0, tenant);
    expect((await historyRows(tenant)).length).toBe(2);
  });

  it("a task deleted by hand leaves history: row, timeline and text", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    const made = await call("POST", "/api/v1/queues/q/tasks", { name: "secret", payload: { card: "4111-1111" }, maxAttempts: 1 });
    await call("POST", `/api/v1/tasks/${made.body.id}/cancel`);
    await flushHistory("q", 0, tenant);
    expect((await call("GET", "/api/v1/tasks?q=4111")).body.items).toHaveLength(1);
    expect((await call("DELETE", `/api/v1/tasks/${made.body.id}`)).status).toBe(204);
    await flushHistory("q", 0, tenant);
    expect(await historyRows(tenant)).toEqual([]);
    expect((await timelines(tenant)).size).toBe(0);
    expect((await call("GET", "/api/v1/tasks?q=4111")).body.items).toEqual([]);
    const text = await env.DB.prepare("SELECT count(*) AS n FROM task_text WHERE id = ?").bind(made.body.id).first<{ n: number }>();
    expect(text!.n).toBe(0);
    expect((await call("GET", `/api/v1/tasks/${made.body.id}/events`)).status).toBe(404);
  });

  it("every flush statement finds tasks by primary key (or rowid), never by scanning a table", async () => {
    const tenant = fresh();
    const call = await tenantApi(tenant);
    const made = await call("POST", "/api/v1/queues/q/tasks/batch", {
      tasks: [{ name: "a" }, { name: "b" }, { name: "c", maxAttempts: 1 }],
    });
    await flushHistory("q", 0, tenant);
    const l = (await call("POST", "/api/v1/queues/q/leases", { workerId: "w", max: 1 })).body.leases[0];
    await call("POST", `/api/v1/tasks/${l.task.id}/heartbeat`, { leaseToken: l.leaseToken, progress: 5 });
    await call("POST", `/api/v1/tasks/${l.task.id}/complete`, { leaseToken: l.leaseToken });
    await call("POST", `/api/v1/tasks/${made.body.tasks[2].id}/cancel`);
    await call("DELETE", `/api/v1/tasks/${made.body.tasks[2].id}`);
    await call("POST", "/api/v1/queues/q/tasks", { name: "d" });
    const plan = await inShard(tenant, "q", (i) =>
      planHistory((i as unknown as { engine: { outbox: { batch(n: number): never } } }).engine.outbox.batch(5000)),
    );
    const captured: { sql: string; params: unknown[] }[] = [];
    const recorder = {
      prepare: (sql: string) => ({ bind: (...params: unknown[]) => captured.push({ sql, params }) }),
    } as unknown as D1Database;
    planStatements(recorder, tenant, plan);
    rollupStatements(recorder, tenant, "q:0", plan);
    // What each statement writes, past the WITH that reads its JSON parameter.
    const kinds = captured.map((c) => /(INSERT INTO|DELETE FROM|UPDATE) \w+/.exec(c.sql)?.[0]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        "INSERT INTO tasks",
        "INSERT INTO task_text",
        "INSERT INTO task_events",
        "DELETE FROM tasks",
        "INSERT INTO rollups",
        "INSERT INTO rollup_hist",
        "INSERT INTO rollup_ledger",
      ]),
    );
    expect(kinds.filter((k) => k === "INSERT INTO tasks").length).toBe(2); // the new task; the changes of one made before
    for (const { sql, params } of captured) {
      const steps = (
        await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .bind(...params)
          .all<{ detail: string }>()
      ).results.map((r) => r.detail);
      for (const step of steps)
        expect(step, sql).not.toMatch(
          /^SCAN (t|tasks|task_events|rollups|rollup_hist|rollup_ledger|hist_bins)\b|SEARCH (t|tasks|task_events) USING PRIMARY KEY \(tenant=\?\)$/,
        );
    }
  });

  it("the alarm is set for the flush interval after the first waiting event, and flushes", async () => {
    const q = freshQueue("hf");
    const made = await api("POST", `/api/v1/queues/${q}/tasks`, { name: "by-alarm", payload: { word: "zanzibar" } });
    // The workerd tests run with EDGEQ_HISTORY_FLUSH_MS=60000 (the default is 1000).
    const waitingSince = await runInDurableObject(
      shardStub(q),
      (_i, state) => state.storage.sql.exec<{ at: number }>("SELECT min(at) AS at FROM outbox").one().at,
    );
    // the event is stamped when its transaction commits, a moment after the task's createdAt
    expect(waitingSince - Date.parse(made.body.createdAt)).toBeGreaterThanOrEqual(0);
    expect(waitingSince - Date.parse(made.body.createdAt)).toBeLessThan(1000);
    expect(await storedAlarm(q)).toBe(waitingSince + 60_000);
    expect((await api("GET", `/api/v1/tasks?queue=${q}`)).body.items).toEqual([]);
    await runDurableObjectAlarm(shardStub(q));
    expect((await api("GET", `/api/v1/tasks?queue=${q}`)).body.items.map((t: { id: string }) => t.id)).toEqual([made.body.id]);
    expect(
      await runInDurableObject(
        shardStub(q),
        (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox").one().n,
      ),
    ).toBe(0);
    expect(await storedAlarm(q)).toBeNull(); // nothing left to do
  });
});

import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { QueueRegistry } from "../../durable/queue-registry";
import { api, expectProblem, freshQueue } from "./helpers";

const registry = (tenant = "default") => env.QUEUE_REGISTRY.get(env.QUEUE_REGISTRY.idFromName(tenant));
type Api = typeof api;
const tasksOf = async (q: string, call: Api = api) =>
  (await call("GET", `/api/v1/queues/${q}/tasks?limit=1000`)).body.items as { id: string; idempotencyKey: string; status: string }[];

/** A fixed time ten days ahead, on a whole second plus a little: far enough that no real alarm of these tests fires on its own. */
const T0 = Math.floor((Date.now() + 10 * 86_400_000) / 1000) * 1000 + 250;

/**
 * A fresh tenant (its own registry) whose schedule clock reads `start`; `at(t)`
 * moves that clock to `t` and runs the registry's alarm, as if the time had come.
 */
async function tenantAt(start: number) {
  const tenant = freshQueue("tenant");
  const key = (await api("POST", "/api/v1/keys", { role: "admin", name: "sched", tenant })).body.key as string;
  const stub = registry(tenant);
  const setClock = (t: number) =>
    runInDurableObject(stub, (r: QueueRegistry) => {
      r.clock = { now: () => t };
    });
  await setClock(start);
  return {
    api: ((method, path, body, headers = {}) => api(method, path, body, { authorization: `Bearer ${key}`, ...headers })) as Api,
    alarmAt: () => runInDurableObject(stub, (_r: QueueRegistry, state) => state.storage.getAlarm()),
    async at(t: number) {
      await setClock(t);
      await runInDurableObject(stub, (r: QueueRegistry) => r.alarm()); // the alarm handler itself, awaited
    },
  };
}

describe("schedules", () => {
  it("an every-second cron fires once per second, with no duplicates", async () => {
    const t = await tenantAt(T0);
    const q = freshQueue("cron");
    const made = await t.api("POST", `/api/v1/queues/${q}/schedules`, {
      id: "tick",
      cron: "* * * * * *",
      task: { name: "tick", payload: { n: 1 } },
    });
    expect(made.status).toBe(201);
    const first = Math.ceil((T0 + 1) / 1000) * 1000; // the first second after creation
    expect(Date.parse(made.body.nextRuns[0])).toBe(first);
    expect(await t.alarmAt()).toBe(first); // the registry's alarm is set for it
    for (let i = 0; i < 3; i++) {
      await t.at(first + i * 1000);
      await t.at(first + i * 1000); // an alarm run twice for the same second fires once
    }
    const paused = (await t.api("POST", `/api/v1/queues/${q}/schedules/tick/pause`)).body;
    expect(paused).toMatchObject({ paused: true, nextRuns: [], fired: 3 });
    const tasks = await tasksOf(q, t.api);
    const fireTimes = tasks.map((x) => Number(x.idempotencyKey.split(":")[2])).sort((a, b) => a - b);
    expect(fireTimes).toEqual([first, first + 1000, first + 2000]);
    expect(Date.parse(paused.lastFireAt)).toBe(first + 2000);
  });

  it("shows the next five fire times in its time zone; pause, resume, run now and delete", async () => {
    const q = freshQueue("cron");
    const body = { id: "nightly", cron: "30 2 * * *", timezone: "Europe/Berlin", task: { name: "report", priority: 8 }, overlap: "skip" };
    const { status, body: s } = await api("POST", `/api/v1/queues/${q}/schedules`, body);
    expect(status).toBe(201);
    expect(s).toMatchObject({
      id: "nightly",
      queue: q,
      timezone: "Europe/Berlin",
      overlap: "skip",
      paused: false,
      fired: 0,
      task: { name: "report", priority: 8, payload: null },
    });
    expect(s.nextRuns).toHaveLength(5);
    for (const t of s.nextRuns)
      expect(new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Berlin", timeStyle: "short" }).format(new Date(t))).toMatch(
        /^0[23]:[03]0$/,
      );
    expect((await api("POST", `/api/v1/queues/${q}/schedules`, { ...body, cron: "0 3 * * *" })).status).toBe(200); // replaced
    expect((await api("GET", `/api/v1/queues/${q}/schedules`)).body.items.map((x: { cron: string }) => x.cron)).toEqual(["0 3 * * *"]);

    const run = await api("POST", `/api/v1/queues/${q}/schedules/nightly/run`);
    expect(run.status).toBe(201);
    expect(run.body).toMatchObject({ name: "report", priority: 8, status: "pending" });
    expect((await api("POST", `/api/v1/queues/${q}/schedules/nightly/pause`)).body.paused).toBe(true);
    const resumed = (await api("POST", `/api/v1/queues/${q}/schedules/nightly/resume`)).body;
    expect(resumed).toMatchObject({ paused: false, fired: 1, lastTaskId: run.body.id });
    expect(resumed.nextRuns).toHaveLength(5);
    expect((await api("DELETE", `/api/v1/queues/${q}/schedules/nightly`)).status).toBe(204);
    expectProblem(await api("GET", `/api/v1/queues/${q}/schedules/nightly`), 404, "not_found");
    expectProblem(await api("POST", `/api/v1/queues/${q}/schedules/nightly/run`), 404, "not_found");
  });

  it("invalid cron, time zone or task → 400 problem+json, and nothing is stored", async () => {
    const q = freshQueue("cron");
    const bad = await api("POST", `/api/v1/queues/${q}/schedules`, { id: "x", cron: "every day", task: { name: "t" } });
    expectProblem(bad, 400, "validation_failed");
    expect(bad.body.errors[0].pointer).toBe("/cron");
    const zone = await api("POST", `/api/v1/queues/${q}/schedules`, {
      id: "x",
      cron: "* * * * *",
      timezone: "Mars/Olympus",
      task: { name: "t" },
    });
    expectProblem(zone, 400, "validation_failed");
    expect(zone.body.errors[0].pointer).toBe("/timezone");
    expectProblem(
      await api("POST", `/api/v1/queues/${q}/schedules`, { id: "x", cron: "* * * * *", task: { name: "t", priority: 11 } }),
      400,
      "validation_failed",
    );
    expect((await api("GET", `/api/v1/queues/${q}/schedules`)).body.items).toEqual([]);
  });

  it("overlap skip: no new run while the previous one has not finished", async () => {
    const t = await tenantAt(T0);
    const q = freshQueue("cron");
    await t.api("POST", `/api/v1/queues/${q}/schedules`, { id: "s", cron: "* * * * * *", task: { name: "slow" }, overlap: "skip" });
    const first = Math.ceil((T0 + 1) / 1000) * 1000;
    await t.at(first);
    expect(await tasksOf(q, t.api)).toHaveLength(1);
    await t.at(first + 1000);
    await t.at(first + 2000); // two more fires come and are skipped
    expect(await tasksOf(q, t.api)).toHaveLength(1);
    expect((await t.api("GET", `/api/v1/queues/${q}/schedules/s`)).body.skipped).toBe(2);
    const [lease] = (await t.api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 1 })).body.leases;
    expect((await t.api("POST", `/api/v1/tasks/${lease.task.id}/complete`, { leaseToken: lease.leaseToken })).status).toBe(200);
    await t.at(first + 3000); // finished: the next fire runs
    expect(await tasksOf(q, t.api)).toHaveLength(2);
  });

  it("a fire retried after a crash meets the task it made; after downtime, one catch-up run", async () => {
    const q = freshQueue("cron");
    await api("POST", `/api/v1/queues/${q}/schedules`, { id: "m", cron: "0 * * * *", task: { name: "hourly" } });
    const stub = registry();
    const before = await runInDurableObject(stub, (r: QueueRegistry) => r.schedule(q, "m")!);
    // Five hours of downtime: the alarm then fires once, for the latest missed hour.
    await runInDurableObject(stub, (r: QueueRegistry) => {
      r.clock = { now: () => before.nextAt! + 5 * 3600_000 + 60_000 };
    });
    await runDurableObjectAlarm(stub);
    const after = await runInDurableObject(stub, (r: QueueRegistry) => r.schedule(q, "m")!);
    expect(after).toMatchObject({ fired: 1, skipped: 5, lastFireAt: before.nextAt! + 5 * 3600_000, nextAt: before.nextAt! + 6 * 3600_000 });
    // The crash: the fire's task was made but the schedule row kept its old next time. The retried fire makes no second task.
    await runInDurableObject(stub, (_r: QueueRegistry, state) => {
      state.storage.sql.exec("UPDATE schedules SET next_at = ?, fired = 0 WHERE queue = ? AND id = 'm'", before.nextAt, q);
      void state.storage.setAlarm(Date.now());
    });
    await runDurableObjectAlarm(stub);
    const tasks = await tasksOf(q);
    expect(tasks).toHaveLength(1);
    expect(tasks[0].idempotencyKey).toBe(`schedule:m:${before.nextAt! + 5 * 3600_000}`);
    await runInDurableObject(stub, (r: QueueRegistry) => {
      r.clock = { now: () => Date.now() };
      r.deleteSchedule(q, "m");
    });
  });
});

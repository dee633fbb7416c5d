import { createExecutionContext, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FLOW, hubOf, type MetricsHub } from "../../durable/metrics-hub";
import worker from "../../worker/index";
import { ADMIN_TOKEN, api, expectProblem, freshQueue, tenantApi, until } from "./helpers";

/**
 * GET /api/v1/live: a WebSocket to the tenant's MetricsHub, fed by the shards'
 * pushes. Each test opens real sockets through the Worker and reads what arrives.
 */

type Message = { type: string; seq: number; [k: string]: any };

/** Runs `fn` with the hub's flow limits lowered, then puts them back. */
async function withFlow(flow: MetricsHub["flow"], fn: () => Promise<void>) {
  const set = (f: MetricsHub["flow"]) =>
    runInDurableObject(hubOf(env, "default"), (hub: MetricsHub) => {
      hub.flow = f;
    });
  await set(flow);
  try {
    await fn();
  } finally {
    await set({ ...FLOW });
  }
}

/** Opens a live socket as a client would; collects every message. */
async function connect(query = "", headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}` }) {
  const res = await worker.fetch(
    new Request(`http://edgeq.test/api/v1/live${query}`, { headers: { upgrade: "websocket", ...headers } }),
    env,
    createExecutionContext(),
  );
  if (res.status !== 101) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  const ws = res.webSocket!;
  const messages: Message[] = [];
  ws.addEventListener("message", (e) => messages.push(JSON.parse(e.data as string)));
  ws.accept();
  await until(async () => messages.some((m) => m.type === "snapshot"));
  return {
    messages,
    send: (m: unknown) => ws.send(JSON.stringify(m)),
    close: () => ws.close(1000, "done"),
    of: (type: string) => messages.filter((m) => m.type === type),
  };
}

/** The task changes heard, in order: from `task` messages and from `tasks` (several of one push). */
const tasksOf = (messages: Message[], id?: string) =>
  messages
    .flatMap((m) => (m.type === "task" ? [m.task] : m.type === "tasks" ? m.tasks : []))
    .filter((t) => id === undefined || t.id === id);

describe("live metrics over WebSockets", () => {
  it("a snapshot first; then enqueue and completion arrive in order, seq rising by one", async () => {
    const q = freshQueue("live");
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "before" });
    const live = await connect(`?queue=${q}`);
    expect(live.messages[0]).toMatchObject({
      type: "snapshot",
      seq: 1,
      queues: [{ name: q, counts: { pending: 1 } }],
      workers: { active: 0 },
    });
    expect(live.messages[0].rates).toMatchObject({ seconds: 60 });
    const made = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "job", priority: 9 })).body;
    const lease = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 1 })).body.leases[0];
    await api("POST", `/api/v1/tasks/${made.id}/complete`, { leaseToken: lease.leaseToken, result: { ok: 1 } });
    await until(async () => tasksOf(live.messages, made.id).some((t) => t.status === "completed"));
    expect(live.messages.map((m) => m.seq)).toEqual(live.messages.map((_, i) => i + 1));
    const statuses = tasksOf(live.messages, made.id).map((t) => t.status);
    expect(statuses[statuses.length - 1]).toBe("completed");
    expect(statuses.indexOf("pending") === -1 || statuses.indexOf("pending") < statuses.indexOf("completed")).toBe(true);
    expect(tasksOf(live.messages, made.id).at(-1)).toMatchObject({ id: made.id, queue: q, status: "completed", result: { ok: 1 } });
    const last = live.of("delta").at(-1)!;
    expect(last).toMatchObject({ queue: q, counts: { pending: 1, completed: 1 } });
    expect(JSON.stringify(live.messages)).not.toMatch(/leaseToken/);
    live.close();
  });

  it("a task subscription hears exactly that task: its status, progress and result", async () => {
    const q = freshQueue("live");
    const [a, b] = (await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "a", priority: 9 }, { name: "b" }] })).body
      .tasks;
    const live = await connect(`?task=${a.id}`);
    const leases = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 2 })).body.leases;
    const la = leases.find((l: { task: { id: string } }) => l.task.id === a.id);
    const lb = leases.find((l: { task: { id: string } }) => l.task.id === b.id);
    await api("POST", `/api/v1/tasks/${a.id}/heartbeat`, { leaseToken: la.leaseToken, progress: { pct: 40 } });
    await new Promise((r) => setTimeout(r, 80)); // a push of its own, not coalesced with the completion
    await api("POST", `/api/v1/tasks/${b.id}/complete`, { leaseToken: lb.leaseToken });
    await api("POST", `/api/v1/tasks/${a.id}/complete`, { leaseToken: la.leaseToken, result: "done" });
    await until(async () => tasksOf(live.messages).some((t) => t.status === "completed"));
    const heard = tasksOf(live.messages);
    expect(new Set(heard.map((t) => t.id))).toEqual(new Set([a.id]));
    expect(heard.some((t) => t.status === "running" && t.progress?.pct === 40)).toBe(true);
    expect(heard.at(-1)).toMatchObject({ status: "completed", result: "done" });
    expect(live.of("delta")).toEqual([]); // a task subscription hears no queue counts
    live.close();
  });

  it("a task leased and completed within one push window is still heard running, then completed, by its subscriber; a queue's listener hears the newest", async () => {
    const q = freshQueue("live");
    const made = (await api("POST", `/api/v1/queues/${q}/tasks`, { name: "quick" })).body;
    const live = await connect(`?task=${made.id}`);
    const queueLive = await connect(`?queue=${q}`);
    await new Promise((r) => setTimeout(r, 60)); // past the quiet shard's first push
    const [lease] = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 1 })).body.leases;
    await api("POST", `/api/v1/tasks/${made.id}/heartbeat`, { leaseToken: lease.leaseToken, progress: 10 });
    await api("POST", `/api/v1/tasks/${made.id}/heartbeat`, { leaseToken: lease.leaseToken, progress: 90 });
    await api("POST", `/api/v1/tasks/${made.id}/complete`, { leaseToken: lease.leaseToken, result: 1 });
    await until(async () => tasksOf(live.messages, made.id).some((t) => t.status === "completed"));
    await until(async () => tasksOf(queueLive.messages, made.id).some((t) => t.status === "completed"));
    live.close();
    queueLive.close();
    const heard = tasksOf(live.messages, made.id);
    // Every status, in order (the lease may have had a push of its own); within a push, a status's
    // changes coalesce to the newest progress.
    expect(heard.map((t) => t.status).filter((s, i, all) => i === 0 || all[i - 1] !== s)).toEqual(["running", "completed"]);
    expect(heard.filter((t) => t.status === "running").at(-1)!.progress).toBe(90);
    // The queue's listener hears the task at most once per message: its newest state then.
    const perMessage = queueLive.messages.map((m) => tasksOf([m], made.id).length);
    expect(Math.max(...perMessage)).toBe(1);
    expect(tasksOf(queueLive.messages, made.id).at(-1)!.status).toBe("completed");
  });

  it("queue filters keep queues apart; subscribe and unsubscribe change them", async () => {
    const [q1, q2] = [freshQueue("live"), freshQueue("live")];
    const live = await connect(`?queue=${q1}`);
    await api("POST", `/api/v1/queues/${q2}/tasks`, { name: "other" });
    await api("POST", `/api/v1/queues/${q1}/tasks`, { name: "mine" });
    await until(async () => live.of("delta").length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(new Set(live.of("delta").map((m) => m.queue))).toEqual(new Set([q1]));
    expect(new Set(tasksOf(live.messages).map((t) => t.queue))).toEqual(new Set([q1]));
    live.send({ type: "subscribe", queue: q2 });
    await until(async () => live.of("subscribed").length > 0);
    expect(live.of("subscribed")[0]).toMatchObject({ queues: [q1, q2] });
    await api("POST", `/api/v1/queues/${q2}/tasks`, { name: "now heard" });
    await until(async () => live.of("delta").some((m) => m.queue === q2));
    live.send({ type: "unsubscribe", queue: q1 });
    live.send({ type: "nonsense" });
    live.send("not json");
    await until(async () => live.of("error").length === 2);
    expect(live.messages.map((m) => m.seq)).toEqual(live.messages.map((_, i) => i + 1));
    live.close();
  });

  it("the tasks of one push come in one message: several as `tasks`, each with its own time", async () => {
    const q = freshQueue("live");
    const live = await connect(`?queue=${q}`);
    const made = (await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: Array.from({ length: 5 }, (_, i) => ({ name: `b${i}` })) }))
      .body.tasks as { id: string }[];
    await until(async () => tasksOf(live.messages).length === 5);
    const batch = live.of("tasks");
    expect(batch).toHaveLength(1); // one committed call, one push, one frame
    expect(batch[0].tasks.map((t: { id: string }) => t.id).sort()).toEqual(made.map((t) => t.id).sort());
    for (const t of batch[0].tasks) expect(t).toMatchObject({ queue: q, status: "pending", at: expect.stringMatching(/^\d{4}-/) });
    expect(live.messages.map((m) => m.seq)).toEqual(live.messages.map((_, i) => i + 1));
    live.close();
  });

  it("a push bigger than a frame comes as several `tasks` messages, none over 32 KiB of tasks", async () => {
    const q = freshQueue("live");
    const made = (
      await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: Array.from({ length: 20 }, (_, i) => ({ name: `r${i}` })) })
    ).body.tasks as { id: string }[];
    const leases = (await api("POST", `/api/v1/queues/${q}/leases`, { workerId: "w", max: 20 })).body.leases as {
      task: { id: string };
      leaseToken: string;
    }[];
    const live = await connect(`?queue=${q}`);
    const big = "x".repeat(3_000);
    await api("POST", "/api/v1/leases/complete", { items: leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken, result: big })) });
    await until(async () => tasksOf(live.messages).filter((t) => t.status === "completed").length === 20);
    const frames = live.of("tasks");
    expect(frames.length).toBeGreaterThanOrEqual(2); // 20 × 3 KB of results
    for (const f of frames) expect(JSON.stringify(f.tasks).length).toBeLessThanOrEqual(32 * 1024 + 3_200);
    expect(new Set(tasksOf(live.messages).map((t) => t.id))).toEqual(new Set(made.map((t) => t.id)));
    expect(tasksOf(live.messages).every((t) => t.result === big)).toBe(true);
    expect(live.messages.map((m) => m.seq)).toEqual(live.messages.map((_, i) => i + 1));
    live.close();
  });

  it("subscribing while changes stream in loses no subscription and repeats no seq", async () => {
    const q = freshQueue("live");
    const others = Array.from({ length: 8 }, () => freshQueue("live"));
    for (const o of others) await api("POST", `/api/v1/queues/${o}/tasks`, { name: "exists" }); // subscribing wakes their shards
    const live = await connect(`?queue=${q}`);
    const writes = (async () => {
      for (let i = 0; i < 10; i++) {
        await api("POST", `/api/v1/queues/${q}/tasks`, { name: `t${i}` });
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    for (const o of others) live.send({ type: "subscribe", queue: o });
    await writes;
    await until(
      async () => live.of("subscribed").length === others.length && tasksOf(live.messages).filter((t) => t.queue === q).length === 10,
    );
    expect(live.messages.map((m) => m.seq)).toEqual(live.messages.map((_, i) => i + 1));
    expect(new Set(live.of("subscribed").at(-1)!.queues)).toEqual(new Set([q, ...others]));
    live.close();
  });

  it("tenants never hear each other", async () => {
    const tenant = `live-${crypto.randomUUID().slice(0, 6)}`;
    const other = await tenantApi(tenant);
    const key = (await api("POST", "/api/v1/keys", { tenant, role: "read-only", name: "live" })).body.key;
    const q = freshQueue("live");
    // The same queue name in both tenants; each socket listens to that queue's tasks.
    const theirs = await connect(`?queue=${q}`, { authorization: `Bearer ${key}` });
    const mine = await connect(`?queue=${q}`);
    const ours = (await api("POST", `/api/v1/queues/${q}/tasks/batch`, { tasks: [{ name: "a" }, { name: "b" }] })).body.tasks.map(
      (t: { id: string }) => t.id,
    );
    const their = (await other("POST", `/api/v1/queues/${q}/tasks`, { name: "theirs" })).body.id;
    await until(async () => tasksOf(mine.messages).length >= 2 && tasksOf(theirs.messages).length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(new Set(tasksOf(mine.messages).map((t) => t.id))).toEqual(new Set(ours));
    expect(new Set(tasksOf(theirs.messages).map((t) => t.id))).toEqual(new Set([their]));
    expect(mine.of("delta").at(-1)!.counts).toEqual({ pending: 2 });
    expect(theirs.of("delta").at(-1)!.counts).toEqual({ pending: 1 });
    mine.close();
    theirs.close();
  });

  it("no credential, a bad one, or no upgrade: refused with a problem", async () => {
    const plain = await worker.fetch(
      new Request("http://edgeq.test/api/v1/live", { headers: { upgrade: "websocket" } }),
      env,
      createExecutionContext(),
    );
    expect(plain.status).toBe(401);
    const forged = await worker.fetch(
      new Request("http://edgeq.test/api/v1/live?token=eqlive_default.9999999999999.00000000000000000000000000000000", {
        headers: { upgrade: "websocket" },
      }),
      env,
      createExecutionContext(),
    );
    expect(forged.status).toBe(401);
    expectProblem(await api("GET", "/api/v1/live"), 426, "upgrade_required");
  });

  it("a browser opens it with a short-lived live token; the token opens nothing else", async () => {
    const made = await api("POST", "/api/v1/live/tokens");
    expect(made.status).toBe(201);
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
    const live = await connect(`?token=${made.body.token}`, {});
    expect(live.messages[0].type).toBe("snapshot");
    live.close();
    for (const path of ["/api/v1/queues", "/api/v1/queues/live", "/api/v1/workers/live"]) {
      const elsewhere = await api("GET", `${path}?token=${made.body.token}`, undefined, { authorization: "" });
      expect(elsewhere.status, path).toBe(401);
    }
  });

  it("a socket that does not read does not hold up the others; one that falls behind gets a notice, then a snapshot when it catches up", async () => {
    const q = freshQueue("live");
    await withFlow({ ...FLOW, lag: 5, rate: 1_000, windowMs: 60_000 }, async () => {
      // One socket never reads at all (its end is never accepted).
      const silent = await worker.fetch(
        new Request(`http://edgeq.test/api/v1/live?queue=${q}`, {
          headers: { upgrade: "websocket", authorization: `Bearer ${ADMIN_TOKEN}` },
        }),
        env,
        createExecutionContext(),
      );
      expect(silent.status).toBe(101);
      const reader = await connect(`?queue=${q}`);
      const lagging = await connect(`?queue=${q}`);
      reader.send({ type: "ack", seq: 1 });
      lagging.send({ type: "ack", seq: 1 });
      for (let i = 0; i < 8; i++) {
        await api("POST", `/api/v1/queues/${q}/tasks`, { name: `t${i}` });
        await new Promise((r) => setTimeout(r, 60)); // one push each
        const last = reader.messages.at(-1)!;
        reader.send({ type: "ack", seq: last.seq });
      }
      await until(async () => tasksOf(reader.messages).length === 8);
      // The reader, which acks, heard everything; the silent socket held up nothing.
      expect(reader.of("behind")).toEqual([]);
      // The socket that stopped acking was held back after 5 messages, with one notice.
      expect(lagging.of("behind")).toHaveLength(1);
      expect(tasksOf(lagging.messages).length).toBeLessThan(8);
      const heldAt = lagging.messages.length;
      await api("POST", `/api/v1/queues/${q}/tasks`, { name: "while behind" });
      await new Promise((r) => setTimeout(r, 100));
      expect(lagging.messages.length).toBe(heldAt); // nothing more while behind
      lagging.send({ type: "ack", seq: lagging.messages.at(-1)!.seq });
      await until(async () => lagging.of("snapshot").length === 2);
      expect(lagging.of("snapshot")[1].queues).toEqual([{ name: q, counts: { pending: 9 } }]);
      expect(lagging.messages.map((m) => m.seq)).toEqual(lagging.messages.map((_, i) => i + 1));
      reader.close();
      lagging.close();
    });
  });

  it("a tenant may hold a bounded number of sockets: one more is a 429 problem, and one closing makes room", async () => {
    const tenant = `live-${crypto.randomUUID().slice(0, 6)}`;
    const call = await tenantApi(tenant);
    const { token } = (await call("POST", "/api/v1/live/tokens")).body;
    const set = (sockets: number) =>
      runInDurableObject(hubOf(env, tenant), (hub: MetricsHub) => {
        hub.flow = { ...FLOW, sockets };
      });
    await set(2);
    const a = await connect(`?token=${token}`, {});
    const b = await connect(`?token=${token}`, {});
    const refused = await worker.fetch(
      new Request(`http://edgeq.test/api/v1/live?token=${token}`, { headers: { upgrade: "websocket" } }),
      env,
      createExecutionContext(),
    );
    expectProblem({ status: refused.status, headers: refused.headers, body: await refused.json() }, 429, "rate_limited");
    expect(refused.headers.get("retry-after")).toBe("30");
    a.close();
    await until(async () => (await runInDurableObject(hubOf(env, tenant), (_hub: MetricsHub, state) => state.getWebSockets().length)) < 2);
    const c = await connect(`?token=${token}`, {});
    await connect(""); // another tenant (the default one) is not counted against this one
    b.close();
    c.close();
  });

  it("a client that never acks gets a bounded number of messages per window, then a snapshot", async () => {
    const q = freshQueue("live");
    await withFlow({ ...FLOW, rate: 4, windowMs: 1_500 }, async () => {
      const live = await connect(`?queue=${q}`);
      for (let i = 0; i < 6; i++) {
        await api("POST", `/api/v1/queues/${q}/tasks`, { name: `t${i}` });
        await new Promise((r) => setTimeout(r, 60));
      }
      expect(live.of("behind")).toHaveLength(1);
      // Of the 13 that would have come (the snapshot, a delta and a task per push): the rate, the rest of the push that crossed it, the notice.
      expect(live.messages.length).toBeLessThanOrEqual(4 + 1 + 1);
      const held = live.messages.length;
      await api("POST", `/api/v1/queues/${q}/tasks`, { name: "still held" });
      await new Promise((r) => setTimeout(r, 100));
      expect(live.messages.length).toBe(held);
      await new Promise((r) => setTimeout(r, 1_500)); // the window passes
      await api("POST", `/api/v1/queues/${q}/tasks`, { name: "next window" });
      await until(async () => live.of("snapshot").length === 2);
      expect(live.of("snapshot")[1].queues).toEqual([{ name: q, counts: { pending: 8 } }]);
      live.close();
    });
  });

  it("sockets keep their subscriptions and sequence in their attachments, so a hub that forgot everything (as after hibernation) goes on", async () => {
    const q = freshQueue("live");
    const live = await connect(`?queue=${q}`);
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "one" });
    await until(async () => live.of("delta").length === 1);
    // What a hibernated object loses: everything held in memory.
    await runInDurableObject(hubOf(env, "default"), (hub: MetricsHub) => {
      const h = hub as unknown as {
        shardCounts: Map<string, unknown>;
        shardTotals: Map<string, unknown>;
        rates: unknown[];
        pushN: Map<string, number>;
      };
      h.shardCounts = new Map();
      h.shardTotals = new Map();
      h.rates = [];
      h.pushN = new Map();
    });
    await api("POST", `/api/v1/queues/${q}/tasks`, { name: "two" });
    await until(async () => tasksOf(live.messages).length === 2);
    expect(live.messages.map((m) => m.seq)).toEqual(live.messages.map((_, i) => i + 1));
    live.send({ type: "snapshot" });
    await until(async () => live.of("snapshot").length === 2 || live.of("error").length > 0);
    expect(live.of("error")[0]?.detail).toMatch(/At most one snapshot per 2 s/); // asked too soon after the first
    await new Promise((r) => setTimeout(r, 2_000));
    live.send({ type: "snapshot" });
    await until(async () => live.of("snapshot").length === 2);
    expect(live.of("snapshot")[1].queues).toEqual([{ name: q, counts: { pending: 2 } }]);
    live.close();
  });
});

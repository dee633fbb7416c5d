import { createExecutionContext, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { QueueShard } from "../../durable/queue-shard";
import worker from "../../worker/index";
import { ADMIN_TOKEN, advance, api, expectProblem, freshQueue, shardStub, until } from "./helpers";

/**
 * GET /api/v1/queues/{queue}/consume: a consumer's WebSocket to one shard. The
 * consumer grants credit, the shard pushes leases as tasks become ready, and
 * completions, failures, heartbeats and releases go as frames answered by ref.
 * Each test opens real sockets through the Worker.
 */

type Frame = { type: string; [k: string]: any };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function upgrade(queue: string, query: string, headers: Record<string, string> = admin) {
  return worker.fetch(
    new Request(`http://edgeq.test/api/v1/queues/${queue}/consume?${query}`, { headers: { upgrade: "websocket", ...headers } }),
    env,
    createExecutionContext(),
  );
}

/** Opens a consumer socket as a client would; collects every frame. */
async function consumer(queue: string, { workerId = "w1", shard = 0, headers = admin as Record<string, string>, query = "" } = {}) {
  const res = await upgrade(queue, `workerId=${workerId}&shard=${shard}${query}`, headers);
  if (res.status !== 101) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  const ws = res.webSocket!;
  const frames: Frame[] = [];
  let closedWith: number | null = null;
  ws.addEventListener("message", (e) => {
    frames.push(JSON.parse(e.data as string));
  });
  ws.addEventListener("close", (e) => {
    closedWith = e.code;
  });
  ws.accept();
  let ref = 0;
  const leases = () => frames.filter((f) => f.type === "leases").flatMap((f) => f.leases);
  return {
    frames,
    leases,
    closedWith: () => closedWith,
    send: (m: unknown) => ws.send(typeof m === "string" ? m : JSON.stringify(m)),
    close: () => ws.close(1000, "done"),
    /** sends a request frame and waits for its answer */
    async request(type: string, body: object = {}) {
      const r = ++ref;
      ws.send(JSON.stringify({ type, ref: r, ...body }));
      return until(async () => frames.find((f) => (f.type === "results" || f.type === "error") && f.ref === r));
    },
    /** waits until at least n leases have been pushed in all */
    waitLeases: (n: number) => until(async () => leases().length >= n && leases()),
  };
}

async function enqueue(queue: string, n: number, extra: object = {}) {
  const res = await api("POST", `/api/v1/queues/${queue}/tasks/batch`, {
    tasks: Array.from({ length: n }, (_, i) => ({ name: "t", payload: { i }, ...extra })),
  });
  expect(res.status).toBe(201);
  return (res.body.tasks as { id: string }[]).map((t) => t.id);
}

/** A consumer socket on a fresh queue, given `credit`, that has taken the queue's first task and waits with the rest. */
async function waitingConsumer(credit: number) {
  const queue = freshQueue("sock");
  await enqueue(queue, 1); // the queue exists
  const c = await consumer(queue);
  c.send({ type: "credit", credit });
  await c.waitLeases(1);
  return { queue, c };
}

const statusOf = async (id: string) => (await api("GET", `/api/v1/tasks/${id}`)).body.status as string;
const settle = () => new Promise((r) => setTimeout(r, 100));

describe("consumer sockets", () => {
  it("consumer socket: pushes a lease per credit as tasks become ready, and no more", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 1); // the queue exists; the task is there before the socket
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 2 });
    await c.waitLeases(1);
    await enqueue(queue, 3); // one more credit left: one of these is pushed, two stay pending
    const got = await c.waitLeases(2);
    await settle();
    expect(c.leases()).toHaveLength(2);
    expect(got[0]).toMatchObject({
      task: { queue, status: "running", attempts: 1 },
      leaseToken: expect.any(String),
      expiresAt: expect.any(String),
    });
    const counts = (await api("GET", `/api/v1/queues/${queue}`)).body.counts;
    expect(counts).toMatchObject({ running: 2, pending: 2 });
    c.close();
  });

  it("consumer socket: tasks enqueued while a consumer waits are leased in the enqueue's own transaction, each row written once", async () => {
    const { queue, c } = await waitingConsumer(10);
    const rowsWritten = async () => (await api("GET", `/api/v1/queues/${queue}`)).body.shards[0].rowsWritten as number;
    const before = await rowsWritten();
    const ids = await enqueue(queue, 5);
    const pushed = await c.waitLeases(6);
    expect(pushed.slice(1).map((l: { task: { id: string } }) => l.task.id)).toEqual(ids); // in order, in one push
    expect(c.frames.filter((f) => f.type === "leases")).toHaveLength(2);
    // 5 task rows (written as running), the call's outbox row and its leases row: not 5 × 3 (pending, its ready entry, running) + 3.
    expect((await rowsWritten()) - before).toBe(5 + 2);
    for (const id of ids) expect(await statusOf(id)).toBe("running");
    c.close();
  });

  it("consumer socket: the enqueue's answer shows a task handed at once as it stands, running for its consumer (no token)", async () => {
    const { queue, c } = await waitingConsumer(2);
    const made = await api("POST", `/api/v1/queues/${queue}/tasks/batch`, {
      tasks: [{ name: "a", idempotencyKey: "k" }, { name: "b" }, { name: "a again", idempotencyKey: "k" }],
    });
    expect(made.status).toBe(201);
    // One credit was left: the first is handed at once, the second waits; the third is the first again, as it stands.
    expect(made.body.tasks).toMatchObject([
      { name: "a", status: "running", attempts: 1, workerId: "w1", expiresAt: expect.any(String), startedAt: expect.any(String) },
      { name: "b", status: "pending", attempts: 0, workerId: null, expiresAt: null },
      { id: made.body.tasks[0].id, name: "a", status: "running", workerId: "w1" },
    ]);
    expect(made.body.tasks[0]).not.toHaveProperty("leaseToken");
    expect((await c.waitLeases(2))[1].task.id).toBe(made.body.tasks[0].id);
    c.close();
  });

  it("consumer socket: a task handed at once to a socket gone before it could be told goes back, and the enqueue answers it pending", async () => {
    const { queue, c } = await waitingConsumer(5);
    // The socket is gone, and its close has not reached the shard yet: a send throws.
    await runInDurableObject(shardStub(queue), (_i, state) => {
      for (const ws of state.getWebSockets()) {
        ws.send = () => {
          throw new Error("gone");
        };
      }
    });
    const made = await api("POST", `/api/v1/queues/${queue}/tasks/batch`, { tasks: [{ name: "a" }] });
    expect(made.body.tasks[0]).toMatchObject({ status: "pending", attempts: 0, workerId: null, expiresAt: null });
    expect((await api("GET", `/api/v1/tasks/${made.body.tasks[0].id}`)).body).toMatchObject({ status: "pending", attempts: 0 });
    c.close();
  });

  it("consumer socket: a delayed task and a failed task's retry are pushed when they come due, not before", async () => {
    const queue = freshQueue("sock");
    // The retry's delay is drawn up to an hour (full jitter); each task's runAt says when it comes due.
    await enqueue(queue, 1, { backoff: { baseMs: 3_600_000, factor: 1, maxMs: 3_600_000 } });
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 5 });
    const [first] = await c.waitLeases(1);
    const [later] = await enqueue(queue, 1, { delayMs: 2000 });
    await c.request("fail", { items: [{ id: first.task.id, leaseToken: first.leaseToken, error: { message: "no" } }] });
    await settle();
    expect(c.leases()).toHaveLength(1); // nothing pending: both wait
    const runAt = async (id: string) => Date.parse((await api("GET", `/api/v1/tasks/${id}`)).body.runAt);
    const due = [
      { id: later, attempts: 1, at: await runAt(later) },
      { id: first.task.id, attempts: 2, at: await runAt(first.task.id) },
    ].sort((a, b) => a.at - b.at);
    let offset = 0; // how far the shard's clock has been moved on
    for (const [i, task] of due.entries()) {
      const step = task.at - (Date.now() + offset) + 100;
      if (step > 0) {
        await advance(queue, step);
        offset += step;
      }
      const pushed = (await c.waitLeases(2 + i))[1 + i];
      expect(pushed.task).toMatchObject({ id: task.id, attempts: task.attempts });
      await settle();
      expect(c.leases()).toHaveLength(2 + i); // the other is not due yet
      // Done, so its lease does not run out (and come back) while the clock moves on.
      await c.request("complete", { items: [{ id: task.id, leaseToken: pushed.leaseToken }] });
    }
    c.close();
  });

  it("consumer socket: complete answers per item by ref, and its credit brings the next lease in the same round trip", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 2);
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 1 });
    const [first] = await c.waitLeases(1);
    const answer = await c.request("complete", {
      items: [{ id: first.task.id, leaseToken: first.leaseToken, result: { ok: 1 } }],
      credit: 1,
    });
    expect(answer).toMatchObject({ type: "results", results: [{ id: first.task.id, ok: true }] });
    const second = (await c.waitLeases(2))[1];
    expect(second.task.id).not.toBe(first.task.id);
    // The answer comes before the lease its credit brought.
    expect(c.frames.findIndex((f) => f.type === "results")).toBeLessThan(c.frames.findLastIndex((f) => f.type === "leases"));
    const done = await api("GET", `/api/v1/tasks/${first.task.id}`);
    expect(done.body).toMatchObject({ status: "completed", result: { ok: 1 } });
    c.close();
  });

  it("consumer socket: a stale token fails only its own item; a bad frame is answered with a problem and changes nothing", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 2);
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 2 });
    const [a, b] = await c.waitLeases(2);
    const mixed = await c.request("complete", {
      items: [
        { id: a.task.id, leaseToken: "not-the-token" },
        { id: b.task.id, leaseToken: b.leaseToken },
      ],
    });
    expect(mixed.results[0]).toMatchObject({ id: a.task.id, ok: false, problem: { type: "urn:edgeq:error:stale_lease", status: 409 } });
    expect(mixed.results[1]).toMatchObject({ id: b.task.id, ok: true });

    // Not JSON, an unknown type, a bad item: each an `error` frame; the lease of `a` still holds.
    c.send("{not json");
    await until(async () => c.frames.find((f) => f.type === "error" && f.problem.type === "urn:edgeq:error:malformed_json"));
    const unknown = await c.request("explode");
    expect(unknown).toMatchObject({ type: "error", problem: { type: "urn:edgeq:error:validation_failed", status: 400 } });
    const badItem = await c.request("complete", {
      items: [{ id: a.task.id, leaseToken: a.leaseToken, result: { x: "y".repeat(200_000) } }],
    });
    expect(badItem).toMatchObject({ type: "error", problem: { type: "urn:edgeq:error:payload_too_large", status: 413 } });
    expect(await statusOf(a.task.id)).toBe("running");
    const tooMuch = await c.request("complete", { items: [{ id: a.task.id, leaseToken: a.leaseToken }], credit: 5000 });
    expect(tooMuch).toMatchObject({ type: "error", problem: { errors: [{ pointer: "/credit" }] } });
    expect(await statusOf(a.task.id)).toBe("running");
    c.close();
  });

  it("consumer socket: fail, heartbeat and release act as their HTTP batch calls do", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 3, { maxAttempts: 1 });
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 3 });
    const [a, b, d] = await c.waitLeases(3);
    const beat = await c.request("heartbeat", { items: [{ id: a.task.id, leaseToken: a.leaseToken, progress: 40 }] });
    expect(beat.results[0]).toMatchObject({ id: a.task.id, ok: true, expiresAt: expect.any(String), cancelRequested: false });
    expect((await api("GET", `/api/v1/tasks/${a.task.id}`)).body.progress).toBe(40);
    const failed = await c.request("fail", {
      items: [{ id: b.task.id, leaseToken: b.leaseToken, error: { message: "boom" }, retryable: false }],
    });
    expect(failed.results[0]).toMatchObject({ ok: true });
    expect(await statusOf(b.task.id)).toBe("failed");
    // Released without using an attempt, and pushed again to the socket with credit.
    const released = await c.request("release", { items: [{ id: d.task.id, leaseToken: d.leaseToken }], credit: 1 });
    expect(released.results[0]).toMatchObject({ ok: true });
    const again = (await c.waitLeases(4))[3];
    expect(again.task).toMatchObject({ id: d.task.id, attempts: 1 });
    expect(again.leaseToken).not.toBe(d.leaseToken);
    c.close();
  });

  it("consumer socket: two sockets never get the same task", async () => {
    const queue = freshQueue("sock");
    const one = await consumer(queue, { workerId: "w1" });
    const two = await consumer(queue, { workerId: "w2" });
    one.send({ type: "credit", credit: 30 });
    two.send({ type: "credit", credit: 30 });
    const ids = await enqueue(queue, 40);
    await until(async () => one.leases().length + two.leases().length === 40);
    const leased = [...one.leases(), ...two.leases()].map((l) => l.task.id);
    expect(new Set(leased).size).toBe(40);
    expect(leased.sort()).toEqual([...ids].sort());
    expect(one.leases().length).toBeGreaterThan(0);
    expect(two.leases().length).toBeGreaterThan(0);
    one.close();
    two.close();
  });

  it("consumer socket: nothing is pushed while the queue is paused, or past its concurrency; resume and a freed slot push again", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 3);
    expect((await api("PATCH", `/api/v1/queues/${queue}`, { concurrency: 1 })).status).toBe(200);
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 5 });
    const [first] = await c.waitLeases(1);
    await settle();
    expect(c.leases()).toHaveLength(1); // the queue's concurrency is 1
    expect((await api("POST", `/api/v1/queues/${queue}/pause`)).status).toBe(200);
    await c.request("complete", { items: [{ id: first.task.id, leaseToken: first.leaseToken }] });
    await settle();
    expect(c.leases()).toHaveLength(1); // paused
    expect((await api("POST", `/api/v1/queues/${queue}/resume`)).status).toBe(200);
    await c.waitLeases(2); // the resume, and the slot the completion freed
    await settle();
    expect(c.leases()).toHaveLength(2);
    c.close();
  });

  it("consumer socket: stop ends the credit; leases pushed before it arrive before its answer", async () => {
    const queue = freshQueue("sock");
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 10 });
    await enqueue(queue, 2);
    await c.waitLeases(2);
    const stopped = await c.request("stop");
    expect(stopped).toMatchObject({ type: "results", results: [] });
    await enqueue(queue, 2);
    await settle();
    expect(c.leases()).toHaveLength(2);
    c.close();
  });

  it("consumer socket: a socket past its lifetime is closed with 4000 and answers nothing more", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 1);
    await runInDurableObject(shardStub(queue), (shard: QueueShard) => {
      shard.consumers.lifetimeMs = 0;
    });
    try {
      const c = await consumer(queue);
      c.send({ type: "credit", credit: 1 });
      await until(async () => c.closedWith() === 4000);
      expect(c.leases()).toHaveLength(0);
      expect((await api("GET", `/api/v1/queues/${queue}`)).body.counts).toMatchObject({ pending: 1 });
    } finally {
      await runInDurableObject(shardStub(queue), (shard: QueueShard) => {
        shard.consumers.lifetimeMs = 15 * 60_000;
      });
    }
  });

  it("consumer socket: an idle socket past its lifetime is closed with 4000 when a task comes for it, and the task waits for another", async () => {
    const queue = freshQueue("sock");
    await runInDurableObject(shardStub(queue), (shard: QueueShard) => {
      shard.consumers.lifetimeMs = 300;
    });
    try {
      const c = await consumer(queue);
      c.send({ type: "credit", credit: 5 });
      await settle();
      await new Promise((r) => setTimeout(r, 300)); // past its lifetime, having sent nothing since
      const [id] = await enqueue(queue, 1);
      await until(async () => c.closedWith() === 4000);
      expect(c.leases()).toHaveLength(0);
      expect(await statusOf(id)).toBe("pending");
      const next = await consumer(queue, { workerId: "w2" }); // a new socket gets it
      next.send({ type: "credit", credit: 1 });
      expect((await next.waitLeases(1))[0].task.id).toBe(id);
      next.close();
    } finally {
      await runInDurableObject(shardStub(queue), (shard: QueueShard) => {
        shard.consumers.lifetimeMs = 15 * 60_000;
      });
    }
  });

  it("consumer socket: needs the consume permission, an upgrade, a shard the queue has, and a consume token from POST /consume/tokens", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 1);
    const noAuth = await toJson(await upgrade(queue, "workerId=w", {}));
    expectProblem(noAuth, 401, "unauthorized");
    const reader = await api("POST", "/api/v1/keys", { role: "read-only", name: "reader" });
    expectProblem(await toJson(await upgrade(queue, "workerId=w", { authorization: `Bearer ${reader.body.key}` })), 403, "forbidden");
    const plain = await api("GET", `/api/v1/queues/${queue}/consume?workerId=w`);
    expectProblem(plain, 426, "upgrade_required");
    expectProblem(await toJson(await upgrade(queue, "workerId=w&shard=3")), 404, "not_found");
    expectProblem(await toJson(await upgrade(queue, "shard=0")), 400, "validation_failed");

    // A consume token opens the socket; a live token, a forged one, or a consume token elsewhere does not.
    const made = await api("POST", "/api/v1/consume/tokens");
    expect(made.status).toBe(201);
    const token: string = made.body.token;
    expect(token).toMatch(/^eqcons_default\./);
    const viaToken = await consumer(queue, { headers: {}, query: `&token=${token}` });
    viaToken.send({ type: "credit", credit: 1 });
    await viaToken.waitLeases(1);
    viaToken.close();
    const live = (await api("POST", "/api/v1/live/tokens")).body.token;
    expectProblem(await toJson(await upgrade(queue, `workerId=w&token=${live}`, {})), 401, "unauthorized");
    const forged = `${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`; // one character of its MAC changed
    expectProblem(await toJson(await upgrade(queue, `workerId=w&token=${forged}`, {})), 401, "unauthorized");
    expectProblem(await api("GET", `/api/v1/queues/${queue}?token=${token}`, undefined, { authorization: "" }), 401, "unauthorized");
    expectProblem(
      await api("GET", `/api/v1/live?token=${token}`, undefined, { authorization: "", upgrade: "websocket" }),
      401,
      "unauthorized",
    );
    const producer = await api("POST", "/api/v1/keys", { role: "producer", name: "p" });
    expectProblem(
      await api("POST", "/api/v1/consume/tokens", undefined, { authorization: `Bearer ${producer.body.key}` }),
      403,
      "forbidden",
    );
  });

  it("consumer socket: with several sockets open, frames that come together run together, each answered on its own socket; a call that comes first runs them before itself", async () => {
    const queue = freshQueue("sock");
    await enqueue(queue, 3);
    const one = await consumer(queue, { workerId: "w1" });
    const two = await consumer(queue, { workerId: "w2" });
    one.send({ type: "credit", credit: 2 });
    const [a, b] = await one.waitLeases(2);
    two.send({ type: "credit", credit: 1 });
    const [c] = await two.waitLeases(1);
    const frame = (id: string, leaseToken: string) => JSON.stringify({ type: "complete", ref: 7, items: [{ id, leaseToken }] });
    const socketOf = (state: DurableObjectState, workerId: string) =>
      state.getWebSockets().find((ws) => (ws.deserializeAttachment() as { workerId: string }).workerId === workerId)!;
    // Frames handed to the shard as workerd hands them, one after the other: they wait for the next turn.
    const seen = await runInDurableObject(shardStub(queue), async (shard: QueueShard, state) => {
      const waits = [
        shard.webSocketMessage(socketOf(state, "w1"), frame(a.task.id, a.leaseToken)),
        shard.webSocketMessage(socketOf(state, "w2"), frame(c.task.id, "not-the-token")),
      ];
      const stored = () => state.storage.sql.exec<{ status: string }>("SELECT status FROM tasks WHERE id = ?", a.task.id).one().status;
      const before = stored();
      const read = shard.get(a.task.id); // a call that comes meanwhile: the frames run first
      await Promise.all(waits);
      return { waited: waits.every((w) => w instanceof Promise), before, read: read.ok ? read.value?.status : null };
    });
    expect(seen).toEqual({ waited: true, before: "running", read: "completed" });
    const answer = (socket: typeof one) => until(async () => socket.frames.find((f) => f.type === "results" && f.ref === 7));
    expect(await answer(one)).toMatchObject({ results: [{ id: a.task.id, ok: true }] });
    expect(await answer(two)).toMatchObject({ results: [{ id: c.task.id, ok: false, problem: { type: "urn:edgeq:error:stale_lease" } }] });
    expect(await statusOf(c.task.id)).toBe("running");

    // One socket left: its frame runs at once.
    two.close();
    await until(async () => (await runInDurableObject(shardStub(queue), (_s: QueueShard, state) => state.getWebSockets().length)) === 1);
    const alone = await runInDurableObject(shardStub(queue), (shard: QueueShard, state) => {
      const wait = shard.webSocketMessage(socketOf(state, "w1"), frame(b.task.id, b.leaseToken));
      return {
        waited: wait instanceof Promise,
        status: state.storage.sql.exec<{ status: string }>("SELECT status FROM tasks WHERE id = ?", b.task.id).one().status,
      };
    });
    expect(alone).toEqual({ waited: false, status: "completed" });
    one.close();
  });

  it("consumer socket: socket messages are counted apart from RPC requests", async () => {
    const queue = freshQueue("sock");
    const c = await consumer(queue);
    c.send({ type: "credit", credit: 5 });
    await enqueue(queue, 5);
    const leases = await c.waitLeases(5);
    await c.request("complete", { items: leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })) });
    const stats = await runInDurableObject(shardStub(queue), (shard: QueueShard) => shard.stats());
    expect(stats.ok && stats.value.socketMessages).toBe(2);
    c.close();
  });
});

async function toJson(res: Response) {
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: `ws` ships no types; this file uses the few members typed below
import { WebSocket as WsSocket } from "ws";
import { Worker } from "../../client/consumer";
import { EdgeqClient, EdgeqError, UnrecoverableError, type WebSocketConstructor } from "../../client/index";
import { LocalStack, fresh, sleep, until } from "./stack";

const stack = new LocalStack();
let edgeq: EdgeqClient;

beforeAll(async () => {
  await stack.start();
  edgeq = new EdgeqClient({ url: stack.url, token: stack.token });
}, 120_000);
afterAll(() => stack.dispose());

describe("the SDK against the local stack", { timeout: 60_000 }, () => {
  it("add → a worker processes it → completed with its result", async () => {
    const queue = edgeq.queue(fresh("sdk"));
    const task = await queue.add("double", { n: 21 }, { priority: 9 });
    const worker = new Worker(edgeq, queue.name, async (t) => ({ n: (t.payload as { n: number }).n * 2 }));
    const done: string[] = [];
    worker.on("completed", (t) => done.push(t.id));
    const running = worker.run();
    const got = await until(async () => {
      const t = await edgeq.get(task.id);
      return t.status === "completed" && t;
    });
    expect(got.result).toEqual({ n: 42 });
    // `completed` is emitted once the API has accepted the completion.
    await until(async () => done.length > 0);
    expect(done).toEqual([task.id]);
    await worker.close();
    await running;
    const registered = await edgeq.call<{ status: string; completed: number }>("GET", `/workers/${await worker.id}`);
    expect(registered.completed).toBe(1);
  });

  it("never runs more than `concurrency` tasks at once, and runs them all", async () => {
    const queue = edgeq.queue(fresh("conc"));
    const progress: number[] = [];
    await queue.addBulk(
      Array.from({ length: 24 }, (_, i) => ({ name: "t", payload: { i } })),
      { chunkSize: 10, onProgress: (done) => progress.push(done) },
    );
    expect(progress).toEqual([10, 20, 24]);
    let now = 0;
    let peak = 0;
    const worker = new Worker(
      edgeq,
      queue.name,
      async () => {
        now++;
        peak = Math.max(peak, now);
        await sleep(60);
        now--;
      },
      { concurrency: 4, waitMs: 500 },
    );
    const running = worker.run();
    await until(async () => (await queue.stats()).counts.completed === 24);
    await worker.close();
    await running;
    expect(peak).toBe(4);
  });

  it("heartbeats keep a task alive past its lease length", async () => {
    const queue = edgeq.queue(fresh("long"));
    const task = await queue.add("slow", null, { timeoutMs: 600 });
    const worker = new Worker(edgeq, queue.name, async () => {
      await sleep(2000);
      return "done";
    });
    const running = worker.run();
    const got = await until(async () => {
      const t = await edgeq.get(task.id);
      return t.status === "completed" && t;
    });
    expect(got.attempts).toBe(1);
    await worker.close();
    await running;
  });

  it("progress reported by the handler reaches the task with the next heartbeat", async () => {
    const queue = edgeq.queue(fresh("progress"));
    const task = await queue.add("report", null, { timeoutMs: 600 });
    let release!: () => void;
    const worker = new Worker(edgeq, queue.name, async (_t, { progress }) => {
      progress({ step: "upload", percent: 40 });
      await new Promise<void>((r) => (release = r));
    });
    const running = worker.run();
    const seen = await until(async () => {
      const t = await edgeq.get(task.id);
      return t.status === "running" && t.progress !== null && t;
    });
    expect(seen.progress).toEqual({ step: "upload", percent: 40 });
    release();
    await until(async () => (await edgeq.get(task.id)).status === "completed");
    await worker.close();
    await running;
  });

  it("a parent that waits for its children gets their results in its handler", async () => {
    const queue = edgeq.queue(fresh("fanin"));
    const [parent, ...kids] = await queue.addBulk([
      { name: "sum", ref: "sum", waitForChildren: true },
      ...[1, 2, 3].map((n) => ({ name: "square", parentId: "ref:sum", payload: { n } })),
    ]);
    let seen: Record<string, unknown> | undefined;
    const worker = new Worker(
      edgeq,
      queue.name,
      async (task, { childResults }) => {
        if (task.name === "square") return (task.payload as { n: number }).n ** 2;
        seen = childResults;
        return Object.values(childResults ?? {}).reduce((a: number, b) => a + (b as number), 0);
      },
      { concurrency: 4, waitMs: 500 },
    );
    const running = worker.run();
    const done = await until(async () => {
      const t = await edgeq.get(parent.id);
      return t.status === "completed" && t;
    });
    expect(done.result).toBe(14);
    expect(seen).toEqual(Object.fromEntries(kids.map((k, i) => [k.id, (i + 1) ** 2])));
    expect((await edgeq.children(parent.id)).items.map((t) => t.status)).toEqual(["completed", "completed", "completed"]);
    await worker.close();
    await running;
  });

  it("a cancel request reaches the handler as an aborted signal, and the task ends cancelled", async () => {
    const queue = edgeq.queue(fresh("cancel"));
    const task = await queue.add("waits", null, { timeoutMs: 600 });
    let aborted = false;
    const worker = new Worker(edgeq, queue.name, (_t, { signal }) => {
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          aborted = true;
          reject(new Error("stopped on request"));
        }),
      );
    });
    const running = worker.run();
    await until(async () => (await edgeq.get(task.id)).status === "running");
    await edgeq.cancel(task.id);
    const got = await until(async () => {
      const t = await edgeq.get(task.id);
      return t.status === "cancelled" && t;
    });
    expect(aborted).toBe(true);
    expect(got.error?.message).toBe("stopped on request");
    await worker.close();
    await running;
  });

  it("close() returns after every completion on its way has been answered and emitted", async () => {
    const queue = edgeq.queue(fresh("drain"));
    await queue.addBulk(Array.from({ length: 30 }, () => ({ name: "t" })));
    // A slow network on the way back: the API has accepted the completions before the worker hears so.
    const slowAnswers: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).endsWith("/leases/complete")) await sleep(300);
      return res;
    };
    const client = new EdgeqClient({ url: stack.url, token: stack.token, fetch: slowAnswers });
    let emitted = 0;
    const worker = new Worker(client, queue.name, () => undefined, { concurrency: 10, waitMs: 200, flushMs: 50 });
    worker.on("completed", () => emitted++);
    const running = worker.run();
    await until(async () => (await queue.stats()).counts.completed === 30);
    await worker.close();
    await running;
    expect(emitted).toBe(30);
  });

  it("closing hands back tasks still running, without using their attempt", async () => {
    const queue = edgeq.queue(fresh("close"));
    const task = await queue.add("forever", null, { maxAttempts: 1 });
    const worker = new Worker(edgeq, queue.name, () => sleep(60_000));
    const running = worker.run();
    await until(async () => (await edgeq.get(task.id)).status === "running");
    await worker.close({ timeoutMs: 100 });
    await running;
    const after = await edgeq.get(task.id);
    expect(after).toMatchObject({ status: "pending", attempts: 0 });
  });

  it("while tasks are short it holds up to `prefetch` leased ahead, never runs more than `concurrency`, and hands held tasks back unrun on close", async () => {
    const queue = edgeq.queue(fresh("prefetch"));
    await queue.addBulk(Array.from({ length: 40 }, (_, i) => ({ name: "quick", payload: { i } })));
    let running = 0;
    let most = 0;
    let done = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const worker = new Worker(
      edgeq,
      queue.name,
      async () => {
        most = Math.max(most, ++running);
        // The first 10 are quick (the worker learns its tasks are short); the rest wait at the gate.
        if (++done > 10) await gate;
        running--;
      },
      { concurrency: 2, prefetch: 3, waitMs: 200 },
    );
    const run = worker.run();
    // Two run (held at the gate) and three more are leased ahead: five leased in all, never more.
    await until(async () => (await queue.stats()).counts.running === 5);
    await sleep(500);
    expect((await queue.stats()).counts.running).toBe(5);
    expect(most).toBe(2);
    await worker.close({ timeoutMs: 100 });
    release();
    await run;
    const counts = (await queue.stats()).counts;
    expect(counts.running ?? 0).toBe(0);
    expect(counts.completed).toBe(10);
    const pending = (await queue.list({ status: "pending", limit: 100 })).items;
    expect(pending).toHaveLength(30);
    expect(pending.every((t) => t.attempts === 0)).toBe(true); // the held and the aborted went back without using an attempt
  });

  it("over HTTP, asks for nothing ahead while tasks are slow: a lease call never asks for more than the free slots", async () => {
    const queue = edgeq.queue(fresh("noprefetch"));
    await queue.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: "slow", payload: { i } })));
    const asked: number[] = [];
    const watching: typeof fetch = (input, init) => {
      if (String(input).endsWith("/leases") && typeof init?.body === "string") asked.push(JSON.parse(init.body).max);
      return fetch(input, init);
    };
    const client = new EdgeqClient({ url: stack.url, token: stack.token, fetch: watching });
    const worker = new Worker(client, queue.name, () => sleep(150), { concurrency: 2, prefetch: 4, waitMs: 200, transport: "http" });
    const run = worker.run();
    await until(async () => (await queue.stats()).counts.completed === 12);
    await worker.close();
    await run;
    expect(asked.length).toBeGreaterThan(3);
    expect(Math.max(...asked)).toBe(2);
  });

  it("over HTTP, by default holds ahead what runs in about 250 ms at the recent pace, at most 400", async () => {
    const asked: number[] = [];
    const watching: typeof fetch = (input, init) => {
      if (String(input).endsWith("/leases") && typeof init?.body === "string") asked.push(JSON.parse(init.body).max);
      return fetch(input, init);
    };
    const client = new EdgeqClient({ url: stack.url, token: stack.token, fetch: watching });
    const run = async (tasks: number, handler: () => Promise<void>) => {
      const queue = edgeq.queue(fresh("pace"));
      await queue.addBulk(
        Array.from({ length: tasks }, (_, i) => ({ name: "t", payload: { i } })),
        { chunkSize: 500 },
      );
      asked.length = 0;
      const worker = new Worker(client, queue.name, handler, { concurrency: 2, waitMs: 200, transport: "http" });
      const running = worker.run();
      await until(async () => (await queue.stats()).counts.completed === tasks, 60_000);
      await worker.close();
      await running;
      return Math.max(...asked);
    };
    // No-op tasks: far more than the old default of `concurrency` ahead, never past 400.
    const quick = await run(1500, async () => {});
    expect(quick).toBeGreaterThan(100);
    expect(quick).toBeLessThanOrEqual(2 + 400);
    // 25 ms tasks at concurrency 2: 250 ms of work is at most 20 tasks ahead (plus the 2 slots).
    const paced = await run(120, async () => void (await sleep(25)));
    expect(paced).toBeGreaterThan(2);
    expect(paced).toBeLessThanOrEqual(2 + 20);
  });

  it("a task that becomes ready just after close() is not leased by the closed worker's long poll", async () => {
    const queue = edgeq.queue(fresh("shutdown"));
    const task = await queue.add("later", null, { delayMs: 1500 });
    const worker = new Worker(edgeq, queue.name, () => undefined, { waitMs: 20_000 });
    const running = worker.run();
    await sleep(700); // the worker's long poll is waiting in the shard
    const closing = Date.now();
    await worker.close();
    await running;
    expect(Date.now() - closing).toBeLessThan(3000); // the poll ended when asked, not at its 20 s wait
    await until(async () => Date.now() > Date.parse(task.runAt) + 500 && (await edgeq.get(task.id)).status === "pending");
    await sleep(300);
    expect((await edgeq.get(task.id)).status).toBe("pending");
  });

  it("search iterates history page by page; timeline yields a task's events", async () => {
    const queue = edgeq.queue(fresh("hist"));
    const made = await queue.addBulk(
      Array.from({ length: 7 }, (_, i) => ({ name: "invoice", payload: { customer: `cust-${i % 2}` }, tags: ["billing"] })),
    );
    const worker = new Worker(edgeq, queue.name, async () => "sent");
    const running = worker.run();
    await until(async () => (await queue.stats()).counts.completed === 7);
    await worker.close();
    await running;
    const searchAll = async () => {
      const seen: string[] = [];
      let pages = 0;
      for await (const page of edgeq.search({ queue: queue.name, status: ["completed"], tag: "billing", limit: 3 })) {
        pages++;
        seen.push(...page.items.map((t) => t.id));
      }
      return { seen, pages };
    };
    // History lags the live queue by about a second.
    const { seen, pages } = await until(async () => {
      const r = await searchAll();
      return r.seen.length === 7 && r;
    });
    expect(pages).toBe(3);
    expect([...seen].sort()).toEqual(made.map((t) => t.id).sort());
    const text: string[] = [];
    for await (const page of edgeq.search({ q: "cust-1", queue: queue.name, createdFrom: new Date(Date.now() - 60_000) }))
      text.push(...page.items.map((t) => t.id));
    expect(text.sort()).toEqual(
      made
        .filter((_, i) => i % 2 === 1)
        .map((t) => t.id)
        .sort(),
    );
    const events: string[] = [];
    for await (const e of edgeq.timeline(made[0].id)) events.push(e.type);
    expect(events).toEqual(["enqueued", "started", "completed"]);
    await expect(edgeq.search({ q: '"open' }).next()).rejects.toMatchObject({ status: 400 });
    // Analytics over the same history: the seven completions in this minute's trend, and their distribution.
    const trend = await edgeq.analytics.trends({ bucket: "minute", queue: queue.name, from: new Date(Date.now() - 120_000) });
    expect(trend.items.reduce((n, i) => n + i.completed, 0)).toBe(7);
    expect(trend.items.find((i) => i.completed > 0)?.runMs.p50).not.toBeNull();
    const dist = await edgeq.analytics.distributions({ queue: queue.name });
    expect(dist).toMatchObject({ total: 7, status: { completed: 7 }, name: { invoice: 7 } });
    // Asked again of the same data, it is answered from the cache (other queues' flushes may move the data version meanwhile).
    const { hits } = await edgeq.analytics.cache();
    await until(async () => {
      await edgeq.analytics.distributions({ queue: queue.name });
      return (await edgeq.analytics.cache()).hits > hits;
    });
  });

  it("live: a snapshot, then counts and task events as they happen; task(id).events() ends when the task does; reconnects after a restart", async () => {
    // Node 20 has no global WebSocket: there the SDK finds the optional `ws` package on its own.
    if (Number(process.versions.node.split(".")[0]) < 22)
      expect(typeof (globalThis as { WebSocket?: unknown }).WebSocket).toBe("undefined");
    const queue = edgeq.queue(fresh("live"));
    await queue.add("first");
    const stop = new AbortController();
    const seen: { type: string; seq: number; [k: string]: unknown }[] = [];
    const reading = (async () => {
      for await (const m of edgeq.live({ queue: queue.name, signal: stop.signal })) seen.push(m as never);
    })();
    await until(async () => seen.some((m) => m.type === "snapshot"));
    const task = await queue.add("second", { n: 2 });
    const updates: string[] = [];
    const watching = (async () => {
      for await (const t of edgeq.task(task.id).events()) updates.push(t.status);
    })();
    await edgeq.cancel(task.id); // before or after its socket opens: events() starts from the task as it is
    await until(async () => seen.some((m) => m.type === "task" && (m.task as { id: string; status: string }).id === task.id));
    await watching; // ended by itself at a terminal status
    expect(updates.at(-1)).toBe("cancelled");
    expect(updates.every((u) => u === "pending" || u === "cancelled")).toBe(true);
    expect(seen[0]).toMatchObject({ type: "snapshot", seq: 1, queues: [{ name: queue.name }] });
    expect(seen.map((m) => m.seq)).toEqual(seen.map((_, i) => i + 1));
    // The stack restarts: the iterator reconnects and starts again with a snapshot.
    const before = seen.length;
    await stack.stop();
    await stack.start();
    await until(async () => seen.slice(before).some((m) => m.type === "snapshot"), 30_000);
    await queue.add("after restart");
    await until(async () => seen.slice(before).some((m) => m.type === "delta"), 30_000);
    stop.abort();
    await reading;
  });

  it("an UnrecoverableError fails the task at once; API errors carry their problem+json", async () => {
    const queue = edgeq.queue(fresh("unrecoverable"));
    const task = await queue.add("bad", null, { maxAttempts: 5 });
    const worker = new Worker(edgeq, queue.name, () => {
      throw new UnrecoverableError("bad input");
    });
    const running = worker.run();
    const got = await until(async () => {
      const t = await edgeq.get(task.id);
      return t.status === "failed" && t;
    });
    expect(got).toMatchObject({ attempts: 1, error: { message: "bad input" } });
    await worker.close();
    await running;
    const err = await edgeq.get("not-a-task").catch((e) => e);
    expect(err).toBeInstanceOf(EdgeqError);
    expect((err as EdgeqError).code).toBe("not_found");
    expect((err as EdgeqError).status).toBe(404);
  });
});

describe("flow control, as consumers see it", { timeout: 90_000 }, () => {
  it("a concurrency cap holds across 8 consumers and 2 shards, and a change at runtime takes effect", async () => {
    const queue = edgeq.queue(fresh("capped"));
    await edgeq.call("PATCH", `/queues/${queue.name}`, { shards: 2, concurrency: 6 });
    await queue.addBulk(Array.from({ length: 500 }, (_, i) => ({ name: "t", payload: { i } })));
    let running = 0;
    let peak = 0;
    let raised = false;
    let peakAfterRaise = 0;
    const workers = Array.from(
      { length: 8 },
      () =>
        new Worker(
          edgeq,
          queue.name,
          async () => {
            running++;
            peak = Math.max(peak, running);
            if (raised) peakAfterRaise = Math.max(peakAfterRaise, running);
            await sleep(15);
            running--;
          },
          { concurrency: 4, waitMs: 500, flushMs: 5 },
        ),
    );
    const runs = workers.map((w) => w.run());
    await until(async () => (await queue.stats()).counts.completed >= 150, 60_000);
    expect(peak).toBeLessThanOrEqual(6);
    await edgeq.call("PATCH", `/queues/${queue.name}`, { concurrency: 12 });
    raised = true;
    await until(async () => (await queue.stats()).counts.completed === 500, 60_000);
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(runs);
    expect(peak).toBeLessThanOrEqual(12);
    expect(peakAfterRaise).toBeGreaterThan(6);
    expect(peakAfterRaise).toBeLessThanOrEqual(12);
  });

  it("a start limit holds in every window of its interval", async () => {
    const queue = edgeq.queue(fresh("rated"));
    await edgeq.call("PATCH", `/queues/${queue.name}`, { startLimit: { count: 10, perMs: 500 } });
    await queue.addBulk(Array.from({ length: 40 }, () => ({ name: "t" })));
    const starts: number[] = [];
    const workers = Array.from(
      { length: 4 },
      () => new Worker(edgeq, queue.name, (t) => void starts.push(Date.parse(t.startedAt!)), { concurrency: 8, waitMs: 300 }),
    );
    const runs = workers.map((w) => w.run());
    await until(async () => (await queue.stats()).counts.completed === 40, 30_000);
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(runs);
    starts.sort((a, b) => a - b);
    expect(starts).toHaveLength(40);
    // Any 11 consecutive starts span at least the interval.
    for (let i = 0; i + 10 < starts.length; i++) expect(starts[i + 10] - starts[i]).toBeGreaterThanOrEqual(500);
  });
});

/** What these tests use of a `ws` socket. */
interface WsLike {
  on(event: "message", listener: (data: unknown) => void): void;
  send(data: string): void;
  terminate(): void;
}
const WebSocket = WsSocket as new (url: string) => WsLike;

/** A `ws` WebSocket that records what the SDK sends, and can drop its connection as a network would. */
function spySockets() {
  const sockets: SpySocket[] = [];
  const sent: { type: string; credit?: number; items?: unknown[] }[] = [];
  let leased = 0;
  class SpySocket extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
      this.on("message", (data) => {
        const frame = JSON.parse(String(data));
        if (frame.type === "leases") leased += frame.leases.length;
      });
    }
    send(data: string) {
      sent.push(JSON.parse(data));
      super.send(data);
    }
  }
  const granted = () => sent.reduce((sum, f) => sum + (f.credit ?? 0), 0);
  return { WebSocket: SpySocket as unknown as WebSocketConstructor, sockets, sent, granted, leased: () => leased };
}

describe("the SDK's Worker over consumer sockets", { timeout: 60_000 }, () => {
  it("consumes over a WebSocket by default: leases are pushed, completions go as frames, no lease or batch request is made", async () => {
    const queue = edgeq.queue(fresh("ws"));
    const requests: string[] = [];
    const watching: typeof fetch = (input, init) => {
      requests.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
      return fetch(input, init);
    };
    const client = new EdgeqClient({ url: stack.url, token: stack.token, fetch: watching });
    const spy = spySockets();
    const worker = new Worker(client, queue.name, async (t) => (t.payload as { i: number }).i, {
      concurrency: 4,
      WebSocket: spy.WebSocket,
    });
    const running = worker.run();
    await until(async () => spy.sockets.length === 1 && spy.sent.length > 0);
    expect(worker.transport).toBe("websocket");
    const made = await queue.addBulk(Array.from({ length: 50 }, (_, i) => ({ name: "t", payload: { i } })));
    await until(async () => (await queue.stats()).counts.completed === 50);
    await worker.close();
    await running;
    expect((await edgeq.get(made[7].id)).result).toBe(7);
    expect(requests.filter((r) => r.includes("/leases"))).toEqual([]);
    expect(requests).toContain("POST /api/v1/consume/tokens");
    const completed = spy.sent.filter((f) => f.type === "complete").flatMap((f) => f.items!);
    expect(completed).toHaveLength(50);
    expect(spy.sent.some((f) => f.type === "stop")).toBe(true);
  });

  it("over a socket, grants no credit past the free slots while tasks are slow, and holds ahead up to `prefetch` while they are short", async () => {
    const outstandingPeak = async (tasks: number, handler: () => Promise<void>, options: object) => {
      const queue = edgeq.queue(fresh("credit"));
      await queue.addBulk(
        Array.from({ length: tasks }, (_, i) => ({ name: "t", payload: { i } })),
        { chunkSize: 500 },
      );
      const spy = spySockets();
      let peak = 0;
      const timer = setInterval(() => {
        peak = Math.max(peak, spy.granted() - spy.leased());
      }, 1);
      const worker = new Worker(edgeq, queue.name, handler, { concurrency: 2, WebSocket: spy.WebSocket, ...options });
      const running = worker.run();
      await until(async () => (await queue.stats()).counts.completed === tasks, 60_000);
      clearInterval(timer);
      await worker.close();
      await running;
      return { peak, granted: spy.granted() };
    };
    const slow = await outstandingPeak(10, async () => void (await sleep(150)), { prefetch: 4 });
    expect(slow.peak).toBeLessThanOrEqual(2);
    const quick = await outstandingPeak(1500, async () => {}, {});
    expect(quick.peak).toBeGreaterThan(50);
    expect(quick.peak).toBeLessThanOrEqual(402);
  });

  it("while mostly idle, a task's credit comes back in its completion's frame: one frame per task, not two", async () => {
    const queue = edgeq.queue(fresh("idle-frames"));
    const spy = spySockets();
    let done = 0;
    const worker = new Worker(edgeq, queue.name, async () => void done++, { concurrency: 8, WebSocket: spy.WebSocket });
    const running = worker.run();
    await until(async () => spy.sent.length > 0); // the first grant
    await queue.add("t", { i: 0 }); // once tasks are known to be short, the worker's share grows (held ahead): granted at once
    await until(async () => done === 1);
    await sleep(80);
    const before = spy.sent.length;
    for (let i = 2; i <= 6; i++) {
      await queue.add("t", { i });
      await until(async () => done === i);
      await sleep(80); // the completion is flushed (flushMs 20) before the next task
    }
    const frames = spy.sent.slice(before);
    expect(frames.filter((f) => f.type === "complete")).toHaveLength(5);
    expect(frames.filter((f) => f.type === "credit")).toEqual([]);
    expect(frames.reduce((sum, f) => sum + (f.credit ?? 0), 0)).toBe(5); // each task's credit given back, in its completion
    await worker.close();
    await running;
  });

  it("a dropped socket is opened again, and every task is completed, none twice", async () => {
    const queue = edgeq.queue(fresh("drop"));
    const spy = spySockets();
    const runs = new Map<string, number>();
    const worker = new Worker(
      edgeq,
      queue.name,
      async (t) => {
        runs.set(t.id, (runs.get(t.id) ?? 0) + 1);
        await sleep(5);
      },
      { concurrency: 4, WebSocket: spy.WebSocket },
    );
    const errors: Error[] = [];
    worker.on("error", (e) => errors.push(e));
    const running = worker.run();
    await until(async () => spy.sockets.length === 1 && spy.sent.length > 0);
    await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: "t", payload: { i }, timeoutMs: 3000 })));
    await until(async () => runs.size >= 40);
    spy.sockets[0].terminate(); // the connection drops; what was on its way goes over HTTP
    await until(async () => spy.sockets.length === 2 && spy.sent.length > 0); // opened again
    const before = spy.sent.length;
    await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: "t", payload: { i: 100 + i }, timeoutMs: 3000 })));
    await until(async () => (await queue.stats()).counts.completed === 200, 30_000);
    expect(spy.sent.slice(before).some((f) => f.type === "complete")).toBe(true); // the new socket carries completions
    await worker.close();
    await running;
    expect(spy.sockets.length).toBeGreaterThan(1);
    expect(runs.size).toBe(200);
    expect([...runs.values()].filter((n) => n > 1)).toEqual([]);
    expect((await queue.stats()).counts.failed ?? 0).toBe(0);
  });

  it("a completion the shard refuses (a result too large) fails its task's item, and the worker goes on taking tasks", async () => {
    const queue = edgeq.queue(fresh("refused"));
    const spy = spySockets();
    const worker = new Worker(
      edgeq,
      queue.name,
      async (t) => {
        await sleep(60); // slow tasks: nothing held ahead, so every task needs credit given back
        return (t.payload as { big: boolean }).big ? { x: "y".repeat(200_000) } : "ok";
      },
      { concurrency: 1, WebSocket: spy.WebSocket },
    );
    const errors: Error[] = [];
    worker.on("error", (e) => errors.push(e));
    const running = worker.run();
    await until(async () => spy.sent.length > 0);
    const big = await queue.add("t", { big: true });
    await until(async () => errors.length > 0);
    expect(errors[0]).toBeInstanceOf(EdgeqError);
    expect((errors[0] as EdgeqError).status).toBe(413);
    const small = await queue.addBulk([
      { name: "t", payload: { big: false } },
      { name: "t", payload: { big: false } },
    ]);
    await until(async () => (await edgeq.get(small[1].id)).status === "completed");
    expect((await edgeq.get(small[0].id)).status).toBe("completed");
    expect((await edgeq.get(big.id)).status).toBe("running"); // its lease runs out and it is retried, as over HTTP
    await worker.close();
    await running;
  });

  it("falls back to HTTP, at once, when the server opens no consumer socket (an older server, or one that cannot make tokens)", async () => {
    for (const status of [404, 503]) {
      const queue = edgeq.queue(fresh("fallback"));
      const leaseCalls: string[] = [];
      let tokenCalls = 0;
      const noSockets: typeof fetch = async (input, init) => {
        const path = new URL(String(input)).pathname;
        if (path.endsWith("/consume/tokens")) {
          tokenCalls++;
          return new Response(JSON.stringify({ type: "urn:edgeq:error:x", title: "No", status, detail: "no" }), {
            status,
            headers: { "content-type": "application/problem+json" },
          });
        }
        if (path.endsWith("/leases")) leaseCalls.push(path);
        return fetch(input, init);
      };
      const client = new EdgeqClient({ url: stack.url, token: stack.token, fetch: noSockets });
      await queue.addBulk(Array.from({ length: 5 }, (_, i) => ({ name: "t", payload: { i } })));
      const worker = new Worker(client, queue.name, async () => "ok", { waitMs: 200 });
      const started = Date.now();
      const running = worker.run();
      await until(async () => leaseCalls.length > 0);
      expect(Date.now() - started).toBeLessThan(2_000); // not after the whole retry policy (several seconds)
      await until(async () => (await queue.stats()).counts.completed === 5);
      expect(worker.transport).toBe("http");
      expect(tokenCalls).toBeLessThanOrEqual(2);
      await worker.close();
      await running;
    }
  });

  it("with more shards than free slots, splits its credit instead of granting each shard a slot, and moves it on from quiet shards", async () => {
    const queue = edgeq.queue(fresh("split"));
    await edgeq.call("PATCH", `/queues/${queue.name}`, { shards: 4 });
    const spy = spySockets();
    // Tasks of 60 ms are not short: nothing is held ahead, so the worker can take one task at a time.
    const worker = new Worker(edgeq, queue.name, () => sleep(60), { concurrency: 1, WebSocket: spy.WebSocket });
    const running = worker.run();
    await until(async () => spy.sockets.length === 4 && spy.sent.length > 0);
    await queue.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: "t", payload: { i } }))); // spread over the 4 shards
    await until(async () => (await queue.stats()).counts.completed === 12, 30_000);
    // Now one task at a time, on whichever shard it lands: a quiet shard's credit moves on within a second per shard.
    for (let n = 0; n < 3; n++) {
      const task = await queue.add("t", { n });
      await until(async () => (await edgeq.get(task.id)).status === "completed", 6_000);
    }
    await worker.close();
    await running;
    // Granting every shard a slot's credit had 3 of every 4 pushes handed straight back.
    const released = spy.sent.filter((f) => f.type === "release").flatMap((f) => f.items!);
    expect(released.length).toBeLessThanOrEqual(2);
  });

  it("opens a socket to every shard, also to shards added while it runs", async () => {
    const queue = edgeq.queue(fresh("shards"));
    await edgeq.call("PATCH", `/queues/${queue.name}`, { shards: 2 });
    const spy = spySockets();
    const worker = new Worker(edgeq, queue.name, async () => undefined, {
      concurrency: 8,
      WebSocket: spy.WebSocket,
      transport: "websocket",
    });
    const running = worker.run();
    await until(async () => spy.sockets.length === 2);
    await queue.addBulk(Array.from({ length: 60 }, (_, i) => ({ name: "t", payload: { i } })));
    await until(async () => (await queue.stats()).counts.completed === 60);
    await edgeq.call("PATCH", `/queues/${queue.name}`, { shards: 3 });
    await until(async () => spy.sockets.length === 3, 15_000); // checked with the worker's 10 s heartbeat
    await queue.addBulk(Array.from({ length: 60 }, (_, i) => ({ name: "t", payload: { i } })));
    await until(async () => (await queue.stats()).counts.completed === 120);
    await worker.close();
    await running;
    const perShard = await edgeq.call<{ shards: { shard: number; counts: Record<string, number> }[] }>("GET", `/queues/${queue.name}`);
    expect(perShard.shards.every((s) => (s.counts.completed ?? 0) > 0)).toBe(true);
  });
});

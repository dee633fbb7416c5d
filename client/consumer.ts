/**
 * `edgeq/consumer`: a worker that leases tasks from a queue and runs a handler
 * on each, with a concurrency limit, batched leasing and completion, automatic
 * heartbeats, cancellation as an AbortSignal and graceful shutdown.
 *
 * @example
 * ```ts
 * const worker = new Worker(edgeq, "email", async (task, { signal, progress }) => {
 *   await progress(50);
 *   return { sent: true };
 * }, { concurrency: 16 });
 * worker.on("failed", (task, error) => console.error(task.id, error));
 * await worker.run();            // until worker.close()
 * ```
 */
import { CompletionBatcher } from "./completions";
import { EdgeqError, UnrecoverableError } from "./errors";
import { HeartbeatTimer } from "./heartbeat-timer";
import type { EdgeqClient } from "./index";
import { webSocketClass } from "./live";
import { leaseCall } from "./lease-calls";
import { bound, ShardSockets, type SocketsHost } from "./shard-sockets";
import type { HeartbeatBatchResults, Lease, Task } from "./types";
import type { Handler, TaskContext, WorkerOptions } from "./worker-options";

export type { Handler, TaskContext, WorkerOptions } from "./worker-options";

type Events = {
  completed: [task: Task, result: unknown];
  failed: [task: Task, error: Error];
  error: [error: Error];
};

/** A handler's success, waiting to be sent in the next batch of completions. */
interface Completion {
  task: Task;
  leaseToken: string;
  result: unknown;
}

interface InFlight {
  lease: Lease;
  controller: AbortController;
  progress?: number | Record<string, unknown>;
  started: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Tasks are "short", and leasing ahead pays, while the handler's recent average is under this. */
const SHORT_MS = 50;
/** Items per batch call at most (the API's limit). */
const BATCH_MAX = 1000;
/** Held tasks are at most about this much of the worker's time, at its recent pace. */
const HOLD_MS = 250;
/**
 * The default most held ahead: a lease call's fixed cost is spread over its tasks, and measured
 * with no-op tasks at concurrency 16, holding 400 ran ~2.5× as many tasks per second as holding 16.
 */
const PREFETCH = 400;

export class Worker {
  readonly id: Promise<string>;
  private readonly inFlight = new Map<string, InFlight>();
  /** tasks leased ahead, in lease order, waiting for a slot */
  private held: Lease[] = [];
  /** the handler's recent run time, ms (moving average); null until a task has run */
  private recentMs: number | null = null;
  private readonly listeners = new Map<keyof Events, ((...args: unknown[]) => void)[]>();
  private running = false;
  private stopping: Promise<void> | null = null;
  private counts = { completed: 0, failed: 0, busyMs: 0 };
  private readonly heartbeats = new HeartbeatTimer({
    every: () => this.heartbeatEvery(),
    beat: () => this.heartbeat(),
    again: () => this.running || this.inFlight.size > 0,
    error: (e) => this.emit("error", e),
  });
  /** aborts an outstanding long-poll lease, if telling the queue to end it did not */
  private readonly polling = new AbortController();
  /** the lease loop, which `close()` lets finish (it hands back what a last poll brought) */
  private loop: Promise<void> | null = null;
  /** handler successes, sent in batches (`completed` is emitted once the API has accepted one) */
  private readonly completions: CompletionBatcher<Completion>;
  private wakeLoop: (() => void) | null = null;
  /** the consumer sockets, when leases come over WebSockets */
  private sockets: ShardSockets | null = null;

  constructor(
    private readonly client: EdgeqClient,
    readonly queue: string,
    private readonly handler: Handler,
    private readonly options: WorkerOptions = {},
  ) {
    this.completions = new CompletionBatcher((items) => this.send(items), options.flushMs ?? 20);
    const body = { name: options.name ?? "edgeq-worker", queues: [queue], concurrency: this.concurrency };
    this.id = client.call<{ id: string }>("POST", "/workers", body).then((w) => w.id);
    this.id.catch((e) => this.emit("error", e as Error));
  }

  /** How leases arrive, once `run()` has chosen: over consumer sockets, or HTTP long polls (null before). */
  transport: "websocket" | "http" | null = null;

  private get concurrency(): number {
    return Math.max(1, this.options.concurrency ?? 1);
  }

  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener as unknown as (...args: unknown[]) => void]);
    return this;
  }

  /** Leases and runs tasks until `close()`. */
  run(): Promise<void> {
    this.loop ??= this.runLoop();
    return this.loop;
  }

  private async runLoop(): Promise<void> {
    const workerId = await this.id;
    if (this.stopping) return; // closed before it had started
    this.running = true;
    this.heartbeats.schedule(1000);
    if (this.options.transport !== "http" && (await this.openSockets(workerId))) {
      this.transport = "websocket";
      // Leases arrive on the sockets; this loop only waits for close().
      while (this.running) await new Promise<void>((r) => (this.wakeLoop = r));
      return;
    }
    this.transport = "http";
    while (this.running) {
      this.startHeld();
      const max = this.want();
      if (max <= 0) {
        await new Promise<void>((r) => (this.wakeLoop = r));
        continue;
      }
      let leases: Lease[];
      try {
        ({ leases } = await this.client.call<{ leases: Lease[] }>(
          "POST",
          `/queues/${encodeURIComponent(this.queue)}/leases`,
          { workerId, max: Math.min(BATCH_MAX, max), waitMs: this.options.waitMs ?? 20_000 },
          this.polling.signal,
        ));
      } catch (e) {
        if (!this.running) break;
        this.emit("error", e as Error);
        await sleep(1000);
        continue;
      }
      if (!this.running) {
        await this.release(leases);
        break;
      }
      this.held.push(...leases);
      this.startHeld();
      this.heartbeats.soonEnough(); // held tasks' leases run too, even while every slot is busy
    }
  }

  /** Free slots (none while tasks are held), plus room to hold tasks ahead while tasks are short. */
  private want(): number {
    return this.concurrency - this.inFlight.size + Math.max(0, this.ahead() - this.held.length);
  }

  /**
   * Opens a socket to each shard of the queue. False (and nothing open) when the
   * runtime has no WebSocket or the server does not open one, unless `transport`
   * is `websocket`: then it keeps trying.
   */
  private async openSockets(workerId: string): Promise<boolean> {
    const must = this.options.transport === "websocket";
    const host: SocketsHost = {
      client: this.client,
      queue: this.queue,
      workerId,
      running: () => this.running,
      want: () => this.want(),
      arrived: (leases) => this.arrived(leases),
      error: (e) => this.emit("error", e),
    };
    for (let attempt = 0; this.running; attempt++) {
      try {
        const sockets = await ShardSockets.open(host, await webSocketClass(this.options.WebSocket));
        if (!this.running) {
          sockets.close(); // closed while they opened
          return true;
        }
        this.sockets = sockets;
        return true;
      } catch (e) {
        if (!must) return false;
        this.emit("error", e as Error);
        await sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
    return false;
  }

  /** Leases a shard pushed: held and started; more than may be held (several shards' credit met at once, or tasks grew slower) go back. */
  private arrived(leases: Lease[]): void {
    if (!this.running) {
      void this.release(leases);
      return;
    }
    this.held.push(...leases);
    this.startHeld();
    const surplus = this.held.length - this.ahead();
    if (surplus > 0) void this.release(this.held.splice(this.held.length - surplus));
    this.heartbeats.soonEnough();
  }

  /** Room was made (a task ended): the lease loop may ask for more, or the sockets grant the credit it frees. */
  private freed(): void {
    this.wakeLoop?.();
    this.sockets?.soon();
  }

  /** How many tasks may be held ahead now: while tasks are short, what runs in HOLD_MS, at least a slot's worth each, at most `prefetch`. */
  private ahead(): number {
    if (this.recentMs === null || this.recentMs >= SHORT_MS) return 0;
    const pace = Math.floor((this.concurrency * HOLD_MS) / Math.max(this.recentMs, 0.1));
    return Math.min(Math.max(0, this.options.prefetch ?? PREFETCH), Math.max(this.concurrency, pace));
  }

  /** Runs held tasks in the free slots (not while closing: those are handed back). */
  private startHeld(): void {
    while (this.running && this.held.length > 0 && this.inFlight.size < this.concurrency) this.start(this.held.shift()!);
  }

  /**
   * Stops leasing. In-flight tasks finish (up to `timeoutMs`, default 30 s); what
   * is still running then is aborted and handed back without using an attempt.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.stopping ??= (async () => {
      this.running = false;
      this.wakeLoop?.();
      if (this.sockets) {
        await this.sockets.stop(); // leases pushed before it are handed back below
      } else if (this.loop) {
        // Ask the queue to end this worker's long poll (an aborted request does not always reach it),
        // then let the loop read the answer and hand back anything it brought; abort only as a last resort.
        const stopped = this.id
          .then((workerId) => this.client.call("POST", `/queues/${encodeURIComponent(this.queue)}/leases/stop`, { workerId }))
          .catch((e) => this.emit("error", e as Error));
        await Promise.race([stopped.then(() => this.loop), bound(5000)]);
        this.polling.abort();
        await Promise.race([this.loop, bound(1000)]);
      }
      await this.release(this.held.splice(0)); // leased ahead, never started: back without using an attempt
      const deadline = Date.now() + (options.timeoutMs ?? 30_000);
      while (this.inFlight.size > 0 && Date.now() < deadline) await sleep(20);
      const left = [...this.inFlight.values()];
      for (const f of left) f.controller.abort(new Error("worker closing"));
      this.inFlight.clear();
      await this.release(left.map((f) => f.lease));
      await this.completions.drain();
      this.heartbeats.stop();
      await this.heartbeat().catch(() => undefined);
      this.sockets?.close();
    })();
    return this.stopping;
  }

  private start(lease: Lease): void {
    const entry: InFlight = { lease, controller: new AbortController(), started: Date.now() };
    this.inFlight.set(lease.task.id, entry);
    this.heartbeats.soonEnough();
    const context: TaskContext = {
      signal: entry.controller.signal,
      progress: (value) => {
        entry.progress = value;
      },
      leaseToken: lease.leaseToken,
      ...(lease.childResults ? { childResults: lease.childResults } : {}),
    };
    void (async () => {
      try {
        const result = await this.handler(lease.task, context);
        if (!this.inFlight.has(lease.task.id)) return; // handed back while closing
        this.completions.add({ task: lease.task, leaseToken: lease.leaseToken, result: result ?? undefined });
      } catch (e) {
        if (!this.inFlight.has(lease.task.id)) return;
        const error = e instanceof Error ? e : new Error(String(e));
        this.counts.failed++;
        try {
          const [r] = await leaseCall(this.client, this.sockets, "fail", [
            {
              id: lease.task.id,
              leaseToken: lease.leaseToken,
              error: { message: error.message.slice(0, 10_000) || "failed", stack: error.stack?.slice(0, 65_536) },
              retryable: !(error instanceof UnrecoverableError),
            },
          ]);
          if (!r.ok) throw new EdgeqError(r.problem);
        } catch (failError) {
          this.emit("error", failError as Error);
        }
        this.emit("failed", lease.task, error);
      } finally {
        const ms = Date.now() - entry.started;
        this.counts.busyMs += ms;
        this.recentMs = this.recentMs === null ? ms : this.recentMs * 0.8 + ms * 0.2;
        this.inFlight.delete(lease.task.id);
        this.startHeld();
        this.freed();
      }
    })();
  }

  /** Sends a batch of completions in one call; a stale token fails only its own item. */
  private async send(items: Completion[]): Promise<void> {
    try {
      const results = await leaseCall(
        this.client,
        this.sockets,
        "complete",
        items.map((i) => ({ id: i.task.id, leaseToken: i.leaseToken, result: i.result })),
      );
      results.forEach((r, n) => {
        if (!r.ok) return this.emit("error", new EdgeqError(r.problem));
        this.counts.completed++;
        this.emit("completed", items[n].task, items[n].result);
      });
    } catch (e) {
      this.emit("error", e as Error);
    }
    this.sockets?.topUp(); // the sockets these completions did not go to
  }

  /** Shortest lease in hand times the heartbeat fraction (at most 10 s, the registry's beat). */
  private heartbeatEvery(): number {
    const fraction = this.options.heartbeatFraction ?? 1 / 3;
    let every = 10_000;
    for (const f of this.inFlight.values()) every = Math.min(every, f.lease.task.timeoutMs * fraction);
    for (const l of this.held) every = Math.min(every, l.task.timeoutMs * fraction);
    return Math.max(50, every);
  }

  /** Extends every lease in hand (one call), surfaces cancellation, and reports to the worker registry. */
  private async heartbeat(): Promise<void> {
    const entries = [...this.inFlight.values()];
    const held = [...this.held];
    if (entries.length + held.length > 0) {
      const items = [
        ...entries.map((f) => ({
          id: f.lease.task.id,
          leaseToken: f.lease.leaseToken,
          ...(f.progress === undefined ? {} : { progress: f.progress }),
        })),
        ...held.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })),
      ];
      const results = (await leaseCall(this.client, this.sockets, "heartbeat", items)) as HeartbeatBatchResults["results"];
      for (const r of results) {
        const f = this.inFlight.get(r.id);
        if (f && (!r.ok || r.cancelRequested)) f.controller.abort(new Error(r.ok ? "cancel requested" : "lease lost"));
        // A held task whose lease is gone, or that was cancelled meanwhile, is not run.
        if (!f && (!r.ok || r.cancelRequested)) this.held = this.held.filter((l) => l.task.id !== r.id);
        if (!r.ok) this.sockets?.forget(r.id);
      }
    }
    if (this.sockets && this.running) await this.sockets.grow().catch((e) => this.emit("error", e as Error));
    const counts = this.counts;
    this.counts = { completed: 0, failed: 0, busyMs: 0 };
    await this.client.call("POST", `/workers/${await this.id}/heartbeat`, { currentTasks: [...this.inFlight.keys()], ...counts });
  }

  /** Hands tasks back without using an attempt: one batch call per BATCH_MAX (held tasks can be hundreds). */
  private async release(leases: Lease[]): Promise<void> {
    if (leases.length === 0) return;
    await leaseCall(
      this.client,
      this.sockets,
      "release",
      leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })),
    ).catch((e) => this.emit("error", e as Error));
  }

  private emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }
}

import { DurableObject } from "cloudflare:workers";
import { SHARD_MIGRATIONS } from "../schema/migrations/shard";
import type { QueueSettings, Status, TaskRow } from "../schema/shard";
import { ShardEngine, type Clock, type ItemResult, type Mail, type NewTask, type ShardAddress, type Totals } from "./core/engine";
import { ConsumerSockets } from "./consumers";
import { HistoryFlusher, type HistoryStats } from "./flusher";
import { LivePusher } from "./live";
import { NextTurn } from "./next-turn";
import { deliverMail } from "./mail-delivery";
import { hubOf } from "./metrics-hub";
import { config } from "../worker/config";
import { migrate } from "./migrate";
import { outcome, type Outcome } from "./outcome";
import { SqlStore } from "./sql-store";

export interface ShardStats {
  counts: Partial<Record<Status, number>>;
  /** when the task pending longest became ready (ms; null: none pending) */
  oldestReadyAt: number | null;
  /** what happened since this object started */
  totals: Totals;
  /** messages to other shards that failed every attempt (kept aside for the queue's retention) */
  deadMail: number;
  /** RPC requests served, consumer socket messages received, and SQLite rows read and written, since this object started (what Cloudflare bills) */
  requests: number;
  socketMessages: number;
  rowsRead: number;
  rowsWritten: number;
  /** the object's SQLite database, in bytes */
  storageBytes: number;
  /** pushes to the tenant's MetricsHub (hub requests), and those that failed */
  live: { pushes: number; failures: number };
  history: HistoryStats;
}

/** How long a stopped consumer's leases answer nothing: longer than any long poll (30 s). */
const STOPPED_MS = 35_000;

/** The stub of one shard of a tenant's queue: the Durable Object named `${tenant}:${queue}:${shard}`. */
export function shardOf(env: Env, tenant: string, queue: string, shard: number) {
  return env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`${tenant}:${queue}:${shard}`));
}

/** A batch item's outcome without the task row: the API answers only ok or the problem. */
function withoutValue<T>(r: ItemResult<T>): ItemResult<null> {
  return r.ok ? { id: r.id, ok: true, value: null } : r;
}

/**
 * One shard of one queue: `${tenant}:${queue}:${shard}`. A thin transport over
 * ShardEngine: RPC methods in, one alarm at the earliest due time, and
 * long-polling consumers woken when work arrives.
 */
export class QueueShard extends DurableObject<Env> {
  /** Time source of the engine; tests move it forward. */
  clock: Clock = { now: () => Date.now() };
  /**
   * Fault injection for tests: the next `receive` calls throw, before applying
   * anything; `poison` makes every `receive` that carries a message with this text throw;
   * `d1` replaces the D1 binding history is written to (`unavailableD1` in ./flusher: D1 is down).
   */
  faults: { receive: number; poison: string; d1: D1Database | null } = { receive: 0, poison: "", d1: null };
  private readonly store: SqlStore;
  private engine!: ShardEngine;
  private alarmAt: number | null = null;
  private requests = 0;
  private waiters = new Set<() => void>();
  /** consumer frames held for the next turn, to share its commit (see `webSocketMessage`) */
  private readonly frames = new NextTurn();
  /** consumers that said they stopped: their long polls end empty, and leases for them answer none until then */
  private stopped = new Map<string, number>();
  private readonly history: HistoryFlusher;
  /** pushes to the tenant's MetricsHub (live metrics) */
  private readonly live = new LivePusher(
    (batch) => hubOf(this.env, this.engine.tenant!).publish(batch),
    () => {
      const a = this.engine.address;
      if (!a || a.tenant === undefined) return null;
      return { queue: a.queue, shard: a.shard, counts: this.engine.counts(), totals: { ...this.engine.totals } };
    },
  );

  /** consumers connected by WebSocket, pushed leases as tasks become ready */
  readonly consumers = new ConsumerSockets(
    this.ctx,
    () => this.engine,
    (fn) => this.call(fn, false),
  );

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new SqlStore(ctx.storage);
    this.history = new HistoryFlusher({
      engine: () => this.engine,
      db: () => this.faults.d1 ?? this.env.DB,
      now: () => this.clock.now(),
      on: config(env).history,
      flushMs: config(env).historyFlushMs,
      written: (tenant) => hubOf(this.env, tenant).historyChanged(tenant),
    });
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage, SHARD_MIGRATIONS);
      this.engine = new ShardEngine(
        this.store,
        { now: () => this.clock.now() },
        {
          random: Math.random,
          token: () => crypto.randomUUID().replaceAll("-", ""),
        },
      );
      this.engine.onCommit = (events) => this.live.note(events);
      this.alarmAt = await ctx.storage.getAlarm();
    });
  }

  /** A consumer socket, forwarded by the API Worker once it has authenticated it (see ConsumerSockets.accept). */
  async fetch(request: Request): Promise<Response> {
    return this.consumers.accept(request, (settings) => this.call(() => this.engine.configure(settings), false));
  }

  /**
   * A consumer's frame. With more than one consumer socket open, it waits for the next turn of the
   * event loop, and every frame that arrives meanwhile runs with it, in one commit (NextTurn).
   */
  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void | Promise<void> {
    if (this.frames.empty && !this.consumers.several()) return this.consumers.message(ws, message);
    return this.frames.hold(() => this.consumers.message(ws, message));
  }

  webSocketClose(ws: WebSocket, code: number): void {
    this.frames.runNow();
    this.consumers.closed(ws, code);
  }

  webSocketError(ws: WebSocket): void {
    this.frames.runNow();
    this.consumers.closed(ws, 1011);
  }

  /** Enqueues; sockets with credit are handed ready tasks in the same transaction (a task handed at once is written once). */
  enqueue(address: ShardAddress, tasks: NewTask[], settings: QueueSettings) {
    return this.call(() => {
      const takers = this.consumers.takers();
      if (takers.length === 0) return this.engine.enqueue(address, tasks, settings);
      const { made, leases } = this.engine.enqueueAndLease(address, tasks, settings, takers);
      const back = this.consumers.handed(takers, leases);
      if (back.size === 0) return made;
      // Handed back (a socket gone before it was told): answered as they stand, pending again.
      return made.map((m) => ("task" in m && back.has(m.task.id) ? { ...m, task: this.engine.get(m.task.id) ?? m.task } : m));
    });
  }

  /** Claims idempotency keys whose home is this shard, for tasks other shards will hold. */
  claim(address: ShardAddress, items: { key: string; shard: number }[], settings: QueueSettings) {
    return this.call(() => this.engine.claim(address, items, settings));
  }

  /** The task id each idempotency key names here (null: none); read-only. */
  lookupKeys(keys: string[]) {
    return this.call(() => this.engine.lookupKeys(keys));
  }

  /** Live metrics: a socket has just subscribed to this shard's queue or one of its tasks; push again. */
  listen(): void {
    this.live.listening();
  }

  /** Messages from other shards of the tenant (dependencies); idempotent. */
  receive(address: ShardAddress, mails: Mail[]) {
    if (this.faults.receive > 0) {
      this.faults.receive--;
      throw new Error("injected fault: receive");
    }
    if (this.faults.poison && mails.some((m) => JSON.stringify(m).includes(this.faults.poison))) throw new Error("injected fault: poison");
    return this.call(() => this.engine.receive(address, mails));
  }

  /** The status of each id (null: no such task here). */
  peek(ids: string[]) {
    return this.call(() => this.engine.peek(ids));
  }

  /** The tasks of these ids that exist here. */
  getMany(ids: string[]) {
    return this.call(() => ids.map((id) => this.engine.get(id)).filter((row): row is TaskRow => row !== null));
  }

  groups() {
    return this.call(() => this.engine.groups());
  }

  seal(id: string) {
    return this.call(() => this.engine.seal(id));
  }

  children(parent: string, after: string | undefined, limit: number) {
    return this.call(() => this.engine.children(parent, after, limit));
  }

  /**
   * Leases up to `max` tasks; with `waitMs`, waits (without polling) until work
   * arrives or time is up. `paused` tells the caller not to wait on other shards.
   */
  async lease(workerId: string, max: number, settings: QueueSettings, waitMs = 0) {
    const deadline = Date.now() + waitMs;
    for (let first = true; ; first = false) {
      const leases = this.leaseNow(workerId, max, settings, first);
      if (!leases.ok || leases.value.leases.length > 0 || leases.value.paused) return leases;
      const left = deadline - Date.now();
      if (left <= 0) return leases;
      await this.waitForWork(left);
    }
  }

  /**
   * A busy consumer's cycle in one call: completes the leases it finished, then leases it up to
   * `max` more. Both run in the same turn, so they are committed together (one write to disk).
   * The completions stand even when the lease answers a problem.
   */
  completeAndLease(items: { id: string; leaseToken: string; result?: string }[], workerId: string, max: number, settings: QueueSettings) {
    const done = this.call(() => this.engine.completeMany(items).map(withoutValue));
    if (!done.ok) return done;
    const got = this.leaseNow(workerId, max, settings, false);
    return got.ok ? { ok: true as const, value: { ...got.value, results: done.value } } : got;
  }

  private leaseNow(workerId: string, max: number, settings: QueueSettings, isRequest: boolean) {
    if (this.hasStopped(workerId)) return outcome(() => ({ leases: [], paused: this.engine.settings.paused, stopped: true }));
    return this.call(
      () => ({ leases: this.engine.lease(workerId, max, settings), paused: this.engine.settings.paused, stopped: false }),
      isRequest,
    );
  }

  /**
   * A consumer is stopping: its long poll here ends at once with nothing, and
   * leases for it answer nothing for the longest a poll can wait. So a task never
   * goes to a poll whose consumer has gone, even when the HTTP disconnect does not
   * reach this object (it does not through every proxy).
   */
  stopWaiting(workerId: string): void {
    this.stopped.set(workerId, Date.now() + STOPPED_MS);
    this.wake();
  }

  private hasStopped(workerId: string): boolean {
    if (this.stopped.size === 0) return false;
    const now = Date.now();
    for (const [id, until] of this.stopped) if (until <= now) this.stopped.delete(id);
    return this.stopped.has(workerId);
  }

  heartbeat(id: string, leaseToken: string, progress?: string) {
    return this.call(() => this.engine.heartbeat(id, leaseToken, progress));
  }

  complete(id: string, leaseToken: string, result?: string) {
    return this.call(() => this.engine.complete(id, leaseToken, result));
  }

  fail(id: string, leaseToken: string, error: string, retryable?: boolean) {
    return this.call(() => this.engine.fail(id, leaseToken, error, retryable));
  }

  release(id: string, leaseToken: string, delayMs?: number) {
    return this.call(() => this.engine.release(id, leaseToken, delayMs));
  }

  completeMany(items: { id: string; leaseToken: string; result?: string }[]) {
    return this.call(() => this.engine.completeMany(items).map(withoutValue));
  }

  failMany(items: { id: string; leaseToken: string; error: string; retryable?: boolean }[]) {
    return this.call(() => this.engine.failMany(items).map(withoutValue));
  }

  releaseMany(items: { id: string; leaseToken: string; delayMs?: number }[]) {
    return this.call(() => this.engine.releaseMany(items).map(withoutValue));
  }

  heartbeatMany(items: { id: string; leaseToken: string; progress?: string }[]) {
    return this.call(() => this.engine.heartbeatMany(items));
  }

  cancel(id: string) {
    return this.call(() => this.engine.cancel(id));
  }

  retry(id: string) {
    return this.call(() => this.engine.retry(id));
  }

  remove(id: string) {
    return this.call(() => this.engine.remove(id));
  }

  purge() {
    return this.call(() => this.engine.purge());
  }

  retryFailed(failedBy: number) {
    return this.call(() => this.engine.retryFailed(failedBy));
  }

  get(id: string): Outcome<TaskRow | null> {
    return this.call(() => this.engine.get(id));
  }

  list(options: { status?: Status; after?: string; limit: number }) {
    return this.call(() => this.engine.list(options));
  }

  configure(settings: QueueSettings) {
    return this.call(() => this.engine.configure(settings));
  }

  stats(): Outcome<ShardStats> {
    return this.call(() => ({
      counts: this.engine.counts(),
      oldestReadyAt: this.engine.oldestReadyAt(),
      totals: { ...this.engine.totals },
      requests: this.requests,
      socketMessages: this.consumers.messages,
      deadMail: this.engine.deadMail(),
      rowsRead: this.store.rowsRead,
      rowsWritten: this.store.rowsWritten,
      storageBytes: this.ctx.storage.sql.databaseSize,
      live: { pushes: this.live.pushes, failures: this.live.failures },
      history: this.history.stats(),
    }));
  }

  async alarm(): Promise<void> {
    this.alarmAt = null;
    this.call(() => this.engine.runDue(), false);
    await this.deliverMail();
    await this.flushHistory();
  }

  /** Sends the outbox to D1 history (see HistoryFlusher). Driven by the alarm; tests call it directly. */
  async flushHistory(): Promise<void> {
    try {
      await this.history.flush();
    } finally {
      this.syncAlarm();
    }
  }

  /** Delivers due messages to other shards (durable/mail-delivery.ts), then keeps the alarm at what is due next. */
  private async deliverMail(): Promise<void> {
    await deliverMail(this.engine, (tenant, queue, shard) => shardOf(this.env, tenant, queue, shard));
    this.syncAlarm();
  }

  /**
   * Runs one engine call, wakes long-polling consumers if any task became ready
   * (enqueue, promotion, retry, release…), and keeps the alarm at the earliest due time.
   */
  private call<T>(fn: () => T, isRequest = true): Outcome<T> {
    this.frames.runNow(); // frames that came first run first
    if (isRequest) this.requests++;
    const ready = this.engine.readySeq;
    try {
      return outcome(fn);
    } finally {
      if (this.engine.readySeq !== ready) this.wake();
      else this.consumers.feed(); // a freed concurrency slot or a resume may let ready tasks go
      this.syncAlarm();
    }
  }

  private syncAlarm(): void {
    const next = this.history.dueAt(this.engine.alarmAt());
    if (next === this.alarmAt) return;
    this.alarmAt = next;
    if (next === null) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(next);
  }

  private wake(): void {
    this.consumers.feed();
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const resolve of waiters) resolve();
  }

  private waitForWork(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}

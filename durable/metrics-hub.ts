import { DurableObject } from "cloudflare:workers";
import type { LiveTask } from "../schema/api-live";
import { STATUSES, type Status } from "../schema/shard";
import type { QueueRecord } from "./queue-registry";
import { findQueue, registryOf, shardNumbers, shardOfTask, shardStats } from "../worker/shards";
import { shardOf } from "./queue-shard";
import { chunksBySize } from "./core/chunks";
import { workerStatus } from "./core/workers";
import type { Totals } from "./core/types";
import { AnalyticsBook, type CacheCounts } from "./analytics-book";

/**
 * Live metrics of one tenant: a MetricsHub Durable Object (`idFromName(tenant)`)
 * holds the tenant's dashboards' and tails' WebSockets with the hibernation
 * API, so an idle dashboard costs nothing, and fans out what shards push. It
 * also keeps the tenant's analytics cache hit and miss counts.
 *
 * Protocol (JSON text frames; docs/API.md "Live"): every server message has
 * `type` and a per-connection `seq` that grows by exactly one. `snapshot`
 * first, then `delta` (a queue's counts by status, and what changed) and
 * `task` (one task's status, progress, result or error; `tasks` when one push
 * brings a socket several). Clients send
 * `{type: "subscribe" | "unsubscribe", queue?, task?}` or `{type: "snapshot"}`.
 */

/** What a shard pushes: its counts now, its totals since it started, and the tasks that changed. */
export interface LiveBatch {
  queue: string;
  shard: number;
  /** the shard's push number: one that arrives after a newer one is old news */
  n: number;
  counts: Partial<Record<Status, number>>;
  totals: Totals;
  tasks: PushedTask[];
}

/** A task's change as a shard pushes it: what the socket sees, and when it happened (ms). */
export type PushedTask = LiveTask & { at: number };

/** One socket's subscriptions and place in its sequence (kept in its attachment, so hibernation keeps it). */
interface Socket {
  tenant: string;
  seq: number;
  /** false until its snapshot is sent: nothing may come before it */
  ready: boolean;
  /** the last `seq` the client acknowledged (-1: it never acks) */
  acked: number;
  /** too far behind: sent nothing until it catches up (acks) or its window passes, then a snapshot */
  behind: boolean;
  /** for a client that never acks: messages sent in the current window, and when it began */
  windowStart: number;
  windowCount: number;
  /** when its last snapshot was sent (ms) */
  snapshotAt: number;
  /** queues whose deltas and task events it hears; null: every queue's deltas */
  queues: string[] | null;
  /** tasks whose events it hears */
  tasks: string[];
}

/** Most subscriptions per socket (queues and tasks each). */
const SUBSCRIPTIONS_MAX = 100;
/** Seconds of completions, failures and enqueues the snapshot's rates cover. */
const RATE_WINDOW = 60;

type Counts = Partial<Record<Status, number>>;

/**
 * How far a socket may fall behind. Workers' WebSockets do not say how much is
 * buffered for a client that does not read, so the client says how far it has
 * read: a client that acks (`{type: "ack", seq}`, as the SDK does) may be
 * `lag` messages behind; one that never acks gets at most `rate` messages per
 * `windowMs`. Past either, it is sent nothing but a `behind` notice, then a
 * fresh snapshot once it catches up: a slow socket costs the hub a bounded
 * buffer (messages of at most FRAME_MAX or one task's change) and never holds
 * up the others. A client may ask for a snapshot (which asks the shards) once
 * per `snapshotMs`. A tenant has at most `sockets` open at once (a new one past
 * that is refused with 429): each costs the hub work on every push.
 */
export const FLOW = { lag: 500, rate: 1_000, windowMs: 10_000, snapshotMs: 2_000, sockets: 1_000 };
/** Characters of task changes in one `tasks` message at most (one task's may be more: its values are each ≤ 4 KiB). */
const FRAME_MAX = 32 * 1024;

export class MetricsHub extends DurableObject<Env> {
  /** the limits above (tests lower them) */
  flow = { ...FLOW };
  /** each shard's latest counts, by `queue:shard` (rebuilt from pushes after the object wakes) */
  private shardCounts = new Map<string, Counts>();
  private shardTotals = new Map<string, Totals>();
  /** per second, for the last RATE_WINDOW seconds: [second, enqueued, completed, failed] */
  private rates: [number, number, number, number][] = [];
  /** each shard's latest push number */
  private pushN = new Map<string, number>();
  /** the tenant's analytics cache version and counters */
  private readonly book = new AnalyticsBook(this.ctx.storage, () => this.env.CACHE);

  /** A WebSocket upgrade from the API Worker, which has authenticated it (`x-edgeq-tenant`). */
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const tenant = request.headers.get("x-edgeq-tenant") ?? "";
    const url = new URL(request.url);
    const queue = url.searchParams.get("queue");
    const task = url.searchParams.get("task");
    if (this.ctx.getWebSockets().length >= this.flow.sockets) return new Response(String(this.flow.sockets), { status: 429 });
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const socket: Socket = {
      tenant,
      seq: 0,
      ready: false,
      acked: -1,
      behind: false,
      windowStart: Date.now(),
      windowCount: 0,
      snapshotAt: 0,
      queues: queue ? [queue] : task ? [] : null,
      tasks: task ? [task] : [],
    };
    server.serializeAttachment(socket);
    await this.snapshotOrClose(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** A shard's push: fans its changes out to the sockets that asked for them. Answers how many sockets there are. */
  publish(batch: LiveBatch): number {
    const sockets = this.ctx.getWebSockets();
    const key = `${batch.queue}:${batch.shard}`;
    if ((this.pushN.get(key) ?? -1) >= batch.n) return sockets.length; // overtaken by a newer push
    this.pushN.set(key, batch.n);
    // A shard not heard of before (a new queue, or since this object woke) counts as empty before:
    // `counts` is always exact; `changes` may then repeat what an earlier delta said.
    const before = this.queueCounts(batch.queue);
    this.shardCounts.set(key, batch.counts);
    this.countRates(key, batch.totals);
    if (sockets.length === 0) return 0;
    const after = this.queueCounts(batch.queue);
    const changes: Counts = {};
    for (const s of STATUSES) if ((after[s] ?? 0) !== (before[s] ?? 0)) changes[s] = (after[s] ?? 0) - (before[s] ?? 0);
    const at = new Date().toISOString();
    // A push carries every status a task passed through since the last one: a socket subscribed to
    // that task hears each; one that hears the whole queue hears only the newest (a busy queue's
    // listeners would otherwise get several messages per task).
    const newest = new Map<string, number>();
    batch.tasks.forEach((t, i) => newest.set(t.id, i));
    for (const ws of sockets) {
      const socket = ws.deserializeAttachment() as Socket;
      if (!socket.ready) continue; // its snapshot, on its way, is newer
      if (this.holdBack(ws, socket)) {
        ws.serializeAttachment(socket);
        continue;
      }
      const hearsQueue = socket.queues === null || socket.queues.includes(batch.queue);
      if (hearsQueue && Object.keys(changes).length > 0)
        this.send(ws, socket, { type: "delta", at, queue: batch.queue, counts: after, changes });
      const queueEvents = socket.queues?.includes(batch.queue) ?? false;
      const heard = batch.tasks
        .filter((t, i) => socket.tasks.includes(t.id) || (queueEvents && newest.get(t.id) === i))
        .map(({ at: when, ...rest }) => ({ ...rest, at: new Date(when).toISOString() }));
      // A frame per push, not per task: under load each frame costs the hub's thread a turn, and they
      // queue. Frames stay under FRAME_MAX, so `lag` frames bound what a socket can leave unread.
      for (const part of chunksBySize(heard, (t) => JSON.stringify(t).length, FRAME_MAX)) {
        if (part.length === 1) {
          const { at: when, ...task } = part[0];
          this.send(ws, socket, { type: "task", at: when, task });
        } else this.send(ws, socket, { type: "tasks", at, tasks: part });
      }
      ws.serializeAttachment(socket);
    }
    return sockets.length;
  }

  /** A shard has written history: the tenant's analytics cache version moves on (see AnalyticsBook). */
  historyChanged(tenant: string): Promise<void> {
    return this.book.historyChanged(tenant);
  }

  async alarm(): Promise<void> {
    await this.book.alarm();
  }

  /** Counts one analytics request of the tenant: answered from the KV cache (hit) or computed (miss). */
  countCache(hit: boolean): Promise<void> {
    return this.book.count(hit);
  }

  cacheStats(): Promise<CacheCounts> {
    return this.book.stats();
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const socket = ws.deserializeAttachment() as Socket;
    let msg: { type?: unknown; queue?: unknown; task?: unknown };
    try {
      msg = JSON.parse(typeof message === "string" ? message : new TextDecoder().decode(message));
    } catch {
      return this.refuse(ws, socket, "Messages are JSON: {type: subscribe | unsubscribe | snapshot | ack, queue?, task?, seq?}.");
    }
    const queue = typeof msg.queue === "string" && msg.queue.length <= 48 ? msg.queue : undefined;
    const task = typeof msg.task === "string" && msg.task.length <= 120 ? msg.task : undefined;
    if (msg.type === "snapshot") {
      // A snapshot asks every shard it covers: one per socket per `snapshotMs`.
      if (Date.now() - socket.snapshotAt < this.flow.snapshotMs)
        return this.refuse(ws, socket, `At most one snapshot per ${this.flow.snapshotMs / 1000} s.`);
      socket.ready = false; // nothing until the snapshot
      ws.serializeAttachment(socket);
      return this.snapshotOrClose(ws);
    }
    if (msg.type === "ack") {
      const seq = (msg as { seq?: unknown }).seq;
      if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 0 || seq > socket.seq)
        return this.refuse(ws, socket, "ack carries a seq this connection has sent.");
      socket.acked = Math.max(socket.acked, seq);
      const caughtUp = socket.behind && socket.seq - socket.acked <= this.flow.lag / 2;
      if (caughtUp) {
        socket.behind = false;
        socket.ready = false; // nothing until the snapshot
      }
      ws.serializeAttachment(socket);
      if (caughtUp) await this.snapshotOrClose(ws);
      return;
    }
    if (msg.type !== "subscribe" && msg.type !== "unsubscribe")
      return this.refuse(ws, socket, `Unknown message type ${JSON.stringify(msg.type)}.`);
    if (queue === undefined && task === undefined) return this.refuse(ws, socket, "subscribe and unsubscribe name a queue or a task.");
    if (msg.type === "subscribe") {
      const queues = queue === undefined ? (socket.queues ?? []) : [...new Set([...(socket.queues ?? []), queue])];
      const tasks = task === undefined ? socket.tasks : [...new Set([...socket.tasks, task])];
      if (queues.length > SUBSCRIPTIONS_MAX || tasks.length > SUBSCRIPTIONS_MAX)
        return this.refuse(ws, socket, `At most ${SUBSCRIPTIONS_MAX} queues and ${SUBSCRIPTIONS_MAX} tasks per socket.`);
      socket.queues = queues;
      socket.tasks = tasks;
    } else {
      if (queue !== undefined) socket.queues = (socket.queues ?? []).filter((q) => q !== queue);
      if (task !== undefined) socket.tasks = socket.tasks.filter((t) => t !== task);
    }
    this.send(ws, socket, { type: msg.type === "subscribe" ? "subscribed" : "unsubscribed", queues: socket.queues, tasks: socket.tasks });
    // Saved before anything is awaited: other handlers may send on this socket meanwhile.
    ws.serializeAttachment(socket);
    if (msg.type === "subscribe") {
      const record = queue === undefined ? null : await findQueue(this.env, socket.tenant, queue);
      await this.wakeShards(socket.tenant, record ? [record] : [], task === undefined ? [] : [task]);
    }
  }

  /** Sends a snapshot; a socket whose snapshot cannot be made is closed (its client reconnects), never left silent. */
  private async snapshotOrClose(ws: WebSocket): Promise<void> {
    try {
      await this.sendSnapshot(ws);
    } catch {
      try {
        ws.close(1011, "the snapshot could not be made; reconnect");
      } catch {
        // already closed
      }
    }
  }

  webSocketClose(ws: WebSocket, code: number): void {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closing");
    } catch {
      // already closed
    }
  }

  /**
   * Whether to send this socket nothing now (see FLOW). Marks it behind, with one notice, when it
   * passes its bound; a non-acking socket whose window has passed gets a snapshot and goes on.
   */
  private holdBack(ws: WebSocket, socket: Socket): boolean {
    const now = Date.now();
    if (socket.acked < 0 && now - socket.windowStart >= this.flow.windowMs) {
      socket.windowStart = now;
      socket.windowCount = 0;
      if (socket.behind) {
        socket.behind = false;
        socket.ready = false; // nothing until the snapshot
        ws.serializeAttachment(socket);
        void this.snapshotOrClose(ws);
        return true;
      }
    }
    if (socket.behind) return true;
    const over = socket.acked >= 0 ? socket.seq - socket.acked >= this.flow.lag : socket.windowCount >= this.flow.rate;
    if (!over) return false;
    socket.behind = true;
    this.send(ws, socket, {
      type: "behind",
      detail:
        socket.acked >= 0
          ? "Too far behind: ack to catch up; a snapshot follows."
          : "Too many messages for a client that does not ack: a snapshot follows when this window ends.",
    });
    return true;
  }

  private refuse(ws: WebSocket, socket: Socket, detail: string): void {
    this.send(ws, socket, { type: "error", detail });
    ws.serializeAttachment(socket);
  }

  private send(ws: WebSocket, socket: Socket, message: Record<string, unknown>): void {
    socket.seq++;
    socket.windowCount++;
    try {
      ws.send(JSON.stringify({ ...message, seq: socket.seq }));
    } catch {
      // a socket that is closing: its close handler tidies up
    }
  }

  /** Depth per queue and status (asked of the shards, so it is exact after a wake), rates, active workers. */
  private async sendSnapshot(ws: WebSocket): Promise<void> {
    const socket = ws.deserializeAttachment() as Socket;
    const { tenant } = socket;
    const queues: { name: string; counts: Counts }[] = [];
    let active = 0;
    if (tenant) {
      const registry = registryOf(this.env, tenant);
      const records = (await registry.list(undefined, 1000)).filter((r) => socket.queues === null || socket.queues.includes(r.name));
      for (const record of records) {
        const shards = await shardStats(this.env, tenant, record);
        for (const s of shards) this.shardCounts.set(`${record.name}:${s.shard}`, s.counts);
        queues.push({ name: record.name, counts: this.queueCounts(record.name) });
      }
      const now = Date.now();
      for (const w of await registry.listWorkers(undefined, 1000))
        if (workerStatus(w.lastSeenAt, w.currentTasks.length, now) === "active") active++;
      await this.wakeShards(tenant, records, socket.tasks);
    }
    const fresh = ws.deserializeAttachment() as Socket; // subscriptions may have changed while this was read
    fresh.ready = true;
    fresh.behind = false;
    fresh.snapshotAt = Date.now();
    this.send(ws, fresh, { type: "snapshot", at: new Date().toISOString(), queues, rates: this.ratesPerMinute(), workers: { active } });
    ws.serializeAttachment(fresh);
  }

  /**
   * Tells the shards of these queues and tasks that someone listens: a shard whose last push
   * found nobody stays quiet for a while, and would otherwise miss this socket's first changes.
   */
  private async wakeShards(tenant: string, queues: QueueRecord[], tasks: string[]): Promise<void> {
    const stubs = queues.flatMap((q) => shardNumbers(q).map((n) => shardOf(this.env, tenant, q.name, n)));
    for (const id of tasks) {
      const stub = await shardOfTask(this.env, tenant, id); // null for an id a client made up: it wakes no object
      if (stub) stubs.push(stub);
    }
    await Promise.all(stubs.map((stub) => stub.listen().catch(() => undefined)));
  }

  private queueCounts(queue: string): Counts {
    const out: Counts = {};
    for (const [key, counts] of this.shardCounts) {
      if (key.slice(0, key.lastIndexOf(":")) !== queue) continue;
      for (const s of STATUSES) if (counts[s]) out[s] = (out[s] ?? 0) + counts[s]!;
    }
    return out;
  }

  /** Adds what a shard's totals grew by since its last push to this second's rates. */
  private countRates(key: string, totals: Totals): void {
    const last = this.shardTotals.get(key);
    this.shardTotals.set(key, totals);
    if (!last) return;
    const grew = (k: keyof Totals) => Math.max(0, totals[k] - last[k]);
    const second = Math.floor(Date.now() / 1000);
    let bucket = this.rates[this.rates.length - 1];
    if (!bucket || bucket[0] !== second) {
      bucket = [second, 0, 0, 0];
      this.rates.push(bucket);
      while (this.rates.length > 0 && this.rates[0][0] <= second - RATE_WINDOW) this.rates.shift();
    }
    bucket[1] += grew("enqueued");
    bucket[2] += grew("completed");
    bucket[3] += grew("failed");
  }

  private ratesPerMinute() {
    const since = Math.floor(Date.now() / 1000) - RATE_WINDOW;
    const recent = this.rates.filter((r) => r[0] > since);
    const sum = (i: 1 | 2 | 3) => recent.reduce((n, r) => n + r[i], 0);
    return { enqueued: sum(1), completed: sum(2), failed: sum(3), seconds: RATE_WINDOW };
  }
}

export function hubOf(env: Env, tenant: string) {
  return env.METRICS_HUB.get(env.METRICS_HUB.idFromName(tenant));
}

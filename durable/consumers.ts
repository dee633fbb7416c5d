import type { QueueSettings } from "../schema/shard";
import { CLOSE_RECONNECT, CONSUMER_SOCKET_MS, ConsumerFrame, LIMITS } from "../schema/api";
import { completeItems, failItems, heartbeatItems, heartbeatView, itemView, leaseView } from "../worker/lease-items";
import { problemBody, toQueueError, validationError } from "../worker/problem";
import { QueueError } from "./core/errors";
import type { ShardEngine } from "./core/engine";
import type { Lease } from "./core/types";
import { unwrap, type Outcome } from "./outcome";

/** One consumer socket's state, kept in its attachment so hibernation keeps it. */
interface Consumer {
  workerId: string;
  /** leases the consumer will take now */
  credit: number;
  /** when the socket must be opened again (its credential checked again) */
  until: number;
}

const TAG = "consume";

/** A socket with credit, as an enqueue's transaction may lease to it. */
export interface Taker {
  ws: WebSocket;
  workerId: string;
  max: number;
}

/**
 * A shard's consumer sockets (`GET /queues/{queue}/consume`): accepted with the
 * hibernation API, so an idle consumer costs nothing; a consumer grants
 * credit, and the shard pushes leases the moment tasks are ready, with no
 * request per lease and no Worker in between. See schema/api-consume.ts.
 */
export class ConsumerSockets {
  /** messages received (Cloudflare bills incoming WebSocket messages at 20:1) */
  messages = 0;
  /** how long a socket stays open (tests shorten it) */
  lifetimeMs = CONSUMER_SOCKET_MS;
  private readonly state = new Map<WebSocket, Consumer>();
  private feeding = false;
  /** whether a socket may have credit left (unknown after hibernation: yes) */
  private hungry = true;
  /** where the next feed starts, so no socket is always served first */
  private turn = 0;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly engine: () => ShardEngine,
    /** runs an engine call as the shard runs its RPCs (then wakes consumers, keeps the alarm), counted as a socket message's */
    private readonly run: <T>(fn: () => T) => Outcome<T>,
  ) {}

  /**
   * Accepts an upgrade the API Worker has authenticated (`/consume?workerId=`); its
   * `x-edgeq-settings` carries the queue's settings as the Worker knows them, handed to `configure`.
   */
  accept(request: Request, configure: (settings: QueueSettings) => void): Response {
    const url = new URL(request.url);
    if (url.pathname !== "/consume") return new Response("not found", { status: 404 });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const settings = request.headers.get("x-edgeq-settings");
    if (settings) configure(JSON.parse(settings) as QueueSettings);
    const workerId = url.searchParams.get("workerId") ?? "";
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [TAG]);
    const consumer: Consumer = { workerId, credit: 0, until: Date.now() + this.lifetimeMs };
    server.serializeAttachment(consumer);
    this.state.set(server, consumer);
    return new Response(null, { status: 101, webSocket: client });
  }

  message(ws: WebSocket, data: string | ArrayBuffer): void {
    this.messages++;
    const consumer = this.consumer(ws);
    if (Date.now() >= consumer.until) {
      this.expire(ws);
      return;
    }
    let ref: number | undefined;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
      } catch {
        throw new QueueError("malformed_json", "A frame must be one JSON object.");
      }
      ref = (raw as { ref?: unknown })?.ref as number | undefined;
      const parsed = ConsumerFrame.safeParse(raw);
      if (!parsed.success) throw validationError(parsed.error, "json");
      const frame = parsed.data;
      if (frame.type === "stop") {
        consumer.credit = 0;
        this.send(ws, { type: "results", ref: frame.ref, results: [] });
      } else if (frame.type !== "credit") {
        this.send(ws, { type: "results", ref: frame.ref, results: this.apply(frame) });
      }
      if (frame.type !== "stop" && frame.credit !== undefined) {
        consumer.credit = Math.min(LIMITS.leaseMax, Math.max(0, consumer.credit + frame.credit));
        this.hungry ||= consumer.credit > 0;
      }
      ws.serializeAttachment(consumer);
    } catch (e) {
      const problem = problemBody(toQueueError(e));
      this.send(ws, { type: "error", ...(typeof ref === "number" ? { ref } : {}), problem });
    }
    this.feed();
  }

  /**
   * Closes a socket past its lifetime (4000): it answers nothing more, and the consumer sends what
   * it had in flight again on a new socket (or over HTTP), authenticated again.
   */
  private expire(ws: WebSocket): void {
    const consumer = this.consumer(ws);
    consumer.credit = 0;
    ws.serializeAttachment(consumer);
    try {
      ws.close(CLOSE_RECONNECT, "socket lifetime reached; open another");
    } catch {
      // already closing
    }
  }

  /** The socket closed (or failed): its credit goes with it; its leases run until they are completed or expire. */
  closed(ws: WebSocket, code: number): void {
    this.state.delete(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closing");
    } catch {
      // already closed
    }
  }

  /** More than one consumer socket is open. */
  several(): boolean {
    return this.ctx.getWebSockets(TAG).length > 1;
  }

  /**
   * Pushes ready tasks to the sockets with credit, in turn, until either runs out.
   * The shard calls it after every change (an enqueue, a completion that frees a
   * concurrency slot, a resume); it costs nothing while no socket has credit or no task is pending.
   */
  feed(): void {
    if (this.feeding || !this.hungry) return; // a lease while feeding changes the shard too
    // Nothing pending (counted in memory, due tasks promoted first): no lease, its transaction and
    // its query, to find that out. Most calls of a consumer that keeps up (each completion) end here.
    if (!this.engine().counts().pending) return;
    this.pushing(() => {
      for (const { ws, workerId, max } of this.inTurn()) {
        const engine = this.engine();
        const leased = this.run(() => engine.lease(workerId, max, engine.settings));
        if (!leased.ok || leased.value.length === 0) break; // nothing ready (or paused)
        this.push(ws, leased.value);
      }
    });
  }

  /**
   * The sockets an enqueue may hand its tasks to in its own transaction (ShardEngine.enqueueAndLease),
   * in the order `feed` would serve them, each with its credit; `handed` sends what they got.
   */
  takers(): Taker[] {
    return this.feeding || !this.hungry ? [] : this.inTurn();
  }

  /**
   * Sends each taker the leases an enqueue's transaction gave it (see `takers`). Answers the ids
   * handed back because their socket was gone before it could be told (they are pending again).
   */
  handed(takers: Taker[], leases: Lease[][]): Set<string> {
    const back = new Set<string>();
    this.pushing(() =>
      takers.forEach(({ ws }, i) => {
        if (leases[i].length > 0 && !this.push(ws, leases[i])) for (const l of leases[i]) back.add(l.task.id);
      }),
    );
    return back;
  }

  /** Pushes leases (`send`): no feed starts inside it; after it, whether any socket still has credit. */
  private pushing(send: () => void): void {
    this.feeding = true;
    try {
      send();
    } finally {
      this.feeding = false;
      this.hungry = this.ctx.getWebSockets(TAG).some((ws) => this.consumer(ws).credit > 0);
    }
  }

  /** The live sockets with credit, from a rotating start (so no socket is always served first); those past their lifetime are closed. */
  private inTurn(): Taker[] {
    const sockets = this.ctx.getWebSockets(TAG);
    const out: Taker[] = [];
    const start = sockets.length === 0 ? 0 : this.turn++ % sockets.length;
    for (let i = 0; i < sockets.length; i++) {
      const ws = sockets[(start + i) % sockets.length];
      const consumer = this.consumer(ws);
      if (Date.now() >= consumer.until) {
        // An idle consumer sends nothing, so its socket's end comes when there is work for it.
        this.expire(ws);
        continue;
      }
      if (consumer.credit > 0) out.push({ ws, workerId: consumer.workerId, max: consumer.credit });
    }
    return out;
  }

  /** Sends a socket its leases, which spends that much credit; false when it was gone and they were handed back at once. */
  private push(ws: WebSocket, leases: Lease[]): boolean {
    const consumer = this.consumer(ws);
    consumer.credit -= leases.length;
    ws.serializeAttachment(consumer);
    if (this.send(ws, { type: "leases", leases: leases.map(leaseView) })) return true;
    // Gone before it could be told: the tasks go back at once rather than wait out their leases.
    const engine = this.engine();
    this.run(() => engine.releaseMany(leases.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken, delayMs: 0 }))));
    return false;
  }

  private apply(frame: Exclude<ConsumerFrame, { type: "credit" | "stop" }>): object[] {
    const engine = this.engine();
    switch (frame.type) {
      case "complete":
        return unwrap(this.run(() => engine.completeMany(completeItems(frame.items)))).map((r) => itemView(r));
      case "fail":
        return unwrap(this.run(() => engine.failMany(failItems(frame.items)))).map((r) => itemView(r));
      case "heartbeat":
        return unwrap(this.run(() => engine.heartbeatMany(heartbeatItems(frame.items)))).map(heartbeatView);
      case "release":
        return unwrap(this.run(() => engine.releaseMany(frame.items))).map((r) => itemView(r));
    }
  }

  private consumer(ws: WebSocket): Consumer {
    let consumer = this.state.get(ws);
    if (!consumer) {
      consumer = ws.deserializeAttachment() as Consumer; // after hibernation
      this.state.set(ws, consumer);
    }
    return consumer;
  }

  /** false when the socket has closed meanwhile */
  private send(ws: WebSocket, message: object): boolean {
    try {
      ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }
}

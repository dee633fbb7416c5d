import { ShardSocket } from "./consumer-socket";
import { EdgeqError } from "./errors";
import type { EdgeqClient } from "./index";
import type { WebSocketConstructor } from "./live";
import type { Lease } from "./types";

/** What the sockets need of the `Worker` that holds them. */
export interface SocketsHost {
  client: EdgeqClient;
  queue: string;
  workerId: string;
  running(): boolean;
  /** how many tasks the worker can take now (free slots, and room to hold ahead) */
  want(): number;
  /** leases a shard pushed */
  arrived(leases: Lease[]): void;
  error(e: Error): void;
}

/** Credit grants per frame at most (the server's per-socket bound too). */
const CREDIT_MAX = 1000;
/** With several shards, how long credit may sit unused on quiet shards before it moves on (a multi-shard long poll's wait). */
const REBALANCE_MS = 1000;
/** A sleep that does not keep a Node process alive (a bound on a wait, not work to do). */
export const bound = (ms: number) =>
  new Promise<void>((r) => {
    const timer = setTimeout(r, ms) as { unref?: () => void };
    timer.unref?.();
  });

/**
 * A `Worker`'s consumer sockets, one per shard of its queue: opened, reopened
 * when they drop, grown when the queue gains shards, and granted the worker's
 * credit (split over the shards, never more in all).
 */
export class ShardSockets {
  private sockets: ShardSocket[] = [];
  /** the shard each task in hand came from (its socket takes its completion) */
  private readonly shardOf = new Map<string, number>();
  /** which socket the remainder of an uneven split goes to first */
  private turn = 0;
  /** when leases last arrived on a socket (ms) */
  private lastArrival = 0;
  private readonly rebalanceTimer: ReturnType<typeof setInterval>;
  private topUpTimer: ReturnType<typeof setTimeout> | null = null;
  private growing: Promise<void> | null = null;

  private constructor(
    private readonly host: SocketsHost,
    private readonly WS: WebSocketConstructor,
    shards: number,
  ) {
    this.sockets = Array.from({ length: shards }, (_, n) => this.socketTo(n));
    this.rebalanceTimer = setInterval(() => this.rebalance(), REBALANCE_MS);
  }

  /** Opens a socket to each shard of the queue; throws (leaving none open) if one does not open. */
  static async open(host: SocketsHost, WS: WebSocketConstructor): Promise<ShardSockets> {
    const sockets = new ShardSockets(host, WS, await shardCount(host));
    const failed = (await Promise.allSettled(sockets.sockets.map((s) => sockets.connect(s)))).find((r) => r.status === "rejected");
    if (failed) {
      sockets.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    sockets.topUp();
    return sockets;
  }

  /** The open socket of the shard a task in hand came from, or null (its calls go over HTTP). */
  socketOf(taskId: string): ShardSocket | null {
    const socket = this.sockets[this.shardOf.get(taskId) ?? -1];
    return socket?.open ? socket : null;
  }

  /** A task no longer in hand. */
  forget(taskId: string): void {
    this.shardOf.delete(taskId);
  }

  /** Credit to grant this socket now (what its share lacks). */
  creditFor(socket: ShardSocket): number {
    return Math.max(0, this.shareOf(socket) - socket.credit);
  }

  /** Grants every open socket its share. */
  topUp(): void {
    if (this.topUpTimer) clearTimeout(this.topUpTimer);
    this.topUpTimer = null;
    for (const s of this.sockets) if (s.open) s.grant(this.creditFor(s));
  }

  /**
   * Room was made (a task ended). While a socket holds less than half its share, the credit goes
   * out at once, in one frame for the tasks that ended in this turn, not with the next completions:
   * held back until the completions' flush (every `flushMs`), it left the worker idle between a
   * push and the next (measured with no-op tasks at concurrency 16, 5,578–7,126 tasks/s against
   * 9,628–11,158 sent at once; bench/vs-bullmq.mjs's SDK shape, direct stack). While every socket
   * holds half its share or more, the shard can push as much as the worker can start, so the
   * credit rides in the completions' frame: a worker that is mostly idle sends one frame per task,
   * not two.
   */
  soon(): void {
    if (!this.sockets.some((s) => s.open && s.credit * 2 < this.shareOf(s))) return;
    this.topUpTimer ??= setTimeout(() => this.topUp(), 0);
  }

  /** Opens sockets to shards the queue has gained since (checked with each worker heartbeat; one check at a time). */
  grow(): Promise<void> {
    this.growing ??= (async () => {
      const shards = await shardCount(this.host);
      for (let n = this.sockets.length; n < shards && this.host.running(); n++) {
        const socket = this.socketTo(n);
        this.sockets[n] = socket; // listed before it opens, so close() closes it whenever it opens
        try {
          await this.connect(socket);
        } catch (e) {
          this.sockets.length = n; // tried again at the next check
          throw e;
        }
      }
      this.topUp();
    })().finally(() => (this.growing = null));
    return this.growing;
  }

  /** No more leases: each shard answers `stop` after every lease it pushed before it (at most 5 s). */
  async stop(): Promise<void> {
    const stops = this.sockets.map((s) => s.request("stop").catch(() => undefined));
    await Promise.race([Promise.all(stops), bound(5000)]);
  }

  close(): void {
    if (this.topUpTimer) clearTimeout(this.topUpTimer);
    clearInterval(this.rebalanceTimer);
    for (const s of this.sockets) s.close();
  }

  private connect(socket: ShardSocket): Promise<void> {
    return socket.connect(this.host.client, this.host.queue, this.host.workerId, this.WS);
  }

  private socketTo(shard: number): ShardSocket {
    return new ShardSocket(shard, {
      leases: (_socket, leases) => {
        this.lastArrival = Date.now();
        this.turn++; // the next slot's credit goes to the next shard: several shards are served in turn
        for (const l of leases) this.shardOf.set(l.task.id, shard);
        this.host.arrived(leases);
      },
      closed: (socket, code) => void this.reopen(socket, code),
      error: (e) => this.host.error(e),
    });
  }

  /** A socket closed under us: open it again (at once when the server asked, else with backoff) while running. */
  private async reopen(socket: ShardSocket, code: number): Promise<void> {
    for (let attempt = code === 4000 ? 0 : 1; this.host.running(); attempt++) {
      if (attempt > 0) await bound(Math.random() * Math.min(5000, 250 * 2 ** attempt));
      if (!this.host.running()) return;
      try {
        await this.connect(socket);
        this.topUp();
        return;
      } catch (e) {
        if (!this.host.running()) return; // closed meanwhile: the socket closed itself
        this.host.error(e as Error);
      }
    }
  }

  /**
   * This open socket's share of what the worker can take now: `want()` split over the open
   * sockets, never more in all (so several shards cannot push more than it can hold). The
   * remainder of an uneven split goes to the sockets from `turn` on, which moves when credit sits
   * unused on a shard with nothing ready (`rebalance`).
   */
  private shareOf(socket: ShardSocket): number {
    const open = this.sockets.filter((s) => s.open);
    if (!this.host.running() || open.length === 0) return 0;
    const total = Math.max(0, this.host.want());
    const place = (open.indexOf(socket) - (this.turn % open.length) + open.length) % open.length;
    return Math.min(CREDIT_MAX, Math.floor(total / open.length) + (place < total % open.length ? 1 : 0));
  }

  /**
   * With several shards: while the worker could take tasks and none has arrived for REBALANCE_MS,
   * the remainder of its credit moves on to the next shards (what a socket holds past its new share
   * is taken back), as a long poll moves on from a quiet shard.
   */
  private rebalance(): void {
    const open = this.sockets.filter((s) => s.open);
    // Only while some shard has no credit at all (fewer free slots than shards): otherwise every shard can push already.
    const want = this.host.want();
    if (!this.host.running() || want <= 0 || want >= open.length || Date.now() - this.lastArrival < REBALANCE_MS) return;
    this.turn++;
    for (const s of open) s.take(s.credit - this.shareOf(s));
    this.topUp();
  }
}

/** How many shards the queue has (1 for a queue not created yet). */
async function shardCount(host: SocketsHost): Promise<number> {
  try {
    const q = await host.client.call<{ settings: { shards: number } }>("GET", `/queues/${encodeURIComponent(host.queue)}`);
    return q.settings.shards;
  } catch (e) {
    if (e instanceof EdgeqError && e.status === 404) return 1;
    throw e;
  }
}

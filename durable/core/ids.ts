/**
 * Task ids: a monotonic ULID (time-sortable, 26 chars) followed by the shard
 * and the queue, `01JE5V2Q7ZK3M8N4P6R9S0T1VW.0.email`, so one id finds its
 * shard with no directory lookup. Queue names cannot contain a dot.
 */

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
export const QUEUE_NAME = /^[a-z0-9][a-z0-9_-]{0,47}$/;
const TASK_ID = /^([0-9A-HJKMNP-TV-Z]{26})\.(\d{1,4})\.([a-z0-9][a-z0-9_-]{0,47})$/;

export interface TaskAddress {
  queue: string;
  shard: number;
}

export function parseTaskId(id: string): TaskAddress | null {
  const m = TASK_ID.exec(id);
  return m ? { shard: Number(m[2]), queue: m[3] } : null;
}

/** Monotonic ULIDs: ids made in the same millisecond still sort in creation order. */
export class UlidFactory {
  private lastTime = -1;
  private lastRandom: number[] = [];
  constructor(private readonly random: () => number) {}

  next(now: number): string {
    if (now <= this.lastTime) {
      this.increment();
    } else {
      this.lastTime = now;
      this.lastRandom = Array.from({ length: 16 }, () => Math.floor(this.random() * 32));
    }
    return ulidTimePrefix(this.lastTime) + this.lastRandom.map((d) => CROCKFORD[d]).join("");
  }

  private increment(): void {
    for (let i = this.lastRandom.length - 1; i >= 0; i--) {
      if (this.lastRandom[i] < 31) {
        this.lastRandom[i]++;
        return;
      }
      this.lastRandom[i] = 0;
    }
  }
}

/** The first ten characters of every id made at `ms`: ids made before it sort below it. */
export function ulidTimePrefix(ms: number): string {
  let time = "";
  let t = Math.max(0, Math.floor(ms));
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}

/** When the id was made (ms since epoch), from its ULID's first ten characters. */
export function idTime(id: string): number {
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + CROCKFORD.indexOf(id[i]);
  return t;
}

export function taskId(ulid: string, shard: number, queue: string): string {
  return `${ulid}.${shard}.${queue}`;
}

/** FNV-1a, 32 bit: spreads idempotency keys over shards, the same on every runtime. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The home shard of a key (an idempotency key, or a group key): the same on every runtime. */
export function shardForKey(key: string, shards: number): number {
  return hash32(key) % shards;
}

/** A shard of a queue as one string, `queue:shard`: how mail names its receiver, and a map key. */
export function shardKey(at: TaskAddress): string {
  return `${at.queue}:${at.shard}`;
}

export function parseShardKey(target: string): TaskAddress {
  const cut = target.lastIndexOf(":");
  return { queue: target.slice(0, cut), shard: Number(target.slice(cut + 1)) };
}

/**
 * Items grouped by the shard of the task id `idOf` names, so each shard gets one
 * call; items whose id edgeq could not have made are left out. For ids the
 * system made (read from a shard); the Worker checks ids from a caller first (`groupByKnownShard`).
 */
export function groupByShard<T>(items: T[], idOf: (item: T) => string): { queue: string; shard: number; items: T[] }[] {
  const groups = new Map<string, { queue: string; shard: number; items: T[] }>();
  for (const item of items) {
    const at = parseTaskId(idOf(item));
    if (!at) continue;
    const key = shardKey(at);
    const group = groups.get(key) ?? groups.set(key, { queue: at.queue, shard: at.shard, items: [] }).get(key)!;
    group.items.push(item);
  }
  return [...groups.values()];
}

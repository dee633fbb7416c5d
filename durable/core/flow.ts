import type { GroupLimits, QueueSettings, StartLimit } from "../../schema/shard";

/**
 * Flow control, pure: how a queue-wide limit is split over shards, and the
 * sliding window of start times that keeps starts under a StartLimit.
 */

/** Shard `index`'s part of a queue-wide `total` over `shards` shards; the parts add up to `total`. */
export function shareOf(total: number, shards: number, index: number): number {
  return Math.floor(total / shards) + (index < total % shards ? 1 : 0);
}

/** A queue-wide start limit as shard `index` enforces it. */
export function startShare(limit: StartLimit, shards: number, index: number): StartLimit {
  return { count: shareOf(limit.count, shards, index), perMs: limit.perMs };
}

/**
 * Recent start times, oldest first. `room` says how many more may start at `now`
 * so that no window of `perMs` (ending at or after now) holds more than `count`.
 */
export class StartWindow {
  constructor(public times: number[] = []) {}

  room(limit: StartLimit, now: number): number {
    this.forget(limit, now);
    return Math.max(0, limit.count - this.times.length);
  }

  record(at: number): void {
    this.times.push(at);
  }

  forget(limit: StartLimit, now: number): void {
    let drop = 0;
    while (drop < this.times.length && this.times[drop] <= now - limit.perMs) drop++;
    if (drop > 0) this.times = this.times.slice(drop);
  }
}

/** The limits that apply to group `key` ("" is the tasks without a group, which have none). */
export function limitsOf(settings: QueueSettings, key: string): GroupLimits | null {
  if (key === "") return null;
  const groups = settings.groupLimits;
  return groups?.overrides[key] ?? groups?.default ?? null;
}

/** Whether a settings object asks for any flow control at all. */
export function hasFlowControl(settings: QueueSettings): boolean {
  const g = settings.groupLimits;
  return (settings.concurrency ?? null) !== null || (settings.startLimit ?? null) !== null || !!g?.default || Object.keys(g?.overrides ?? {}).length > 0;
}

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
 * Recent starts as `[time, how many]`, oldest first (a lease starts its tasks at
 * one time, so this grows with lease calls, not with tasks). `room` says how many
 * more may start at `now` so that no window of `perMs` holds more than `count`.
 */
export class StartWindow {
  constructor(public entries: [number, number][] = []) {}

  room(limit: StartLimit, now: number): number {
    this.forget(limit, now);
    let used = 0;
    for (const [, n] of this.entries) used += n;
    return Math.max(0, limit.count - used);
  }

  record(at: number, n = 1): void {
    const last = this.entries[this.entries.length - 1];
    if (last && last[0] === at) last[1] += n;
    else this.entries.push([at, n]);
  }

  forget(limit: StartLimit, now: number): void {
    let drop = 0;
    while (drop < this.entries.length && this.entries[drop][0] <= now - limit.perMs) drop++;
    if (drop > 0) this.entries = this.entries.slice(drop);
  }
}

/** The limits that apply to group `key` ("" is the tasks without a group, which have none). */
export function limitsOf(settings: QueueSettings, key: string): GroupLimits | null {
  if (key === "") return null;
  return settings.groupLimits.overrides[key] ?? settings.groupLimits.default;
}

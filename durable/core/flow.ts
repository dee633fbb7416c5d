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

/** At most this many entries per window, whatever the limit's count: the window is stored in one row. */
export const WINDOW_SLOTS = 128;

/**
 * Recent starts as `[time, how many]`, oldest first. `room` says how many more
 * may start at `now` so that no window of `perMs` holds more than `count`.
 * Times are rounded up to a slot of `perMs / WINDOW_SLOTS`, so a window holds at
 * most WINDOW_SLOTS + 1 entries; rounding up makes a start count a little longer,
 * never shorter, so the limit still holds exactly (it may admit slightly less).
 */
export class StartWindow {
  constructor(public entries: [number, number][] = []) {}

  room(limit: StartLimit, now: number): number {
    this.forget(limit, now);
    let used = 0;
    for (const [, n] of this.entries) used += n;
    return Math.max(0, limit.count - used);
  }

  record(limit: StartLimit, now: number, n = 1): void {
    const slot = Math.max(1, Math.ceil(limit.perMs / WINDOW_SLOTS));
    const at = Math.ceil(now / slot) * slot;
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
  const { overrides } = settings.groupLimits;
  // Own properties only: a group named "constructor" or "__proto__" is a group, not a member of Object.prototype.
  return Object.hasOwn(overrides, key) ? overrides[key] : settings.groupLimits.default;
}

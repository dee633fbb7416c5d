import type { GroupLimits, QueueSettings, StartLimit, Status, TaskRow } from "../../schema/shard";
import type { ShardState } from "./state";
import type { GroupDepth } from "./types";

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

const STARTS_KEY = "start_windows";

/** What the shard knows of its running and ready work by group, kept current by every transition once loaded. */
interface FlowCounts {
  running: number;
  /** per group ("" = no group): tasks pending and running */
  groups: Map<string, { pending: number; running: number }>;
  /** start times under the queue's start limit, and under each group's */
  starts: StartWindow;
  groupStarts: Map<string, StartWindow>;
  /** the group served last, so the next lease starts after it */
  cursor: string;
}

/**
 * Flow control inside one shard: which ready tasks a lease may take under the
 * queue's concurrency cap and start limit (this shard's part of them) and each
 * group's limits, with groups taking turns. Counts live in memory, read once.
 */
export class FlowControl {
  private counts: FlowCounts | null = null;

  constructor(private readonly shard: ShardState) {}

  /** Drops the counts (a rolled-back call moved them): they are read again when next needed. */
  forget(): void {
    this.counts = null;
  }

  /** Each group with ready or running tasks here, with how many of each. */
  groups(): GroupDepth[] {
    return [...this.load().groups]
      .filter(([key]) => key !== "")
      .map(([group, e]) => ({ group, ...e }))
      .sort((a, b) => (a.group < b.group ? -1 : 1));
  }

  /**
   * The tasks to lease now: at most `max`, within this shard's part of the queue's
   * concurrency cap and start limit. With groups, one task per group in turn
   * (from where the last lease stopped), each group within its own limits;
   * without, simply the next in priority order.
   */
  pick(max: number, now: number, take: (row: TaskRow) => boolean): void {
    const s = this.shard.settings;
    const flow = this.load();
    const shards = s.shards;
    const index = this.shard.address?.shard ?? 0;
    let allowed = max;
    if (s.concurrency != null) allowed = Math.min(allowed, shareOf(s.concurrency, shards, index) - flow.running);
    if (s.startLimit) allowed = Math.min(allowed, flow.starts.room(startShare(s.startLimit, shards, index), now));
    if (allowed <= 0) return;
    const keys = [...flow.groups]
      .filter(([, e]) => e.pending > 0)
      .map(([key]) => key)
      .sort();
    if (!keys.some((k) => k !== "")) {
      // In chunks, so a lease that stops early on bytes has not read every row it might have taken.
      for (let picked = 0; picked < allowed;) {
        const want = Math.min(allowed - picked, 100);
        const rows = this.shard.store.ready(want);
        for (const row of rows) {
          if (!take(row)) return;
          picked++;
        }
        if (rows.length < want) return;
      }
      return;
    }

    const from = keys.findIndex((k) => k > flow.cursor);
    const order = from <= 0 ? keys : [...keys.slice(from), ...keys.slice(0, from)];
    let picked = 0;
    const taken = new Map<string, number>(); // per group, for its start window (recorded when the lease commits)
    // One turn: the next task of every group that has one and room under its limits, read together.
    // Each is taken (leased) at once, so the next turn's read sees the group's following task.
    while (picked < allowed) {
      const turn: string[] = [];
      for (const key of order) {
        if (turn.length >= allowed - picked) break;
        const group = flow.groups.get(key);
        if (!group || group.pending <= 0) continue;
        const limits = limitsOf(s, key);
        if (limits?.concurrency != null && group.running >= limits.concurrency) continue;
        if (limits?.startLimit && this.groupWindow(key).room(limits.startLimit, now) <= (taken.get(key) ?? 0)) continue;
        turn.push(key);
      }
      if (turn.length === 0) break;
      const heads = new Map(this.shard.store.readyHeads(turn).map((r) => [r.groupKey ?? "", r]));
      if (heads.size === 0) break;
      for (const key of turn) {
        const row = heads.get(key);
        if (!row) continue;
        if (!take(row)) return;
        picked++;
        taken.set(key, (taken.get(key) ?? 0) + 1);
        flow.cursor = key;
      }
    }
  }

  /** The shard's flow counts, read from storage once after a start (or a rolled-back call). */
  private load(): FlowCounts {
    if (this.counts) return this.counts;
    const groups = new Map<string, { pending: number; running: number }>();
    let running = 0;
    for (const c of this.shard.store.flowCounts()) {
      const entry = groups.get(c.group) ?? { pending: 0, running: 0 };
      entry[c.status] += c.n;
      groups.set(c.group, entry);
      if (c.status === "running") running += c.n;
    }
    // Groups as [key, entries] pairs, never as object keys: a group key is any user string.
    type Entries = [number, number][];
    type Saved = { queue: Entries; groups: [string, Entries][] | Record<string, Entries> };
    const saved = JSON.parse(this.shard.store.getMeta(STARTS_KEY) ?? '{"queue":[],"groups":[]}') as Saved;
    this.counts = {
      running,
      groups,
      starts: new StartWindow(saved.queue),
      groupStarts: new Map(
        (Array.isArray(saved.groups) ? saved.groups : Object.entries(saved.groups)).map(([k, v]) => [k, new StartWindow(v)]),
      ),
      cursor: "",
    };
    return this.counts;
  }

  private groupWindow(key: string): StartWindow {
    const flow = this.load();
    return flow.groupStarts.get(key) ?? flow.groupStarts.set(key, new StartWindow()).get(key)!;
  }

  /** Remembers start times where a start limit needs them, and stores them with the call. */
  recordStarts(started: TaskRow[], now: number): void {
    const s = this.shard.settings;
    const flow = this.load();
    let changed = false;
    if (s.startLimit && started.length > 0) {
      flow.starts.forget(s.startLimit, now);
      flow.starts.record(s.startLimit, now, started.length);
      changed = true;
    }
    for (const task of started) {
      const limit = limitsOf(s, task.groupKey ?? "")?.startLimit;
      if (!limit) continue;
      const window = this.groupWindow(task.groupKey!);
      window.forget(limit, now);
      window.record(limit, now);
      changed = true;
    }
    if (!changed) return;
    const groups: [string, [number, number][]][] = [];
    for (const [key, window] of flow.groupStarts) {
      const limit = limitsOf(s, key)?.startLimit;
      if (limit) window.forget(limit, now);
      if (limit && window.entries.length > 0) groups.push([key, window.entries]);
      else flow.groupStarts.delete(key);
    }
    this.shard.store.setMeta(STARTS_KEY, JSON.stringify({ queue: s.startLimit ? flow.starts.entries : [], groups }));
  }

  /** Keeps the flow counts current as a task moves between statuses. */
  track(group: string | null, from: Status | null, to: Status | null): void {
    const flow = this.counts;
    if (!flow || from === to) return;
    const key = group ?? "";
    const entry = flow.groups.get(key) ?? { pending: 0, running: 0 };
    if (from === "pending") entry.pending--;
    if (to === "pending") entry.pending++;
    if (from === "running") {
      entry.running--;
      flow.running--;
    }
    if (to === "running") {
      entry.running++;
      flow.running++;
    }
    if (entry.pending === 0 && entry.running === 0) flow.groups.delete(key);
    else flow.groups.set(key, entry);
  }
}

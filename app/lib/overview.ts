import type { LiveMessage } from "../../client/types";

/**
 * The overview's state, folded from live messages (pure, so it is tested
 * without a browser): depth per queue and status, the last minute's
 * finishes per second, the snapshot's rates and active workers.
 */

export const SECONDS = 60;
type Counts = Partial<Record<string, number>>;

export interface Overview {
  queues: Record<string, Counts>;
  /** tasks finished (completed + failed) in each of the last SECONDS seconds, oldest first */
  finished: number[];
  /** the second `finished` ends at (ms, whole seconds) */
  second: number;
  completed: number;
  failed: number;
  workers: number;
  /** when the last message came (ms) */
  at: number | null;
}

export const empty = (now: number): Overview => ({ queues: {}, finished: Array(SECONDS).fill(0), second: Math.floor(now / 1000) * 1000, completed: 0, failed: 0, workers: 0, at: null });

/** Moves the per-second window to `now`, dropping seconds older than a minute. */
export function advance(o: Overview, now: number): Overview {
  const second = Math.floor(now / 1000) * 1000;
  const steps = Math.min(SECONDS, Math.max(0, (second - o.second) / 1000));
  if (steps === 0) return o;
  return { ...o, second, finished: [...o.finished.slice(steps), ...Array(steps).fill(0)] };
}

export function fold(o: Overview, m: LiveMessage, now: number): Overview {
  const next = advance(o, now);
  if (m.type === "snapshot") {
    return { ...next, queues: Object.fromEntries(m.queues.map((q) => [q.name, q.counts])), completed: m.rates.completed, failed: m.rates.failed, workers: m.workers.active, at: now };
  }
  if (m.type === "delta") {
    const done = Math.max(0, m.changes.completed ?? 0) + Math.max(0, m.changes.failed ?? 0);
    const finished = [...next.finished];
    finished[finished.length - 1] += done;
    return {
      ...next,
      queues: { ...next.queues, [m.queue]: m.counts },
      finished,
      completed: next.completed + Math.max(0, m.changes.completed ?? 0),
      failed: next.failed + Math.max(0, m.changes.failed ?? 0),
      at: now,
    };
  }
  return { ...next, at: now };
}

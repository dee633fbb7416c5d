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
  /** tasks completed in each of the last SECONDS seconds, oldest first */
  completedBySecond: number[];
  /** tasks failed for good in each of the last SECONDS seconds, oldest first */
  failedBySecond: number[];
  /** the second the windows end at (ms, whole seconds) */
  second: number;
  workers: number;
  /** when the last message came (ms) */
  at: number | null;
}

const zeros = () => Array<number>(SECONDS).fill(0);

export const empty = (now: number): Overview => ({
  queues: {},
  completedBySecond: zeros(),
  failedBySecond: zeros(),
  second: Math.floor(now / 1000) * 1000,
  workers: 0,
  at: null,
});

/** Moves the per-second windows to `now`, dropping seconds older than a minute. */
export function advance(o: Overview, now: number): Overview {
  const second = Math.floor(now / 1000) * 1000;
  const steps = Math.min(SECONDS, Math.max(0, (second - o.second) / 1000));
  if (steps === 0) return o;
  const move = (w: number[]) => [...w.slice(steps), ...Array<number>(steps).fill(0)];
  return { ...o, second, completedBySecond: move(o.completedBySecond), failedBySecond: move(o.failedBySecond) };
}

/** A count over the last `seconds` as a window: spread evenly over those seconds, so it ages out as they do. */
function spread(count: number, seconds: number): number[] {
  const n = Math.max(1, Math.min(SECONDS, Math.round(seconds)));
  return [...Array<number>(SECONDS - n).fill(0), ...Array<number>(n).fill(count / n)];
}

export function fold(o: Overview, m: LiveMessage, now: number): Overview {
  const next = advance(o, now);
  if (m.type === "snapshot") {
    // Each (re)connect starts over from the server's figures for the last minute.
    return {
      ...next,
      queues: Object.fromEntries(m.queues.map((q) => [q.name, q.counts])),
      completedBySecond: spread(m.rates.completed, m.rates.seconds),
      failedBySecond: spread(m.rates.failed, m.rates.seconds),
      workers: m.workers.active,
      at: now,
    };
  }
  if (m.type === "delta") {
    const add = (w: number[], n: number | undefined) => (n && n > 0 ? [...w.slice(0, -1), w[w.length - 1] + n] : w);
    return {
      ...next,
      queues: { ...next.queues, [m.queue]: m.counts },
      completedBySecond: add(next.completedBySecond, m.changes.completed),
      failedBySecond: add(next.failedBySecond, m.changes.failed),
      at: now,
    };
  }
  return { ...next, at: now };
}

const sum = (w: number[]) => Math.round(w.reduce((a, b) => a + b, 0));

/** What the cards show: the last minute's completions and failures, and finishes per second in it. */
export function lastMinute(o: Overview): { completed: number; failed: number; finished: number[]; perSecond: number } {
  const finished = o.completedBySecond.map((c, i) => c + o.failedBySecond[i]);
  return {
    completed: sum(o.completedBySecond),
    failed: sum(o.failedBySecond),
    finished,
    perSecond: finished.reduce((a, b) => a + b, 0) / SECONDS,
  };
}

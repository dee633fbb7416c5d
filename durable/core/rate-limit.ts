/**
 * Request limits of one credential: at most `perMinute` in any minute window
 * and `perHour` in any hour window. Windows start at the first request after
 * the previous one ended (not on clock boundaries), so a burst cannot double up
 * across a boundary. Pure: the caller keeps the windows and the time.
 */

import type { Limits } from "../../schema/access";

export type { Limits };

export interface Windows {
  minuteStart: number;
  minuteCount: number;
  hourStart: number;
  hourCount: number;
}

export interface RateDecision {
  allowed: boolean;
  /** the limit of the window closest to running out */
  limit: number;
  remaining: number;
  /** ms until that window starts over */
  resetMs: number;
  /** when refused: ms until a request would be allowed */
  retryAfterMs: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

export const NO_WINDOWS: Windows = { minuteStart: 0, minuteCount: 0, hourStart: 0, hourCount: 0 };

/** Counts one request if both windows allow it; returns the decision and the windows after it. */
export function take(before: Windows, limits: Limits, now: number): { decision: RateDecision; windows: Windows } {
  const w = { ...before };
  if (now >= w.minuteStart + MINUTE) Object.assign(w, { minuteStart: now, minuteCount: 0 });
  if (now >= w.hourStart + HOUR) Object.assign(w, { hourStart: now, hourCount: 0 });
  const allowed = w.minuteCount < limits.perMinute && w.hourCount < limits.perHour;
  if (allowed) {
    w.minuteCount++;
    w.hourCount++;
  }
  const minute = { limit: limits.perMinute, remaining: limits.perMinute - w.minuteCount, resetMs: w.minuteStart + MINUTE - now };
  const hour = { limit: limits.perHour, remaining: limits.perHour - w.hourCount, resetMs: w.hourStart + HOUR - now };
  const tightest = hour.remaining < minute.remaining ? hour : minute;
  let retryAfterMs = 0;
  if (!allowed) {
    if (minute.remaining <= 0) retryAfterMs = Math.max(retryAfterMs, minute.resetMs);
    if (hour.remaining <= 0) retryAfterMs = Math.max(retryAfterMs, hour.resetMs);
  }
  return { decision: { allowed, ...tightest, retryAfterMs }, windows: allowed ? w : before };
}

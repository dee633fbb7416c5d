import { Cron } from "croner";
import { QueueError } from "./errors";

/**
 * Cron evaluation for schedules (croner: 5 or 6 fields, seconds first when 6;
 * IANA time zones, DST-correct). Pure: every function takes the times it needs.
 */

/** A parsed cron, or a 400 naming what is wrong. */
export function cronOf(expression: string, timezone: string): Cron {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new QueueError("validation_failed", `"${timezone}" is not a time zone; use an IANA name such as "Europe/Berlin" or "UTC".`, [
      { pointer: "/timezone", detail: "unknown time zone" },
    ]);
  }
  try {
    return new Cron(expression, { timezone, paused: true });
  } catch (e) {
    throw new QueueError("validation_failed", `"${expression}" is not a valid cron expression: ${(e as Error).message}`, [
      { pointer: "/cron", detail: (e as Error).message },
    ]);
  }
}

/** The next `n` fire times strictly after `after` (ms). */
export function nextFires(expression: string, timezone: string, after: number, n: number): number[] {
  return cronOf(expression, timezone)
    .nextRuns(n, new Date(after))
    .map((d) => d.getTime());
}

/**
 * What to do when the fire due at `dueAt` is handled at `now` (perhaps late, after
 * downtime): one run for the latest fire time not after `now` — a catch-up run,
 * never a burst — and how many fires were skipped on the way (-1: more than a
 * thousand, not counted); then the next fire after `now`.
 */
export function dueFire(
  expression: string,
  timezone: string,
  dueAt: number,
  now: number,
): { fireAt: number; missed: number; nextAt: number | null } {
  const cron = cronOf(expression, timezone);
  let fireAt = dueAt;
  let missed = 0;
  for (let steps = 0; ; steps++) {
    // After long downtime with a fast cron, stop counting and walk on from ten minutes back.
    if (steps === 1000 && missed >= 0) {
      const resume = cron.nextRun(new Date(now - 600_000));
      if (resume && resume.getTime() > fireAt) {
        fireAt = resume.getTime();
        missed = -1;
      }
    }
    const next = cron.nextRun(new Date(fireAt));
    if (!next || next.getTime() > now) break;
    fireAt = next.getTime();
    if (missed >= 0) missed++;
  }
  return { fireAt, missed, nextAt: cron.nextRun(new Date(now))?.getTime() ?? null };
}

import { TERMINAL } from "../../schema/shard";
import type { Lifecycle } from "./lifecycle";
import { DAY, min } from "./rules";
import type { ShardState } from "./state";
import { DUE_BATCH, SWEEP_BATCH, type DueResult, type PurgeResult } from "./types";

/**
 * The work that comes due with time, done by the alarm (and by any call that
 * finds it due first): delayed tasks become ready, expired leases retry or
 * fail, finished tasks and idempotency keys past their time are swept, and a
 * purge goes on pass by pass. Each pass handles a bounded number of rows.
 */
export class DueWork {
  constructor(
    private readonly shard: ShardState,
    private readonly lifecycle: Lifecycle,
  ) {}

  /** The earliest time at which a task needs the shard's attention (calls catch up on it first). */
  nextDueAt(): number | null {
    const { nextDue, sweep } = this.shard;
    return sweep.at === null ? nextDue : min(nextDue, sweep.at);
  }

  /** When the alarm must next fire: due tasks, messages to deliver, or a purge under way (at once). */
  alarmAt(): number | null {
    let at = this.nextDueAt();
    if (this.shard.nextMail !== null) at = min(at, this.shard.nextMail);
    if (this.shard.purgeBy !== null) at = min(at, this.shard.clock.now());
    return at;
  }

  isDue(): boolean {
    const next = this.nextDueAt();
    return next !== null && next <= this.shard.clock.now();
  }

  /** One pass: up to DUE_BATCH due tasks, then the retention sweep if it is due. */
  process(now: number): DueResult {
    const { shard } = this;
    const out: DueResult = { promoted: 0, expired: 0, purged: 0, cancelled: 0 };
    for (const row of shard.store.due(now, DUE_BATCH, (shard.counts().running ?? 0) > 0)) {
      if (row.status === "scheduled") {
        // It became ready at its runAt, not when the shard got round to it.
        shard.transition(row, "promoted", shard.ready(row.dueAt ?? now));
        out.promoted++;
      } else if (row.status === "running") {
        const error = JSON.stringify({ message: `Lease expired: no heartbeat within ${row.timeoutMs} ms.` });
        this.lifecycle.afterRun(row, "expired", error, true);
        out.expired++;
      } else {
        // A finished task holds no due time (state written by earlier versions may); retention is swept.
        shard.store.update(row.id, { dueAt: null });
        if (shard.sweep.at === null) shard.setSweep({ at: now });
      }
    }
    shard.nextDue = shard.store.nextDueAt();
    if (shard.sweep.at !== null && shard.sweep.at <= now) out.purged = this.sweepRetention(now);
    return out;
  }

  /** Starts a purge of the tasks created up to now, and runs its first pass. */
  startPurge(): PurgeResult {
    this.shard.setPurge(this.shard.clock.now());
    return this.purgePass();
  }

  /** One pass of a purge under way: cancels up to DUE_BATCH pending or scheduled tasks it covers. */
  purgePass(): PurgeResult {
    const { shard } = this;
    const by = shard.purgeBy!;
    const pending = shard.store.pending(DUE_BATCH, by);
    const scheduled = pending.length < DUE_BATCH ? shard.store.scheduled(DUE_BATCH - pending.length, by) : [];
    for (const row of [...pending, ...scheduled]) shard.finish(row, "purged", "cancelled", {});
    const cancelled = pending.length + scheduled.length;
    const done = cancelled < DUE_BATCH;
    if (done) shard.setPurge(null);
    return { cancelled, done };
  }

  /**
   * Drops finished tasks past retention. Finished tasks have no index entry (it
   * would cost a row write per task); instead the sweep walks the ids, which are
   * in creation order, and stops at the first task too young to have expired.
   * Idempotency keys past their window and dead mail past retention go too.
   */
  private sweepRetention(now: number): number {
    const { shard } = this;
    const { store, settings } = shard;
    const retention = settings.retentionDays * DAY;
    let after = shard.sweep.after;
    // Keys first; more than a pass can take: come back at once.
    const window = settings.idempotencyWindowMs;
    const keysLeft = store.dropKeys(now - window, SWEEP_BATCH) === SWEEP_BATCH;
    store.sweepDead(now - retention);
    const oldestKey = store.oldestKeyAt();
    let next: number | null = keysLeft ? now : oldestKey === null ? null : oldestKey + window;
    let purged = 0;
    for (let scanned = 0; scanned < SWEEP_BATCH;) {
      const rows = store.list({ after, limit: DUE_BATCH });
      if (rows.length === 0) {
        after = undefined; // reached the end: the next sweep starts from the oldest task
        break;
      }
      for (const row of rows) {
        if (row.createdAt + retention > now) {
          // Nothing from here on can have expired yet.
          shard.setSweep({ at: min(next, row.createdAt + retention) });
          return purged;
        }
        if (TERMINAL.has(row.status)) {
          const expiry = (row.finishedAt ?? row.createdAt) + retention;
          if (expiry <= now) {
            shard.drop(row, false); // its key's window ended before its retention did
            purged++;
          } else next = min(next, expiry);
        }
      }
      scanned += rows.length;
      after = rows[rows.length - 1].id;
    }
    // Out of budget (resume at once from `after`), or at the end of the table.
    shard.setSweep(after !== undefined ? { at: now, after } : { at: next });
    return purged;
  }
}

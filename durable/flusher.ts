import type { ShardEngine } from "./core/engine";
import { shardKey } from "./core/ids";
import { min } from "./core/rules";
import { planHistory } from "./core/timeline";
import { HistoryUnavailable, writeHistory } from "./history";

/** The shard's flushes of its outbox to D1 history, since this object started. */
export interface HistoryStats {
  /** batches D1 took */
  flushes: number;
  /** outbox events those batches carried */
  events: number;
  /** rows D1 reported written for them (what D1 bills), and of those the analytics rollups' */
  rowsWritten: number;
  rollupRows: number;
  /** flushes that found D1 down, and how many in a row now */
  failures: number;
  failing: number;
  /** time spent preparing batches (reading, planning) and waiting for D1 to take them, ms */
  prepareMs: number;
  writeMs: number;
  /** history rows set aside (kept for the queue's retention) */
  dead: number;
  /** when the oldest event not yet in history happened (ms; null: none waiting) */
  waitingSince: number | null;
}

/** Events per flush at most, and how many waiting make a flush due at once rather than at the interval. */
const FLUSH_EVENTS = 10_000;
const FLUSH_NOW_EVENTS = 10_000;
/** A flush finding D1 down waits 1 s, then twice as long each time, up to a minute. */
const RETRY_MS = 1000;
const RETRY_MAX_MS = 60_000;

/** A D1 binding that is down (for the shard's `faults.d1`): every call fails. */
export const unavailableD1 = new Proxy({} as D1Database, {
  get() {
    return () => {
      throw new Error("D1_ERROR: Network connection lost. (injected fault)");
    };
  },
});

export interface FlusherOptions {
  engine: () => ShardEngine;
  /** the D1 binding to write to (tests put a failing one in) */
  db: () => D1Database;
  now: () => number;
  /** EDGEQ_HISTORY: false keeps the outbox and writes no history */
  on: boolean;
  /** the longest an event waits in the outbox before a flush (EDGEQ_HISTORY_FLUSH_MS) */
  flushMs: number;
  /** told after a flush has written history (the tenant's analytics cache version moves); its failure is ignored */
  written?: (tenant: string) => Promise<void>;
}

/**
 * A shard's flushes to D1 history: the outbox, oldest first, a batch at a
 * time, each deleted once D1 has it. D1 down: nothing is deleted, and the
 * next try waits longer each time (history is late, never lost or doubled).
 * When it is due is `dueAt()`, which the shard's alarm covers.
 */
export class HistoryFlusher {
  private flushing = false;
  private retryAt: number | null = null;
  private readonly counts = { flushes: 0, events: 0, rowsWritten: 0, rollupRows: 0, failures: 0, failing: 0, prepareMs: 0, writeMs: 0 };

  constructor(private readonly o: FlusherOptions) {}

  async flush(): Promise<void> {
    const engine = this.o.engine();
    const tenant = engine.tenant;
    if (!this.o.on || this.flushing || tenant === undefined || engine.address === null) return;
    const source = shardKey(engine.address);
    this.flushing = true;
    const stats = this.counts;
    let wrote = false;
    try {
      for (let round = 0; round < 8; round++) {
        const t0 = performance.now();
        const batch = engine.outbox.batch(FLUSH_EVENTS);
        if (batch === null) break;
        const plan = planHistory(batch);
        const t1 = performance.now();
        const written = await writeHistory(this.o.db(), tenant, source, plan);
        const t2 = performance.now();
        engine.outbox.written(plan.upTo, [...plan.dead, ...written.dead], this.o.now());
        stats.prepareMs += t1 - t0 + written.buildMs + (performance.now() - t2);
        stats.writeMs += t2 - t1 - written.buildMs;
        stats.flushes++;
        wrote = true;
        stats.events += batch.rows.reduce((n, r) => n + r.events.length, 0);
        stats.rowsWritten += written.rowsWritten;
        stats.rollupRows += written.rollupRows;
      }
      stats.failing = 0;
      this.retryAt = null;
    } catch (e) {
      // D1 unavailable, or anything unforeseen: the batch stays in the outbox for the next try.
      if (!(e instanceof HistoryUnavailable)) console.error("history flush failed", e);
      stats.failures++;
      stats.failing++;
      const wait = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** (stats.failing - 1));
      this.retryAt = this.o.now() + wait / 2 + Math.random() * (wait / 2);
    } finally {
      this.flushing = false;
    }
    if (wrote) await this.o.written?.(tenant).catch(() => undefined); // also when a later round failed
  }

  /** When the outbox must next be flushed, or `alarmAt` if that is sooner (null: neither). */
  dueAt(alarmAt: number | null): number | null {
    const { outbox } = this.o.engine();
    if (!this.o.on || this.flushing || outbox.oldestAt === null) return alarmAt;
    const due = this.retryAt ?? (outbox.events >= FLUSH_NOW_EVENTS ? this.o.now() : outbox.oldestAt + this.o.flushMs);
    return min(alarmAt, due);
  }

  stats(): HistoryStats {
    const { outbox } = this.o.engine();
    return { ...this.counts, dead: outbox.dead(), waitingSince: outbox.oldestAt };
  }
}

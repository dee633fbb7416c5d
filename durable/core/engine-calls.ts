import type { TaskEvent } from "../../schema/shard";
import { DueWork } from "./due";
import { QueueError } from "./errors";
import { Lifecycle } from "./lifecycle";
import { Mailroom } from "./mail";
import { Outbox } from "./outbox";
import { ShardState } from "./state";
import type { ShardStore } from "./store";
import { countsOf } from "./tally";
import type { Clock, DueResult, Entropy, ItemResult, Totals } from "./types";

/**
 * How one call of the engine runs (ShardEngine, durable/core/engine.ts, adds the calls): due work
 * first, committed on its own; then the call in one storage transaction, with the messages it made
 * for this shard and one outbox row for all its events; what a rolled-back call changed in memory
 * reloaded; a committed call's events counted and told to `onCommit`.
 */
export class EngineCalls {
  protected readonly shard: ShardState;
  protected readonly life: Lifecycle;
  protected readonly mail: Mailroom;
  protected readonly due: DueWork;
  /** the outbox as history reads it */
  readonly outbox: Outbox;
  /** told the events of every committed call (live metrics) */
  onCommit: ((events: TaskEvent[]) => void) | null = null;
  /** Counts of what happened since this engine started (Prometheus counters: they reset on restart). */
  readonly totals: Totals = { enqueued: 0, leased: 0, completed: 0, failed: 0, retried: 0, expired: 0, cancelled: 0 };

  constructor(store: ShardStore, clock: Clock, entropy: Entropy) {
    this.shard = new ShardState(store, clock, entropy);
    this.life = new Lifecycle(this.shard);
    this.mail = new Mailroom(this.shard);
    this.due = new DueWork(this.shard, this.life);
    this.outbox = new Outbox(this.shard);
  }

  // runDue: no input; called by the alarm (and before every call, when something is due).
  // output: counts of tasks made ready, leases expired, finished tasks dropped and tasks purged.
  // errors: none.
  runDue(): DueResult {
    return this.tx(() => {
      const out = this.due.process(this.shard.clock.now());
      if (this.shard.purgeBy !== null) out.cancelled = this.due.purgePass().cancelled;
      return out;
    }, false);
  }

  /** One transaction: `fn`, the messages it made for this shard, then the outbox row. Due work commits first, on its own. */
  protected tx<T>(fn: () => T, catchUp = true): T {
    // A call refused below must not roll the due work back.
    if (catchUp) this.catchUp();
    const { shard } = this;
    let written: TaskEvent[] = [];
    let writtenAt = 0;
    let out: T;
    try {
      out = shard.store.transaction(() => {
        try {
          const result = fn();
          this.mail.drain();
          writtenAt = shard.clock.now();
          if (shard.events.length > 0) shard.store.appendOutbox(writtenAt, shard.events);
          written = shard.events;
          return result;
        } finally {
          shard.events = [];
          shard.local = [];
        }
      });
    } catch (e) {
      shard.reload(); // rolled back: what the call changed in memory did not happen
      throw e;
    }
    this.tally(written);
    if (written.length > 0) {
      this.outbox.appended(writtenAt, written.length);
      try {
        this.onCommit?.(written);
      } catch (e) {
        console.error("onCommit failed", e); // what committed stays committed
      }
    }
    return out;
  }

  protected catchUp(): void {
    if (this.due.isDue()) this.runDue();
  }

  /** One transaction for many items, their rows read in one go; a refused item answers its problem, the rest go on. */
  protected batch<I extends { id: string }, T>(items: I[], one: (item: I) => T): ItemResult<T>[] {
    return this.tx(() => {
      this.shard.store.prefetch(items.map((i) => i.id));
      return items.map((item): ItemResult<T> => {
        try {
          return { id: item.id, ok: true, value: one(item) };
        } catch (e) {
          if (e instanceof QueueError) return { id: item.id, ok: false, problem: e.toProblem() };
          throw e;
        }
      });
    });
  }

  /** Counts a committed call's events. */
  private tally(events: TaskEvent[]): void {
    for (const e of events) for (const k of countsOf(e)) this.totals[k]++;
  }
}

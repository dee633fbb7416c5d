import type { ShardState } from "./state";
import type { OutboxRow } from "./store";

/** A history row that will never be written, and why. */
export interface DeadHistory {
  taskId: string;
  reason: string;
  /** JSON text of what was to be written */
  body: string;
}

/** What one flush to history reads: the oldest outbox entries. */
export interface OutboxBatch {
  /** entries with their position in the shard's history of entries (grows forever; see Outbox) */
  rows: OutboxRow[];
  /** the last entry's position: everything up to it goes once history has it */
  upTo: number;
}

/** Outbox entries read per query while filling a batch. */
const ROWS_PER_READ = 64;
/** Characters of event JSON per batch at most (payloads ride in `enqueued` events): bounds the flush's memory. */
const BATCH_CHARS = 4 * 1024 * 1024;
const BASE_KEY = "outbox_base";

/**
 * The shard's side of history: the outbox read oldest first, in batches, and
 * emptied only once history has a batch (or has set its bad rows aside). When a
 * flush is due is the caller's to decide, from `oldestAt` and `events`.
 *
 * An entry's position is `base + seq`. SQLite numbers a row one past the
 * highest present, so once the outbox is emptied its numbers start again at 1;
 * `base` (in meta) then moves up to the last position flushed, so positions —
 * history's versions and event keys — only ever grow.
 */
export class Outbox {
  /** when the oldest entry not yet in history was written (null: none) */
  oldestAt: number | null;
  /** events written since the last flush */
  events = 0;
  private base: number;

  constructor(private readonly shard: ShardState) {
    this.oldestAt = shard.store.oldestOutboxAt();
    this.base = Number(shard.store.getMeta(BASE_KEY) ?? 0);
  }

  /** A call committed `count` events at `at`. */
  appended(at: number, count: number): void {
    this.oldestAt ??= at;
    this.events += count;
  }

  // batch: about how many events at most (never less than one entry; at most BATCH_CHARS of JSON). output: the oldest entries, or null when empty.
  batch(maxEvents: number): OutboxBatch | null {
    const { store } = this.shard;
    const rows: OutboxRow[] = [];
    let events = 0;
    let chars = 0;
    for (let after = 0; events < maxEvents && chars < BATCH_CHARS;) {
      const read = store.readOutbox(after, ROWS_PER_READ);
      for (const row of read) {
        if (rows.length > 0 && (events + row.events.length > maxEvents || chars + row.size > BATCH_CHARS)) return this.positioned(rows);
        rows.push(row);
        events += row.events.length;
        chars += row.size;
      }
      if (read.length < ROWS_PER_READ) break;
      after = read[read.length - 1].seq;
    }
    return rows.length === 0 ? null : this.positioned(rows);
  }

  // written: the last seq history has, rows set aside. output: none; one transaction.
  written(upTo: number, dead: DeadHistory[], at: number): void {
    const { store } = this.shard;
    store.transaction(() => {
      for (const d of dead) store.buryHistory(d.taskId, d.reason, d.body, at);
      store.deleteOutbox(upTo - this.base);
      if (store.oldestOutboxAt() === null) {
        this.base = upTo;
        store.setMeta(BASE_KEY, String(upTo));
      }
    });
    this.oldestAt = store.oldestOutboxAt();
    this.events = 0;
  }

  /** History rows set aside (kept for the queue's retention). */
  dead(): number {
    return this.shard.store.countDeadHistory();
  }

  private positioned(rows: OutboxRow[]): OutboxBatch {
    const positioned = rows.map((r) => ({ ...r, seq: this.base + r.seq }));
    return { rows: positioned, upTo: positioned[positioned.length - 1].seq };
  }
}

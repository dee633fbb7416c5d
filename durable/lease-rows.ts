import type { TaskRow } from "../schema/shard";
import { chunks } from "./core/chunks";
import { MAX_PARAMS } from "./task-writes";

/** task ids per `leases` row (~27 KB of JSON) */
const LEASE_ROW_IDS = 1000;
/** lease rows come due on whole multiples of this (see nextAt) */
const LEASE_CHECK_MS = 1000;
/** task ids of `leases` rows taken apart per pass of the due work */
const LEASE_IDS_PER_PASS = 5000;

type Row = Record<string, SqlStorageValue>;

/**
 * The shard's lease expiries, registered once per lease call in `leases` instead of once per task
 * in tasks_due (ARCHITECTURE, "The alarm"). SqlStore gathers what a transaction leased, hands it
 * here when the transaction ends, and asks here for the leases that expired.
 */
export class LeaseRows {
  /** tasks leased in this transaction, with their expiry: one `leases` row for all, when it ends */
  private leased: [string, number][] = [];

  constructor(
    /** runs SQL on the store's storage (its rows read and written are counted there) */
    private readonly run: (query: string, ...params: unknown[]) => Row[],
    /** the tasks among `ids` (at most MAX_PARAMS) that are running */
    private readonly running: (ids: string[]) => TaskRow[],
  ) {}

  /** `id` was leased until `expiresAt` (written by `write`). */
  add(id: string, expiresAt: number): void {
    this.leased.push([id, expiresAt]);
  }

  /** Registers the expiry of what was leased since the last call (a grouped lease flushes once per turn: one row for all turns). */
  write(): void {
    if (this.leased.length === 0) return;
    const leased = this.leased;
    this.leased = [];
    this.register(leased);
  }

  /** Forgets what was leased in a transaction that rolled back. */
  discard(): void {
    this.leased = [];
  }

  /** Forgets every row: no task is running, so none of their leases can expire. */
  clear(): void {
    this.run("DELETE FROM leases");
  }

  /**
   * The earliest row rounded up to a whole LEASE_CHECK_MS: under load a row comes due with every
   * lease call, and most hold only finished tasks, so rows are taken apart a second's worth at a
   * time (one alarm a second, not one per call); a lease that did expire is retried at most that
   * much later. Stale tokens are refused at the exact expiry.
   */
  nextAt(): number | null {
    const at = this.run("SELECT min(expires_at) AS at FROM leases")[0].at as number | null;
    return at === null ? null : Math.ceil(at / LEASE_CHECK_MS) * LEASE_CHECK_MS;
  }

  /**
   * Each row come due is taken apart: of its tasks still running, those past their own `due_at`
   * (up to `room`) are returned to expire; the others (a heartbeat moved their expiry, or no
   * room) are registered again under the soonest of their times. Tasks no longer running are
   * forgotten. A task leased more than once may be in several rows: `seen` (kept over a pass)
   * returns it once.
   */
  expired(now: number, room: number, seen: Set<string>): TaskRow[] {
    const out: TaskRow[] = [];
    const again: [string, number][] = [];
    let read = 0; // ids, so that rows of one task each cost a pass no more than full ones
    while (out.length < room && read < LEASE_IDS_PER_PASS) {
      const due = this.run("SELECT expires_at, seq, ids FROM leases WHERE expires_at <= ? ORDER BY expires_at LIMIT 50", now);
      if (due.length === 0) break;
      for (const lease of due) {
        if (out.length >= room || read >= LEASE_IDS_PER_PASS) break;
        this.run("DELETE FROM leases WHERE expires_at = ? AND seq = ?", lease.expires_at, lease.seq);
        const ids = (JSON.parse(lease.ids as string) as string[]).filter((id) => !seen.has(id));
        read += ids.length + 1;
        for (const part of chunks(ids, MAX_PARAMS)) {
          for (const row of this.running(part)) {
            seen.add(row.id);
            if (row.dueAt === null) continue; // no expiry to watch (not written by this version)
            if (row.dueAt <= now && out.length < room) out.push(row);
            else again.push([row.id, row.dueAt]);
          }
        }
      }
    }
    this.register(again); // after the reads: a row registered again waits for a later pass
    return out;
  }

  /** One `leases` row per 1,000 tasks, due when the soonest of their leases expires. */
  private register(leased: [string, number][]): void {
    for (const part of chunks(leased, LEASE_ROW_IDS)) {
      const expiresAt = Math.min(...part.map(([, at]) => at));
      const ids = JSON.stringify(part.map(([id]) => id));
      this.run("INSERT INTO leases (expires_at, seq, ids) VALUES (?, ?, ?)", expiresAt, Math.floor(Math.random() * 2 ** 53), ids);
    }
  }
}

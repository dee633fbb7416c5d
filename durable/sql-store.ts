import { type Status, type TaskRow } from "../schema/shard";
import { chunks } from "./core/chunks";
import type { ListOptions, ShardStore } from "./core/store";
import { LeaseRows } from "./lease-rows";
import { LIMIT, SideRows } from "./side-rows";
import { SELECT, taskRows } from "./task-rows";
import { MAX_PARAMS, taskWrites } from "./task-writes";

/** Lease order: priority first, then the order tasks became ready. Every lease-order index has these columns. */
const LEASE_ORDER = "ORDER BY priority DESC, ready_at, seq";

/**
 * tasks_due's condition: a running task's expiry is not in the index (it is in `leases`). A query
 * names it whole, or SQLite cannot use the partial index.
 */
const NOT_LEASED = "due_at IS NOT NULL AND status <> 'running'";

/** LEASE_ORDER in JavaScript (SQLite sorts a NULL `ready_at` first). */
const leaseOrder = (a: TaskRow, b: TaskRow) =>
  b.priority - a.priority || (a.readyAt ?? -Infinity) - (b.readyAt ?? -Infinity) || a.seq - b.seq;

/**
 * ShardStore over the Durable Object's SQLite: the task rows here, the tables beside them in
 * SideRows (durable/side-rows.ts). Writes of task rows inside a transaction are buffered (reads
 * see them) and flushed together when the transaction ends or before any query that scans.
 */
export class SqlStore extends SideRows implements ShardStore {
  private inserts = new Map<string, TaskRow>();
  private updates = new Map<string, Partial<TaskRow>>();
  private deletes = new Set<string>();
  /** rows read in this transaction, kept current with its writes */
  private cache = new Map<string, TaskRow>();
  private readonly leases = new LeaseRows(
    (query, ...params) => this.run(query, ...params),
    (ids) => this.all(`${SELECT} WHERE id IN (${ids.map(() => "?").join(", ")}) AND status = 'running'`, ...ids),
  );
  private depth = 0;

  transaction<T>(fn: () => T): T {
    this.depth++;
    try {
      return this.storage.transactionSync(() => {
        const out = fn();
        this.flush();
        if (this.depth === 1) this.leases.write();
        return out;
      });
    } finally {
      this.depth--;
      // After a rollback the buffers describe writes that never happened.
      this.inserts.clear();
      this.updates.clear();
      this.deletes.clear();
      this.cache.clear();
      if (this.depth === 0) this.leases.discard();
    }
  }

  get(id: string): TaskRow | null {
    if (this.deletes.has(id)) return null;
    const known = this.inserts.get(id) ?? this.cache.get(id);
    if (known) return { ...known };
    const row = this.one(`${SELECT} WHERE id = ?`, id);
    const changes = this.updates.get(id);
    return row && changes ? { ...row, ...changes } : row;
  }

  prefetch(ids: string[]): void {
    const wanted = [...new Set(ids)].filter((id) => !this.inserts.has(id) && !this.cache.has(id) && !this.deletes.has(id));
    for (const part of chunks(wanted, MAX_PARAMS)) {
      for (const row of this.all(`${SELECT} WHERE id IN (${part.map(() => "?").join(", ")})`, ...part)) {
        this.cache.set(row.id, { ...row, ...this.updates.get(row.id) });
      }
    }
  }

  insert(row: TaskRow): void {
    this.inserts.set(row.id, { ...row });
  }

  update(id: string, changes: Partial<TaskRow>): void {
    const inserted = this.inserts.get(id);
    if (inserted) {
      Object.assign(inserted, changes);
      return;
    }
    this.updates.set(id, { ...this.updates.get(id), ...changes });
    const cached = this.cache.get(id);
    if (cached) Object.assign(cached, changes);
  }

  delete(id: string): void {
    this.updates.delete(id);
    this.cache.delete(id);
    if (!this.inserts.delete(id)) this.deletes.add(id);
  }

  /**
   * Tasks inserted in this transaction are not written first: they are merged with the stored
   * ones in lease order. A lease in the transaction that made them (an enqueue handed at once to
   * a waiting consumer) then writes each once, as running: one row instead of three (the pending
   * row, its tasks_ready entry, the running row).
   */
  ready(limit: number): TaskRow[] {
    this.flush(false);
    const stored = this.all(`${SELECT} WHERE status = 'pending' AND group_key IS NULL ${LEASE_ORDER} ${LIMIT}`, limit);
    const fresh = [...this.inserts.values()].filter((r) => r.status === "pending" && r.groupKey === null);
    if (fresh.length === 0) return stored;
    return [...stored, ...fresh.map((r) => ({ ...r }))].sort(leaseOrder).slice(0, limit);
  }

  pending(limit: number, createdBy: number): TaskRow[] {
    this.flush();
    // Each half is a walk of one partial lease-order index.
    return this.all(
      `SELECT * FROM (SELECT * FROM (${SELECT} WHERE status = 'pending' AND group_key IS NULL AND created_at <= ? ${LIMIT})
       UNION ALL SELECT * FROM (${SELECT} WHERE status = 'pending' AND group_key IS NOT NULL AND created_at <= ? ${LIMIT})) ${LIMIT}`,
      createdBy,
      limit,
      createdBy,
      limit,
      limit,
    );
  }

  readyHeads(groups: string[]): TaskRow[] {
    this.flush();
    const out: TaskRow[] = groups.includes("") ? this.ready(1) : [];
    // One statement for many groups: a correlated seek on tasks_group_ready per group.
    for (const part of chunks(
      groups.filter((g) => g !== ""),
      MAX_PARAMS,
    )) {
      out.push(
        ...this.all(
          `WITH g(k) AS (VALUES ${part.map(() => "(?)").join(", ")})
           ${SELECT} WHERE id IN (SELECT (SELECT id FROM tasks WHERE status = 'pending' AND group_key = g.k ${LEASE_ORDER} LIMIT 1) FROM g)`,
          ...part,
        ),
      );
    }
    return out;
  }

  flowCounts(): { group: string; status: "pending" | "running"; n: number }[] {
    this.flush();
    return this.run(
      "SELECT coalesce(group_key, '') AS grp, status, count(*) AS n FROM tasks WHERE status IN ('pending', 'running') GROUP BY grp, status",
    ).map((r) => ({ group: r.grp as string, status: r.status as "pending" | "running", n: r.n as number }));
  }

  scheduled(limit: number, createdBy: number): TaskRow[] {
    this.flush();
    return this.all(
      `${SELECT} WHERE ${NOT_LEASED} AND status = 'scheduled' AND created_at <= ? ORDER BY due_at ${LIMIT}`,
      createdBy,
      limit,
    );
  }

  /**
   * Running tasks whose lease expired (found through `leases`) and due tasks from tasks_due, each
   * kind sure of half the limit, so a backlog of one never holds up the other.
   */
  due(now: number, limit: number, anyRunning: boolean): TaskRow[] {
    this.flush();
    this.leases.write();
    // After a drain every lease row names finished tasks only: one statement forgets them all,
    // instead of reading each row and looking its tasks up when it comes due.
    if (!anyRunning) this.leases.clear();
    const seen = new Set<string>();
    const rows = this.leases.expired(now, Math.ceil(limit / 2), seen);
    rows.push(...this.all(`${SELECT} WHERE ${NOT_LEASED} AND due_at <= ? ORDER BY due_at ${LIMIT}`, now, limit - rows.length));
    if (rows.length < limit) rows.push(...this.leases.expired(now, limit - rows.length, seen));
    return rows.sort((a, b) => (a.dueAt ?? 0) - (b.dueAt ?? 0));
  }

  /** The earliest due task or lease row (LeaseRows.nextAt: on a whole second). */
  nextDueAt(): number | null {
    this.flush();
    this.leases.write();
    const task = this.run(`SELECT min(due_at) AS at FROM tasks WHERE ${NOT_LEASED}`)[0].at as number | null;
    const lease = this.leases.nextAt();
    return task === null ? lease : lease === null ? task : Math.min(task, lease);
  }

  list(options: ListOptions): TaskRow[] {
    this.flush();
    const where: string[] = [];
    const params: SqlStorageValue[] = [];
    if (options.status) {
      // `failed` and `blocked` are served by their partial indexes (tasks_failed, tasks_blocked).
      where.push("status = ?");
      params.push(options.status);
    }
    if (options.after) {
      where.push("id > ?");
      params.push(options.after);
    }
    if (options.finishedBy !== undefined) {
      where.push("finished_at <= ?");
      params.push(options.finishedBy);
    }
    const clause = where.length ? ` WHERE ${where.join(" AND ")}` : "";
    return this.all(`${SELECT}${clause} ORDER BY id ${LIMIT}`, ...params, options.limit);
  }

  counts(): Partial<Record<Status, number>> {
    this.flush();
    const out: Partial<Record<Status, number>> = {};
    for (const r of this.run("SELECT status, count(*) AS n FROM tasks GROUP BY status")) {
      out[r.status as Status] = r.n as number;
    }
    return out;
  }

  oldestReadyAt(): number | null {
    this.flush();
    // One index seek per priority on the ready index, and the grouped ready index read through.
    const sql = `SELECT min(m) AS m FROM (SELECT (SELECT min(ready_at) FROM tasks WHERE status = 'pending' AND group_key IS NULL AND priority = p.value) AS m
      FROM json_each('[1,2,3,4,5,6,7,8,9,10]') p UNION ALL SELECT min(ready_at) FROM tasks WHERE status = 'pending' AND group_key IS NOT NULL)`;
    return (this.run(sql)[0]?.m as number | null) ?? null;
  }

  maxSeq(): number {
    this.flush();
    return (this.run("SELECT coalesce(max(seq), 0) AS seq FROM tasks")[0]?.seq as number) ?? 0;
  }

  /**
   * Writes the buffered changes as few statements (durable/task-writes.ts), and the expiry of what
   * they leased. `inserts: false` keeps new rows buffered (they change no stored row, so what is
   * written reads the same).
   */
  private flush(inserts = true): void {
    const rows = inserts ? this.inserts : new Map<string, TaskRow>();
    if (this.deletes.size + this.updates.size + rows.size === 0) return;
    for (const [id, changes] of this.updates) if (changes.status === "running" && changes.dueAt != null) this.leases.add(id, changes.dueAt);
    for (const row of rows.values()) if (row.status === "running" && row.dueAt !== null) this.leases.add(row.id, row.dueAt);
    for (const { sql, params } of taskWrites(this.deletes, this.updates, rows.values())) this.run(sql, ...params);
    if (this.depth === 0) this.leases.write(); // outside a transaction nothing gathers them
    this.deletes.clear();
    this.updates.clear();
    rows.clear();
  }

  /** Task rows: `query` selects SELECT's columns. */
  private all(query: string, ...params: unknown[]): TaskRow[] {
    const cursor = this.storage.sql.exec(query, ...params);
    const rows = taskRows(cursor);
    this.rowsRead += cursor.rowsRead;
    this.rowsWritten += cursor.rowsWritten;
    return rows;
  }

  private one(query: string, ...params: unknown[]): TaskRow | null {
    return this.all(query, ...params)[0] ?? null;
  }
}

import type { TaskEvent } from "../schema/shard";
import { chunks, chunksBySize } from "./core/chunks";
import type { ChildRow, KeyRow, MailRow, OutboxRow } from "./core/store";
import { MAX_PARAMS } from "./task-writes";

/**
 * A bound LIMIT, as `? + 0`. SQLite's planner reads the value bound to a bare `LIMIT ?` (to choose
 * between an index's order and a sort) and so marks the statement to be prepared again whenever
 * that binding changes; workerd clears a cached statement's bindings after every run, so every run
 * was prepared anew: ~150 µs for the task SELECT, three or four times per idle task (measured,
 * ARCHITECTURE "Prepared statements"). The planner does not read `? + 0`; the plan is the same.
 */
export const LIMIT = "LIMIT ? + 0";

/** characters of event JSON per outbox row; one event is at most ~260 KiB (payload or result ≤ 128 KiB) */
const MAX_OUTBOX_ROW = 512 * 1024;

type Row = Record<string, SqlStorageValue>;

/**
 * A shard's tables beside its task rows, over the Durable Object's SQLite: idempotency keys, the
 * outbox, history rows set aside, meta, dependency edges, mail to other shards and its dead
 * letters, a parent's children. Each call is written at once (nothing here is buffered).
 * Counts rows read and written for cost reporting. SqlStore (durable/sql-store.ts) adds the
 * task rows.
 */
export class SideRows {
  rowsRead = 0;
  rowsWritten = 0;

  constructor(protected readonly storage: DurableObjectStorage) {}

  getKey(key: string): KeyRow | null {
    const row = this.run("SELECT task_id, created_at FROM idem_keys WHERE key = ?", key)[0];
    return row ? { taskId: row.task_id as string, createdAt: row.created_at as number } : null;
  }

  putKey(key: string, taskId: string, at: number): void {
    this.run("INSERT OR REPLACE INTO idem_keys (key, task_id, created_at) VALUES (?, ?, ?)", key, taskId, at);
  }

  deleteKey(key: string, taskId: string): void {
    this.run("DELETE FROM idem_keys WHERE key = ? AND task_id = ?", key, taskId);
  }

  dropKeys(before: number, limit: number): number {
    return this.run(
      `DELETE FROM idem_keys WHERE key IN (SELECT key FROM idem_keys WHERE created_at <= ? ORDER BY created_at ${LIMIT}) RETURNING key`,
      before,
      limit,
    ).length;
  }

  oldestKeyAt(): number | null {
    return (this.run("SELECT min(created_at) AS at FROM idem_keys")[0]?.at as number | null) ?? null;
  }

  /** One outbox row per call, split where a row would pass MAX_OUTBOX_ROW (DO SQLite refuses rows over 2 MB). */
  appendOutbox(at: number, events: TaskEvent[]): void {
    const texts = events.map((e) => JSON.stringify(e));
    for (const part of chunksBySize(texts, (t) => t.length + 1, MAX_OUTBOX_ROW)) {
      this.run("INSERT INTO outbox (at, events) VALUES (?, ?)", at, `[${part.join(",")}]`);
    }
  }

  readOutbox(after: number, limit: number): OutboxRow[] {
    return this.run(`SELECT seq, at, events FROM outbox WHERE seq > ? ORDER BY seq ${LIMIT}`, after, limit).map((r) => ({
      seq: r.seq as number,
      at: r.at as number,
      events: JSON.parse(r.events as string) as TaskEvent[],
      size: (r.events as string).length,
    }));
  }

  outboxSize(): number {
    return this.run("SELECT count(*) AS n FROM outbox")[0].n as number;
  }

  deleteOutbox(upTo: number): void {
    this.run("DELETE FROM outbox WHERE seq <= ?", upTo);
  }

  oldestOutboxAt(): number | null {
    return (this.run("SELECT at FROM outbox ORDER BY seq LIMIT 1")[0]?.at as number | undefined) ?? null;
  }

  buryHistory(taskId: string, reason: string, body: string, at: number): void {
    this.run("INSERT INTO history_dead (task_id, reason, body, died_at) VALUES (?, ?, ?, ?)", taskId, reason, body, at);
  }

  countDeadHistory(): number {
    return this.run("SELECT count(*) AS n FROM history_dead")[0].n as number;
  }

  getMeta(key: string): string | null {
    return (this.run("SELECT value FROM meta WHERE key = ?", key)[0]?.value as string | undefined) ?? null;
  }

  setMeta(key: string, value: string): void {
    this.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  addDependent(dep: string, dependent: string): void {
    this.run("INSERT OR IGNORE INTO edges (dep_id, dependent_id) VALUES (?, ?)", dep, dependent);
  }

  takeDependents(dep: string): string[] {
    return this.run("DELETE FROM edges WHERE dep_id = ? RETURNING dependent_id", dep)
      .map((r) => r.dependent_id as string)
      .sort();
  }

  appendMail(target: string, body: string, at: number): void {
    this.run("INSERT INTO mail (target, body, next_at) VALUES (?, ?, ?)", target, body, at);
  }

  dueMail(now: number, limit: number): MailRow[] {
    return this.run(
      `SELECT seq, target, body, attempts FROM mail WHERE next_at <= ? ORDER BY next_at, seq ${LIMIT}`,
      now,
      limit,
    ) as unknown as MailRow[];
  }

  nextMailAt(): number | null {
    return (this.run("SELECT min(next_at) AS next FROM mail")[0]?.next as number | null) ?? null;
  }

  deleteMail(seqs: number[]): void {
    for (const part of chunks(seqs, MAX_PARAMS)) this.run(`DELETE FROM mail WHERE seq IN (${part.map(() => "?").join(", ")})`, ...part);
  }

  retryMail(seq: number, attempts: number, nextAt: number): void {
    this.run("UPDATE mail SET attempts = ?, next_at = ? WHERE seq = ?", attempts, nextAt, seq);
  }

  buryMail(seq: number, attempts: number, at: number): void {
    this.run(
      "INSERT INTO mail_dead (seq, target, body, attempts, died_at) SELECT seq, target, body, ?, ? FROM mail WHERE seq = ?",
      attempts,
      at,
      seq,
    );
    this.run("DELETE FROM mail WHERE seq = ?", seq);
  }

  sweepDead(before: number): void {
    this.run("DELETE FROM mail_dead WHERE died_at <= ?", before);
    this.run("DELETE FROM history_dead WHERE died_at <= ?", before);
  }

  countDeadMail(): number {
    return this.run("SELECT count(*) AS n FROM mail_dead")[0].n as number;
  }

  deleteChildren(parent: string): void {
    this.run("DELETE FROM children WHERE parent_id = ?", parent);
  }

  getChild(parent: string, child: string): ChildRow | null {
    const row = this.run("SELECT child_id AS child, status, result FROM children WHERE parent_id = ? AND child_id = ?", parent, child)[0];
    return (row as unknown as ChildRow | undefined) ?? null;
  }

  putChild(parent: string, child: string, status: string, result: string | null): void {
    this.run("INSERT OR REPLACE INTO children (parent_id, child_id, status, result) VALUES (?, ?, ?, ?)", parent, child, status, result);
  }

  listChildren(parent: string, after: string | undefined, limit: number): ChildRow[] {
    return this.run(
      `SELECT child_id AS child, status, result FROM children WHERE parent_id = ? AND child_id > ? ORDER BY child_id ${LIMIT}`,
      parent,
      after ?? "",
      limit,
    ) as unknown as ChildRow[];
  }

  protected run(query: string, ...params: unknown[]): Row[] {
    const cursor = this.storage.sql.exec<Row>(query, ...params);
    const rows = cursor.toArray();
    this.rowsRead += cursor.rowsRead;
    this.rowsWritten += cursor.rowsWritten;
    return rows;
  }
}

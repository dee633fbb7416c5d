import { TASK_COLUMNS, TASK_FIELDS, type Status, type TaskEvent, type TaskRow } from "../schema/shard";
import type { ShardStore } from "./core/store";

const SELECT = `SELECT ${TASK_FIELDS.map((f) => (TASK_COLUMNS[f] === f ? f : `${TASK_COLUMNS[f]} AS ${f}`)).join(", ")} FROM tasks`;
const INSERT = `INSERT INTO tasks (${TASK_FIELDS.map((f) => TASK_COLUMNS[f]).join(", ")}) VALUES (${TASK_FIELDS.map(() => "?").join(", ")})`;

type Row = Record<string, SqlStorageValue>;

/** ShardStore over the Durable Object's SQLite; counts rows read and written for cost reporting. */
export class SqlStore implements ShardStore {
  rowsRead = 0;
  rowsWritten = 0;

  constructor(private readonly storage: DurableObjectStorage) {}

  transaction<T>(fn: () => T): T {
    return this.storage.transactionSync(fn);
  }

  get(id: string): TaskRow | null {
    return this.one(`${SELECT} WHERE id = ?`, id);
  }

  byIdempotencyKey(key: string): TaskRow | null {
    return this.one(`${SELECT} WHERE idempotency_key = ?`, key);
  }

  insert(row: TaskRow): void {
    this.run(INSERT, ...TASK_FIELDS.map((f) => row[f]));
  }

  update(id: string, changes: Partial<TaskRow>): void {
    const fields = Object.keys(changes) as (keyof TaskRow)[];
    if (fields.length === 0) return;
    const set = fields.map((f) => `${TASK_COLUMNS[f]} = ?`).join(", ");
    this.run(`UPDATE tasks SET ${set} WHERE id = ?`, ...fields.map((f) => changes[f] ?? null), id);
  }

  delete(id: string): void {
    this.run("DELETE FROM tasks WHERE id = ?", id);
  }

  ready(limit: number): TaskRow[] {
    return this.all(`${SELECT} WHERE status = 'pending' ORDER BY priority DESC, ready_at, seq LIMIT ?`, limit);
  }

  scheduled(limit: number): TaskRow[] {
    return this.all(`${SELECT} WHERE due_at IS NOT NULL AND status = 'scheduled' ORDER BY due_at LIMIT ?`, limit);
  }

  due(now: number, limit: number): TaskRow[] {
    return this.all(`${SELECT} WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?`, now, limit);
  }

  nextDueAt(): number | null {
    const row = this.run("SELECT min(due_at) AS next FROM tasks WHERE due_at IS NOT NULL")[0];
    return (row?.next as number | null) ?? null;
  }

  list(options: { status?: Status; after?: string; limit: number }): TaskRow[] {
    const where: string[] = [];
    const params: SqlStorageValue[] = [];
    if (options.status) {
      where.push("status = ?");
      params.push(options.status);
    }
    if (options.after) {
      where.push("id > ?");
      params.push(options.after);
    }
    const clause = where.length ? ` WHERE ${where.join(" AND ")}` : "";
    return this.all(`${SELECT}${clause} ORDER BY id LIMIT ?`, ...params, options.limit);
  }

  counts(): Partial<Record<Status, number>> {
    const out: Partial<Record<Status, number>> = {};
    for (const r of this.run("SELECT status, count(*) AS n FROM tasks GROUP BY status")) {
      out[r.status as Status] = r.n as number;
    }
    return out;
  }

  maxSeq(): number {
    return (this.run("SELECT coalesce(max(seq), 0) AS seq FROM tasks")[0]?.seq as number) ?? 0;
  }

  appendOutbox(at: number, events: TaskEvent[]): void {
    this.run("INSERT INTO outbox (at, events) VALUES (?, ?)", at, JSON.stringify(events));
  }

  outboxSize(): number {
    return this.run("SELECT count(*) AS n FROM outbox")[0].n as number;
  }

  getMeta(key: string): string | null {
    return (this.run("SELECT value FROM meta WHERE key = ?", key)[0]?.value as string | undefined) ?? null;
  }

  setMeta(key: string, value: string): void {
    this.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  private run(query: string, ...params: unknown[]): Row[] {
    const cursor = this.storage.sql.exec<Row>(query, ...params);
    const rows = cursor.toArray();
    this.rowsRead += cursor.rowsRead;
    this.rowsWritten += cursor.rowsWritten;
    return rows;
  }

  private all(query: string, ...params: unknown[]): TaskRow[] {
    return this.run(query, ...params) as unknown as TaskRow[];
  }

  private one(query: string, ...params: unknown[]): TaskRow | null {
    return this.all(query, ...params)[0] ?? null;
  }
}

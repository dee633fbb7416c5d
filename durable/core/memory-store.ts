import { type Status, type TaskEvent, type TaskRow } from "../../schema/shard";
import type { ChildRow, KeyRow, ListOptions, MailRow, OutboxRow, ShardStore } from "./store";

/** Lease order: priority first, then the order tasks became ready. */
const leaseOrder = (a: TaskRow, b: TaskRow) => b.priority - a.priority || a.readyAt! - b.readyAt! || a.seq - b.seq;

/** ShardStore over plain maps: the reference the SQL store is checked against, and the unit tests' storage. */
export class MemoryStore implements ShardStore {
  readonly tasks = new Map<string, TaskRow>();
  readonly outbox: OutboxRow[] = [];
  private outboxSeq = 0;
  readonly deadHistory: { taskId: string; reason: string; body: string; diedAt: number }[] = [];
  private readonly meta = new Map<string, string>();
  /** `dep dependent` pairs */
  readonly edges = new Set<string>();
  readonly mail: (MailRow & { nextAt: number })[] = [];
  /** keyed `parent child` */
  readonly children = new Map<string, ChildRow>();
  readonly keys = new Map<string, KeyRow>();
  private mailSeq = 0;

  transaction<T>(fn: () => T): T {
    const tasks = new Map(this.tasks);
    const outbox = this.outbox.length;
    const edges = new Set(this.edges);
    const mail = this.mail.map((m) => ({ ...m }));
    const children = new Map(this.children);
    const keys = new Map(this.keys);
    const meta = new Map(this.meta);
    try {
      return fn();
    } catch (e) {
      this.tasks.clear();
      for (const [k, v] of tasks) this.tasks.set(k, v);
      this.outbox.length = outbox;
      this.edges.clear();
      for (const edge of edges) this.edges.add(edge);
      this.mail.splice(0, this.mail.length, ...mail);
      this.children.clear();
      for (const [k, v] of children) this.children.set(k, v);
      this.keys.clear();
      for (const [k, v] of keys) this.keys.set(k, v);
      this.meta.clear();
      for (const [k, v] of meta) this.meta.set(k, v);
      throw e;
    }
  }

  get(id: string): TaskRow | null {
    const row = this.tasks.get(id);
    return row ? { ...row } : null;
  }

  prefetch(): void {}

  getKey(key: string): KeyRow | null {
    const row = this.keys.get(key);
    return row ? { ...row } : null;
  }

  putKey(key: string, taskId: string, at: number): void {
    this.keys.set(key, { taskId, createdAt: at });
  }

  deleteKey(key: string, taskId: string): void {
    if (this.keys.get(key)?.taskId === taskId) this.keys.delete(key);
  }

  dropKeys(before: number, limit: number): number {
    const old = [...this.keys]
      .filter(([, k]) => k.createdAt <= before)
      .sort((a, b) => a[1].createdAt - b[1].createdAt)
      .slice(0, limit);
    for (const [key] of old) this.keys.delete(key);
    return old.length;
  }

  oldestKeyAt(): number | null {
    let at: number | null = null;
    for (const k of this.keys.values()) at = at === null ? k.createdAt : Math.min(at, k.createdAt);
    return at;
  }

  insert(row: TaskRow): void {
    if (this.tasks.has(row.id)) throw new Error(`duplicate task id ${row.id}`);
    this.tasks.set(row.id, { ...row });
  }

  update(id: string, changes: Partial<TaskRow>): void {
    const row = this.tasks.get(id);
    if (row) this.tasks.set(id, { ...row, ...changes });
  }

  delete(id: string): void {
    this.tasks.delete(id);
  }

  pending(limit: number, createdBy: number): TaskRow[] {
    return this.where((r) => r.status === "pending" && r.createdAt <= createdBy).slice(0, limit);
  }

  ready(limit: number): TaskRow[] {
    return this.where((r) => r.status === "pending" && r.groupKey === null)
      .sort(leaseOrder)
      .slice(0, limit);
  }

  readyHeads(groups: string[]): TaskRow[] {
    return groups.flatMap((group) =>
      this.where((r) => r.status === "pending" && (r.groupKey ?? "") === group)
        .sort(leaseOrder)
        .slice(0, 1),
    );
  }

  flowCounts(): { group: string; status: "pending" | "running"; n: number }[] {
    const counts = new Map<string, number>();
    for (const r of this.tasks.values()) {
      if (r.status !== "pending" && r.status !== "running") continue;
      const key = `${r.status} ${r.groupKey ?? ""}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, n]) => {
      const cut = key.indexOf(" ");
      return { status: key.slice(0, cut) as "pending" | "running", group: key.slice(cut + 1), n };
    });
  }

  scheduled(limit: number, createdBy: number): TaskRow[] {
    return this.where((r) => r.status === "scheduled" && r.createdAt <= createdBy)
      .sort((a, b) => a.dueAt! - b.dueAt!)
      .slice(0, limit);
  }

  due(now: number, limit: number): TaskRow[] {
    return this.where((r) => r.dueAt !== null && r.dueAt <= now)
      .sort((a, b) => a.dueAt! - b.dueAt!)
      .slice(0, limit);
  }

  nextDueAt(): number | null {
    let next: number | null = null;
    for (const r of this.tasks.values()) if (r.dueAt !== null && (next === null || r.dueAt < next)) next = r.dueAt;
    return next;
  }

  list(options: ListOptions): TaskRow[] {
    const { status, after, finishedBy, limit } = options;
    return this.where(
      (r) =>
        (!status || r.status === status) &&
        (!after || r.id > after) &&
        (finishedBy === undefined || (r.finishedAt !== null && r.finishedAt <= finishedBy)),
    )
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, limit);
  }

  counts(): Partial<Record<Status, number>> {
    const out: Partial<Record<Status, number>> = {};
    for (const r of this.tasks.values()) out[r.status] = (out[r.status] ?? 0) + 1;
    return out;
  }

  oldestReadyAt(): number | null {
    let min: number | null = null;
    for (const r of this.tasks.values())
      if (r.status === "pending" && r.readyAt !== null && (min === null || r.readyAt < min)) min = r.readyAt;
    return min;
  }

  maxSeq(): number {
    let max = 0;
    for (const r of this.tasks.values()) max = Math.max(max, r.seq);
    return max;
  }

  appendOutbox(at: number, events: TaskEvent[]): void {
    this.outbox.push({ seq: ++this.outboxSeq, at, events: [...events], size: JSON.stringify(events).length });
  }

  readOutbox(after: number, limit: number): OutboxRow[] {
    return this.outbox.filter((o) => o.seq > after).slice(0, limit);
  }

  deleteOutbox(upTo: number): void {
    this.outbox.splice(0, this.outbox.length, ...this.outbox.filter((o) => o.seq > upTo));
  }

  oldestOutboxAt(): number | null {
    return this.outbox[0]?.at ?? null;
  }

  buryHistory(taskId: string, reason: string, body: string, at: number): void {
    this.deadHistory.push({ taskId, reason, body, diedAt: at });
  }

  countDeadHistory(): number {
    return this.deadHistory.length;
  }

  outboxSize(): number {
    return this.outbox.length;
  }

  getMeta(key: string): string | null {
    return this.meta.get(key) ?? null;
  }

  setMeta(key: string, value: string): void {
    this.meta.set(key, value);
  }

  addDependent(dep: string, dependent: string): void {
    this.edges.add(`${dep} ${dependent}`);
  }

  takeDependents(dep: string): string[] {
    const out: string[] = [];
    for (const edge of this.edges) {
      const [from, to] = edge.split(" ");
      if (from === dep) {
        out.push(to);
        this.edges.delete(edge);
      }
    }
    return out.sort();
  }

  appendMail(target: string, body: string, at: number): void {
    this.mail.push({ seq: ++this.mailSeq, target, body, attempts: 0, nextAt: at });
  }

  dueMail(now: number, limit: number): MailRow[] {
    return this.mail
      .filter((m) => m.nextAt <= now)
      .sort((a, b) => a.nextAt - b.nextAt || a.seq - b.seq)
      .slice(0, limit)
      .map(({ seq, target, body, attempts }) => ({ seq, target, body, attempts }));
  }

  nextMailAt(): number | null {
    return this.mail.reduce<number | null>((next, m) => (next === null || m.nextAt < next ? m.nextAt : next), null);
  }

  deleteMail(seqs: number[]): void {
    const gone = new Set(seqs);
    this.mail.splice(0, this.mail.length, ...this.mail.filter((m) => !gone.has(m.seq)));
  }

  readonly deadMail: (MailRow & { diedAt: number })[] = [];

  buryMail(seq: number, attempts: number, at: number): void {
    const m = this.mail.find((x) => x.seq === seq);
    if (!m) return;
    this.deadMail.push({ seq, target: m.target, body: m.body, attempts, diedAt: at });
    this.deleteMail([seq]);
  }

  sweepDead(before: number): void {
    this.deadMail.splice(0, this.deadMail.length, ...this.deadMail.filter((m) => m.diedAt > before));
    this.deadHistory.splice(0, this.deadHistory.length, ...this.deadHistory.filter((d) => d.diedAt > before));
  }

  countDeadMail(): number {
    return this.deadMail.length;
  }

  deleteChildren(parent: string): void {
    for (const key of [...this.children.keys()]) if (key.startsWith(`${parent} `)) this.children.delete(key);
  }

  retryMail(seq: number, attempts: number, nextAt: number): void {
    const m = this.mail.find((x) => x.seq === seq);
    if (m) Object.assign(m, { attempts, nextAt });
  }

  getChild(parent: string, child: string): ChildRow | null {
    const row = this.children.get(`${parent} ${child}`);
    return row ? { ...row } : null;
  }

  putChild(parent: string, child: string, status: string, result: string | null): void {
    this.children.set(`${parent} ${child}`, { child, status, result });
  }

  listChildren(parent: string, after: string | undefined, limit: number): ChildRow[] {
    return [...this.children]
      .filter(([k, v]) => k.startsWith(`${parent} `) && (after === undefined || v.child > after))
      .map(([, v]) => ({ ...v }))
      .sort((a, b) => (a.child < b.child ? -1 : 1))
      .slice(0, limit);
  }

  private where(pred: (r: TaskRow) => boolean): TaskRow[] {
    const out: TaskRow[] = [];
    for (const r of this.tasks.values()) if (pred(r)) out.push({ ...r });
    return out;
  }
}

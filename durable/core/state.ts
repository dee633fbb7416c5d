import {
  DEFAULT_SETTINGS,
  settingsFrom,
  type EventType,
  type QueueSettings,
  type Status,
  type TaskEvent,
  type TaskRow,
} from "../../schema/shard";
import { QueueError, check } from "./errors";
import { FlowControl } from "./flow";
import { keyHomes } from "./placement";
import { parseTaskId, shardKey, taskId, UlidFactory, type TaskAddress } from "./ids";
import { changesOf, DAY, holdsLease, min, readyPatch, schedulePatch } from "./rules";
import type { ShardStore } from "./store";
import type { Clock, Entropy, Mail, ShardAddress } from "./types";

const SETTINGS_KEY = "settings";
const SWEEP_KEY = "sweep";
const ADDRESS_KEY = "address";
const PURGE_KEY = "purge";
const SEQ_KEY = "seq_reserved";
/** Ready-order numbers are reserved in blocks (one meta write per block), so a start reads one row, not every task. */
const SEQ_BLOCK = 10_000;

/** The `idem_keys` entry that marks a claimed id as deleted (NUL-prefixed: apart from users' keys). */
export const deletedMark = (id: string) => `\u0000deleted:${id}`;

/** When the next retention sweep is due and where it resumes (persisted in the store's meta). */
export interface Sweep {
  at: number | null;
  after?: string;
}

/**
 * What one shard's engine knows, and the one path by which a task changes: a
 * transition writes the changed fields, records them as an event for the
 * outbox, and keeps the in-memory counts and due time current. Every concern
 * of the engine (lifecycle, mail, flow control, due work) works through it.
 */
export class ShardState {
  readonly ulid: UlidFactory;
  readonly flow: FlowControl;
  seq: number;
  settings!: QueueSettings;
  address!: ShardAddress | null;
  /** the earliest due task (a stale-early value only makes the alarm fire, find nothing, and re-arm) */
  nextDue!: number | null;
  nextMail!: number | null;
  sweep!: Sweep;
  /** while a purge is under way: it cancels the tasks created up to this time */
  purgeBy!: number | null;
  /** the events of the call under way, written to the outbox when it commits */
  events: TaskEvent[] = [];
  /** messages for tasks of this shard, applied before the transaction ends */
  local: Mail[] = [];
  private settingsJson!: string;
  /** ready-order numbers up to this one are reserved in storage */
  private seqReserved!: number;
  /** tasks per status, read once (one grouped count) and then kept current by every change */
  private statusCounts: Map<Status, number> | null = null;

  constructor(
    readonly store: ShardStore,
    readonly clock: Clock,
    readonly entropy: Entropy,
  ) {
    this.ulid = new UlidFactory(() => entropy.random());
    this.flow = new FlowControl(this);
    this.reload();
    const reserved = store.getMeta(SEQ_KEY);
    // Shards from before reservations read their highest number once.
    this.seq = reserved ? Number(reserved) : store.maxSeq();
  }

  /** Reads again, from storage, every piece of state kept in memory (at a start, and after a rollback). */
  reload(): void {
    const { store } = this;
    this.flow.forget();
    this.statusCounts = null;
    this.nextDue = store.nextDueAt();
    this.nextMail = store.nextMailAt();
    this.sweep = JSON.parse(store.getMeta(SWEEP_KEY) ?? '{"at":null}') as Sweep;
    this.settingsJson = store.getMeta(SETTINGS_KEY) ?? JSON.stringify(DEFAULT_SETTINGS);
    this.settings = settingsFrom(this.settingsJson);
    const address = store.getMeta(ADDRESS_KEY);
    this.address = address ? (JSON.parse(address) as ShardAddress) : null;
    const purge = store.getMeta(PURGE_KEY);
    this.purgeBy = purge ? Number(purge) : null;
    this.seqReserved = Number(store.getMeta(SEQ_KEY) ?? 0);
  }

  /** Takes newer settings (by `version`); a shorter retention sweeps at the next chance. */
  configure(settings: QueueSettings): void {
    if (settings.version < this.settings.version) return;
    const json = JSON.stringify(settings);
    if (json === this.settingsJson) return;
    const shorter = settings.retentionDays < this.settings.retentionDays;
    this.store.transaction(() => {
      this.store.setMeta(SETTINGS_KEY, json);
      if (shorter && this.sweep.at !== null) this.setSweep({ at: this.clock.now() });
    });
    this.settingsJson = json;
    this.settings = settingsFrom(json); // fields a caller's copy lacks take their defaults
  }

  /** Remembers where this shard is (its queue, number and tenant), once a call has said so. */
  know(address: ShardAddress): void {
    const a = this.address;
    if (a?.queue === address.queue && a.shard === address.shard && (a.tenant === address.tenant || address.tenant === undefined)) return;
    this.address = { queue: address.queue, shard: address.shard, tenant: address.tenant ?? a?.tenant };
    this.store.setMeta(ADDRESS_KEY, JSON.stringify(this.address));
  }

  /** A new task id for shard `shard` of this queue (time-sorted). */
  newId(queue: string, shard: number, now: number): string {
    return taskId(this.ulid.next(now), shard, queue);
  }

  isHere(at: TaskAddress | null): boolean {
    return at !== null && this.address !== null && at.queue === this.address.queue && at.shard === this.address.shard;
  }

  /** Writes the changed fields of `row` and records them as one event. */
  transition(row: TaskRow, type: EventType, patch: Partial<TaskRow>): TaskRow {
    const after = { ...row, ...patch };
    const changes = changesOf(row, patch);
    if (Object.keys(changes).length === 0) return after; // nothing changed (a second heartbeat in the same millisecond)
    this.store.update(row.id, changes);
    if (changes.status !== undefined) {
      this.flow.track(row.groupKey, row.status, changes.status);
      this.countMove(row.status, changes.status);
    }
    const { leaseToken: _hidden, ...visible } = changes;
    this.emit(type, row.id, visible);
    return after;
  }

  /**
   * Stores a new task and records it as an `enqueued` event: the whole task, its null fields left
   * out (a field an `enqueued` event does not name is null), so the outbox holds about half the
   * text: most of a new task's fields are null.
   */
  insert(row: TaskRow): void {
    this.store.insert(row);
    this.flow.track(row.groupKey, null, row.status);
    this.countMove(null, row.status);
    const changes: Record<string, unknown> = {};
    for (const key in row) {
      const value = row[key as keyof TaskRow];
      if (value !== null && key !== "leaseToken") changes[key] = value;
    }
    this.emit("enqueued", row.id, changes as TaskEvent["changes"]);
  }

  /** Ends a task: terminal status, retention from now, and news to its dependents and its parent. */
  finish(row: TaskRow, type: EventType, status: Status, patch: Partial<TaskRow>): TaskRow {
    const now = this.clock.now();
    const expiry = now + this.settings.retentionDays * DAY;
    if (this.sweep.at === null || expiry < this.sweep.at) this.setSweep({ at: expiry, after: this.sweep.after });
    const done = this.transition(row, type, { ...patch, status, finishedAt: now, dueAt: null, readyAt: null });
    if (row.hasDependents) {
      for (const dependent of this.store.takeDependents(row.id)) {
        this.send(dependent, { kind: "resolved", dep: row.id, dependent, ok: status === "completed", status });
      }
    }
    if (row.parentId) this.send(row.parentId, { kind: "child_finished", parent: row.parentId, child: row.id, status, result: done.result });
    return done;
  }

  /** Deletes a finished task with what hangs off it: its children's records and (if asked) its idempotency key. */
  drop(row: TaskRow, freeKey = true): void {
    this.store.delete(row.id);
    this.countMove(row.status, null);
    if (row.children !== null) this.store.deleteChildren(row.id);
    if (freeKey) this.freeKey(row);
  }

  /**
   * The id `key` names: the task it named within the window, else `id` (the key
   * is claimed for it, and swept once the window has passed).
   */
  claimKey(key: string, id: string, now: number): string {
    const held = this.named(key, now);
    if (held !== null) return held;
    const window = this.settings.idempotencyWindowMs;
    this.store.putKey(key, id, now);
    if (this.sweep.at === null || now + window < this.sweep.at) this.setSweep({ at: now + window, after: this.sweep.after });
    return id;
  }

  /** The id `key` names here within its window, or null. A claim of this shard whose task is gone (deleted) names nothing. */
  named(key: string, now: number): string | null {
    const held = this.store.getKey(key);
    if (!held || held.createdAt + this.settings.idempotencyWindowMs <= now) return null;
    return !this.isHere(parseTaskId(held.taskId)) || this.store.get(held.taskId) ? held.taskId : null;
  }

  /**
   * A deleted task's key is free again: at once here, or by a message to the key's
   * home shard. Until the window ends, a mark says the id was deleted, so a replay
   * that still finds the key claimed cannot make the task again under that id.
   */
  private freeKey(row: TaskRow): void {
    const key = row.idempotencyKey;
    if (key === null || !this.address) return;
    const queue = this.address.queue;
    const homes = keyHomes(key, this.settings, this.clock.now()).map((shard) => ({ queue, shard }));
    for (const home of homes) {
      if (this.isHere(home)) this.store.deleteKey(key, row.id);
      else this.sendToShard(home, { kind: "unclaim", key, task: row.id });
    }
    if (homes.some((h) => !this.isHere(h))) this.store.putKey(deletedMark(row.id), row.id, this.clock.now());
  }

  /** Sends `mail` to the shard of task `to`: applied in this transaction when that is this shard, else queued for delivery. */
  send(to: string, mail: Mail): void {
    const at = parseTaskId(to);
    if (at) this.sendToShard(at, mail); // ids are validated at the edge; an id no shard can hold has no one to tell
  }

  sendToShard(at: TaskAddress, mail: Mail): void {
    if (this.isHere(at)) {
      this.local.push(mail);
      return;
    }
    const now = this.clock.now();
    this.store.appendMail(shardKey(at), JSON.stringify(mail), now);
    this.nextMail = min(this.nextMail, now);
  }

  /** Ready now, in the order tasks became ready. */
  ready(at: number): Partial<TaskRow> {
    if (++this.seq > this.seqReserved) {
      this.seqReserved = this.seq + SEQ_BLOCK;
      this.store.setMeta(SEQ_KEY, String(this.seqReserved));
    }
    return readyPatch(at, this.seq);
  }

  /** Ready now if `runAt` has come, else scheduled for it. */
  readyBy(runAt: number, now: number): Partial<TaskRow> {
    return runAt > now ? schedulePatch(runAt) : this.ready(now);
  }

  mustGet(id: string): TaskRow {
    const row = this.store.get(id);
    if (!row) throw new QueueError("not_found", `Task ${id} does not exist.`);
    return row;
  }

  /** The running task `id` if `leaseToken` holds its lease now (see `holdsLease`). */
  leased(id: string, leaseToken: string, row = this.mustGet(id)): TaskRow {
    check(
      holdsLease(row, leaseToken, this.clock.now()),
      "stale_lease",
      `Task ${id} is not leased with this token: its lease expired, or it was released, finished or leased again. Lease a task again to work on it.`,
    );
    return row;
  }

  setSweep(sweep: Sweep): void {
    this.sweep = sweep;
    this.store.setMeta(SWEEP_KEY, JSON.stringify(sweep));
  }

  setPurge(by: number | null): void {
    this.purgeBy = by;
    this.store.setMeta(PURGE_KEY, by === null ? "" : String(by));
  }

  /** Tasks per status, counted from storage once after a start, then kept current in memory. */
  counts(): Partial<Record<Status, number>> {
    this.statusCounts ??= new Map(Object.entries(this.store.counts()) as [Status, number][]);
    return Object.fromEntries([...this.statusCounts].filter(([, n]) => n > 0));
  }

  private countMove(from: Status | null, to: Status | null): void {
    const c = this.statusCounts;
    if (!c || from === to) return;
    if (from) c.set(from, (c.get(from) ?? 0) - 1);
    if (to) c.set(to, (c.get(to) ?? 0) + 1);
  }

  noteDue(at: number): void {
    if (this.nextDue === null || at < this.nextDue) this.nextDue = at;
  }

  emit(type: EventType, id: string, changes: TaskEvent["changes"]): void {
    this.events.push({ type, id, at: this.clock.now(), changes });
    if (changes.dueAt != null) this.noteDue(changes.dueAt);
  }
}

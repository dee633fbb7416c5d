import {
  DEFAULT_SETTINGS,
  settingsFrom,
  TERMINAL,
  type Backoff,
  type ChildCounts,
  type EventType,
  type QueueSettings,
  type Status,
  type TaskEvent,
  type TaskRow,
} from "../../schema/shard";
import { backoffDelay } from "./backoff";
import { resolveDependency } from "./dag";
import { limitsOf, shareOf, startShare, StartWindow } from "./flow";
import { QueueError, check, type Problem } from "./errors";
import { shardKey, parseShardKey, parseTaskId, shardForKey, taskId, UlidFactory, type TaskAddress } from "./ids";
import type { ShardStore } from "./store";

/**
 * The queue rules of one shard. Every decision about a task (when it runs, who
 * holds it, what a failure turns it into) is made here, over a ShardStore, with
 * time and randomness injected. The QueueShard Durable Object only transports.
 *
 * Each public method is one storage transaction and appends at most one outbox
 * row, holding every event of that call.
 */

export interface Clock {
  now(): number;
}
export interface Entropy {
  /** uniform in [0, 1) */
  random(): number;
  /** an unguessable lease token */
  token(): string;
}

export interface NewTask {
  /** set when the task's idempotency key was claimed for this id at the key's home shard (see `claim`) */
  id?: string;
  name: string;
  /** JSON text */
  payload: string;
  priority?: number;
  delayMs?: number;
  runAt?: number;
  maxAttempts?: number;
  backoff?: Backoff;
  timeoutMs?: number;
  parentId?: string;
  idempotencyKey?: string;
  groupKey?: string;
  tags?: string[];
  /** ids of tasks this one waits for (any shard of the tenant) */
  dependsOn?: string[];
  /** of `dependsOn`: the ones the caller saw completed (satisfied at once) */
  satisfied?: string[];
  /** of `dependsOn`: the ones the caller saw failed or cancelled */
  broken?: string[];
  onDependencyFailure?: "cancel" | "run";
  /** run only after every child has finished (and the task is sealed) */
  waitForChildren?: boolean;
}

/**
 * A message between shards about dependencies. Both kinds are idempotent at the
 * receiver: an edge is a set member, and a dependency leaves `depsWaiting` once.
 */
export type Mail =
  | { kind: "register"; dep: string; dependent: string }
  | { kind: "resolved"; dep: string; dependent: string; ok: boolean; status: string }
  | { kind: "child_added"; parent: string; child: string }
  | { kind: "child_finished"; parent: string; child: string; status: string; result: string | null }
  | { kind: "seal"; parent: string }
  /** to a key's home shard: the task the key named was deleted, so the key is free */
  | { kind: "unclaim"; key: string; task: string };

/** Where a shard is: its queue and number, and the tenant it belongs to (for addressing other shards). */
export interface ShardAddress extends TaskAddress {
  tenant?: string;
}

export interface OutgoingMail {
  seq: number;
  /** the receiving shard (same tenant) */
  to: TaskAddress;
  attempts: number;
  mail: Mail;
}

export interface Enqueued {
  task: TaskRow;
  /** false when an idempotency key met a task made within the window */
  created: boolean;
}

/** The idempotency key names a task of another shard (`id`): the caller fetches it there. */
export interface Elsewhere {
  created: false;
  elsewhere: string;
}

/** What a key claim answers: the id the key names, and whether this call claimed it. */
export interface Claim {
  id: string;
  fresh: boolean;
}

export interface Lease {
  task: TaskRow;
  leaseToken: string;
  expiresAt: number;
  /** for a task that waited for its children: each child's result (JSON text; null unless it completed) */
  childResults?: Record<string, string | null>;
  /** false when the parent has more children than one lease carries (read the rest with `children`) */
  childResultsComplete?: boolean;
}

export interface HeartbeatResult {
  expiresAt: number;
  cancelRequested: boolean;
}

export interface DueResult {
  promoted: number;
  expired: number;
  purged: number;
  /** pending and scheduled tasks cancelled by a purge still under way */
  cancelled: number;
}

export interface PurgeResult {
  cancelled: number;
  /** false while tasks are left to cancel: the alarm goes on with them */
  done: boolean;
}

/** Counts of what happened since this engine started (Prometheus counters: they reset on restart). */
export interface Totals {
  enqueued: number;
  leased: number;
  completed: number;
  /** terminal failures (dead letters) */
  failed: number;
  /** runs that will be tried again after a failure or an expired lease */
  retried: number;
  /** leases that ran out without a heartbeat */
  expired: number;
  cancelled: number;
}

export type ItemResult<T> = { id: string; ok: true; value: T } | { id: string; ok: false; problem: Problem };

const DAY = 86_400_000;
/** How many due tasks one pass handles; the alarm re-fires at once while more are due. */
export const DUE_BATCH = 500;
/**
 * A lease stops adding tasks once their payloads (and child results) pass this
 * many bytes, so a response stays a few MB however large `max` and the payloads
 * are; at least one task is always leased.
 */
export const LEASE_BYTES = 4 * 1024 * 1024;
/** A lease carries at most this many child results, and at most LEASE_BYTES of them. */
export const CHILD_RESULTS_MAX = 1000;
/** How many rows one retention sweep reads before it yields to the next alarm. */
export const SWEEP_BATCH = 2000;
const SETTINGS_KEY = "settings";
const SWEEP_KEY = "sweep";
const ADDRESS_KEY = "address";
const PURGE_KEY = "purge";
const SEQ_KEY = "seq_reserved";
/** Ready-order numbers are reserved in blocks (one meta write per block), so a start reads one row, not every task. */
const SEQ_BLOCK = 10_000;
const STARTS_KEY = "start_windows";

/** What the shard knows of its running and ready work by group, kept current by every transition once loaded. */
interface FlowState {
  running: number;
  /** per group ("" = no group): tasks pending and running */
  groups: Map<string, { pending: number; running: number }>;
  /** start times under the queue's start limit, and under each group's */
  starts: StartWindow;
  groupStarts: Map<string, StartWindow>;
  /** the group served last, so the next lease starts after it */
  cursor: string;
}

export interface GroupDepth {
  group: string;
  pending: number;
  running: number;
}

/** After this many failed deliveries (about 25 minutes) a message is dead: kept aside, no longer sent. */
export const MAIL_MAX_ATTEMPTS = 30;

/** Delivery retries back off from 100 ms, doubling, to at most a minute. */
function mailRetryDelay(attempts: number): number {
  return Math.min(60_000, 100 * 2 ** Math.min(attempts, 10));
}

/** When the next retention sweep is due and where it resumes (persisted in the store's meta). */
interface Sweep {
  at: number | null;
  after?: string;
}

export class ShardEngine {
  private readonly ulid: UlidFactory;
  private seq: number;
  private nextDue!: number | null;
  private sweep!: Sweep;
  private settings!: QueueSettings;
  private settingsJson!: string;
  private events: TaskEvent[] = [];
  /** messages for tasks of this shard, applied before the transaction ends */
  private local: Mail[] = [];
  private address!: ShardAddress | null;
  private nextMail!: number | null;
  /** while a purge is under way: it cancels the tasks created up to this time */
  private purgeBy!: number | null;
  /** ready-order numbers up to this one are reserved in storage */
  private seqReserved!: number;
  /** tasks per status, read once (one grouped count) and then kept current by every change */
  private statusCounts: Map<Status, number> | null = null;
  private flow: FlowState | null = null;
  readonly totals: Totals = { enqueued: 0, leased: 0, completed: 0, failed: 0, retried: 0, expired: 0, cancelled: 0 };

  constructor(
    private readonly store: ShardStore,
    private readonly clock: Clock,
    private readonly entropy: Entropy,
  ) {
    this.ulid = new UlidFactory(() => entropy.random());
    this.reload();
    const reserved = store.getMeta(SEQ_KEY);
    // Shards from before reservations read their highest number once.
    this.seq = reserved ? Number(reserved) : store.maxSeq();
  }

  /** When the next message to another shard is due (the DO's alarm covers it too). */
  nextMailAt(): number | null {
    return this.nextMail;
  }

  /** The earliest time at which a task needs the shard's attention (calls catch up on it first). */
  nextDueAt(): number | null {
    return this.sweep.at === null ? this.nextDue : min(this.nextDue, this.sweep.at);
  }

  /** When the alarm must next fire: due tasks, messages to deliver, or a purge under way (at once). */
  alarmAt(): number | null {
    let at = this.nextDueAt();
    if (this.nextMail !== null) at = min(at, this.nextMail);
    if (this.purgeBy !== null) at = min(at, this.clock.now());
    return at;
  }

  /** Grows whenever a task becomes ready (pending), so a caller can tell when to wake waiting consumers. */
  get readySeq(): number {
    return this.seq;
  }

  /**
   * Remembers the queue's settings; the alarm uses them when no caller is there
   * to pass them. Callers may hold a cached copy up to a second old, so settings
   * older than the ones held (a lower `version`) are ignored.
   */
  configure(settings: QueueSettings): void {
    if (settings.version < this.settings.version) return;
    const json = JSON.stringify(settings);
    if (json === this.settingsJson) return;
    const shorter = settings.retentionDays < this.settings.retentionDays;
    this.store.transaction(() => {
      this.store.setMeta(SETTINGS_KEY, json);
      // Finished tasks may now be past a shorter retention: sweep at the next chance.
      if (shorter && this.sweep.at !== null) this.setSweep({ at: this.clock.now() });
    });
    this.settingsJson = json;
    this.settings = settings;
  }

  // enqueue: inputs = validated tasks, the shard's address, queue settings.
  // output: one Enqueued per input, in order (an idempotent replay returns the first task).
  // errors: none; inputs are validated at the edge.
  enqueue(address: ShardAddress, inputs: NewTask[], settings: QueueSettings): (Enqueued | Elsewhere)[] {
    this.configure(settings);
    return this.tx(() => {
      this.know(address);
      const made = inputs.map((input) => this.enqueueOne(address, input));
      // A dependency in this shard may resolve at once (completed, failed): answer with the state after that.
      this.drain();
      return made.map((m) => ("task" in m && m.created && m.task.status === "blocked" ? { ...m, task: this.store.get(m.task.id) ?? m.task } : m));
    });
  }

  // claim: inputs = this shard's address, idempotency keys whose home is this shard, each with the shard its task goes to.
  // output: per key, the id of the task it names: a new id for that shard (fresh), or the one named within the window.
  // errors: none. The caller then creates the task with that id in its shard (`NewTask.id`).
  claim(address: ShardAddress, items: { key: string; shard: number }[], settings: QueueSettings): Claim[] {
    this.configure(settings);
    return this.tx(() => {
      this.know(address);
      const now = this.clock.now();
      return items.map(({ key, shard }) => {
        const id = taskId(this.ulid.next(now), shard, address.queue);
        const named = this.claimKey(key, id, now);
        return { id: named, fresh: named === id };
      });
    });
  }

  // receive: inputs = this shard's address, messages from other shards.
  // output: none; each message is applied once however often it arrives.
  // errors: none.
  receive(address: ShardAddress, mails: Mail[]): void {
    this.tx(() => {
      this.know(address);
      this.local.push(...mails);
    });
  }

  // peek: input = task ids of this shard. output: each one's status, or null when it does not exist.
  peek(ids: string[]): (Status | null)[] {
    this.catchUp();
    this.store.prefetch(ids);
    return ids.map((id) => this.store.get(id)?.status ?? null);
  }

  // seal: input = a parent's id. output: the parent; no more children will come, so it may run once they finish.
  // errors: not_found.
  seal(id: string): TaskRow {
    return this.tx(() => {
      this.mustGet(id);
      this.local.push({ kind: "seal", parent: id });
      this.drain();
      return this.store.get(id)!;
    });
  }

  // children: input = a parent's id, a cursor. output: its children's ids in id order, with how each finished (or `active`).
  // errors: not_found.
  children(parent: string, after: string | undefined, limit: number) {
    this.catchUp();
    this.mustGet(parent);
    return this.store.listChildren(parent, after, limit).map(({ child, status }) => ({ id: child, status }));
  }

  /** Messages due for delivery to other shards. */
  mailDue(limit = DUE_BATCH): OutgoingMail[] {
    return this.store.dueMail(this.clock.now(), limit).map((m) => ({
      seq: m.seq,
      to: parseShardKey(m.target),
      attempts: m.attempts,
      mail: JSON.parse(m.body) as Mail,
    }));
  }

  /** The receiver acknowledged these: they are done. */
  mailDelivered(seqs: number[]): void {
    this.store.transaction(() => this.store.deleteMail(seqs));
    this.nextMail = this.store.nextMailAt();
  }

  /** Delivery failed: each is tried again after a growing delay, until MAIL_MAX_ATTEMPTS, then it is dead. */
  mailFailed(mails: OutgoingMail[]): void {
    const now = this.clock.now();
    this.store.transaction(() => {
      for (const m of mails) {
        if (m.attempts + 1 >= MAIL_MAX_ATTEMPTS) this.store.buryMail(m.seq, m.attempts + 1, now);
        else this.store.retryMail(m.seq, m.attempts + 1, now + mailRetryDelay(m.attempts));
      }
    });
    this.nextMail = this.store.nextMailAt();
  }

  /** Messages that failed every attempt and are kept aside (for the queue's retention). */
  deadMail(): number {
    return this.store.countDeadMail();
  }

  // lease: inputs = worker id, how many, queue settings.
  // output: up to `max` leases, highest priority first, FIFO within a priority; none when paused.
  // errors: none.
  lease(workerId: string, max: number, settings: QueueSettings): Lease[] {
    this.configure(settings);
    if (this.settings.paused) return [];
    return this.tx(() => {
      const now = this.clock.now();
      const leases: Lease[] = [];
      let bytes = 0;
      this.pick(max, now, (row) => {
        if (leases.length > 0 && bytes + row.payload.length > LEASE_BYTES) return false;
        bytes += row.payload.length;
        const leaseToken = this.entropy.token();
        const task = this.transition(row, "leased", {
          status: "running",
          attempts: row.attempts + 1,
          workerId,
          leaseToken,
          startedAt: now,
          dueAt: now + row.timeoutMs,
        });
        const lease: Lease = { task, leaseToken, expiresAt: now + row.timeoutMs };
        if (row.waitForChildren) {
          const { results, complete, size } = this.childResults(row.id);
          lease.childResults = results;
          lease.childResultsComplete = complete;
          bytes += size;
        }
        leases.push(lease);
        return true;
      });
      this.recordStarts(leases.map((l) => l.task), now);
      return leases;
    });
  }

  // groups: no input. output: each group with ready or running tasks here, with how many of each.
  groups(): GroupDepth[] {
    this.catchUp();
    const flow = this.loadFlow();
    return [...flow.groups]
      .filter(([key]) => key !== "")
      .map(([group, e]) => ({ group, ...e }))
      .sort((a, b) => (a.group < b.group ? -1 : 1));
  }

  // heartbeat: inputs = task id, its current lease token, optional progress (JSON text).
  // output: the new lease expiry and whether cancellation was requested.
  // errors: not_found; stale_lease when the token is not the running lease's.
  heartbeat(id: string, leaseToken: string, progress?: string): HeartbeatResult {
    return this.tx(() => this.heartbeatOne(id, leaseToken, progress));
  }

  // complete: inputs = task id, lease token, optional result (JSON text).
  // output: the completed task; completing again with the same token returns it unchanged.
  // errors: not_found; stale_lease.
  complete(id: string, leaseToken: string, result?: string): TaskRow {
    return this.tx(() => this.completeOne(id, leaseToken, result));
  }

  // fail: inputs = task id, lease token, error (JSON text), whether a retry may follow.
  // output: the task, now scheduled for a retry, failed (dead letter) or cancelled.
  // errors: not_found; stale_lease.
  fail(id: string, leaseToken: string, error: string, retryable = true): TaskRow {
    return this.tx(() => this.failOne(id, leaseToken, error, retryable));
  }

  // release: inputs = task id, lease token, optional delay.
  // output: the task, ready again (or scheduled) with its attempt given back.
  // errors: not_found; stale_lease.
  release(id: string, leaseToken: string, delayMs = 0): TaskRow {
    return this.tx(() => this.releaseOne(id, leaseToken, delayMs));
  }

  completeMany(items: { id: string; leaseToken: string; result?: string }[]): ItemResult<TaskRow>[] {
    return this.batch(items, (i) => this.completeOne(i.id, i.leaseToken, i.result));
  }

  failMany(items: { id: string; leaseToken: string; error: string; retryable?: boolean }[]): ItemResult<TaskRow>[] {
    return this.batch(items, (i) => this.failOne(i.id, i.leaseToken, i.error, i.retryable ?? true));
  }

  heartbeatMany(items: { id: string; leaseToken: string; progress?: string }[]): ItemResult<HeartbeatResult>[] {
    return this.batch(items, (i) => this.heartbeatOne(i.id, i.leaseToken, i.progress));
  }

  // cancel: input = task id.
  // output: the task: cancelled if it was not running; running with cancelRequested if it was.
  // errors: not_found; invalid_state for a completed or failed task.
  cancel(id: string): TaskRow {
    return this.tx(() => {
      const row = this.mustGet(id);
      if (row.status === "cancelled") return row;
      check(!TERMINAL.has(row.status), "invalid_state", `Task ${id} is already ${row.status} and cannot be cancelled.`);
      if (row.status === "running") {
        return row.cancelRequested ? row : this.transition(row, "cancel_requested", { cancelRequested: 1 });
      }
      return this.finish(row, "cancelled", "cancelled", {});
    });
  }

  // retry: input = task id of a failed or cancelled task.
  // output: the task, pending again with its attempts reset.
  // errors: not_found; invalid_state for any other status.
  retry(id: string): TaskRow {
    return this.tx(() => {
      const row = this.mustGet(id);
      check(
        row.status === "failed" || row.status === "cancelled",
        "invalid_state",
        `Task ${id} is ${row.status}; only failed or cancelled tasks can be retried.`,
      );
      return this.transition(row, "retried", {
        ...this.ready(this.clock.now()),
        attempts: 0,
        workerId: null,
        cancelRequested: 0,
        result: null,
        finishedAt: null,
      });
    });
  }

  // remove: input = task id of a terminal task.
  // output: none; the task is gone from the shard (history keeps it).
  // errors: not_found; invalid_state unless completed, failed or cancelled.
  remove(id: string): void {
    this.tx(() => {
      const row = this.mustGet(id);
      check(TERMINAL.has(row.status), "invalid_state", `Task ${id} is ${row.status}; cancel it before deleting it.`);
      this.drop(row);
      this.emit("deleted", id, {});
    });
  }

  // purge: no input.
  // output: how many pending or scheduled tasks this call cancelled (one pass of DUE_BATCH), and
  // whether that was all; the alarm cancels the rest, pass by pass. Tasks created after the call stay.
  // errors: none.
  purge(): PurgeResult {
    return this.tx(() => {
      this.purgeBy = this.clock.now();
      this.store.setMeta(PURGE_KEY, String(this.purgeBy));
      return this.purgePass();
    });
  }

  // runDue: no input; called by the alarm (and before every call, when something is due).
  // output: counts of tasks made ready, leases expired and terminal tasks past retention dropped.
  // errors: none.
  runDue(): DueResult {
    return this.tx(() => {
      const out = this.processDue(this.clock.now());
      if (this.purgeBy !== null) out.cancelled = this.purgePass().cancelled;
      return out;
    }, false);
  }

  /** One pass of a purge under way: cancels up to DUE_BATCH pending or scheduled tasks it covers. */
  private purgePass(): PurgeResult {
    const by = this.purgeBy!;
    const pending = this.store.pending(DUE_BATCH, by);
    const scheduled = pending.length < DUE_BATCH ? this.store.scheduled(DUE_BATCH - pending.length, by) : [];
    for (const row of [...pending, ...scheduled]) this.finish(row, "purged", "cancelled", {});
    const cancelled = pending.length + scheduled.length;
    const done = cancelled < DUE_BATCH;
    if (done) {
      this.purgeBy = null;
      this.store.setMeta(PURGE_KEY, "");
    }
    return { cancelled, done };
  }

  /** Whether the queue is paused, by the newest settings this shard has seen. */
  get paused(): boolean {
    return this.settings.paused;
  }

  get(id: string): TaskRow | null {
    this.catchUp();
    return this.store.get(id);
  }

  list(options: { status?: Status; after?: string; limit: number }): TaskRow[] {
    this.catchUp();
    return this.store.list(options);
  }

  counts(): Partial<Record<Status, number>> {
    this.catchUp();
    this.statusCounts ??= new Map(Object.entries(this.store.counts()) as [Status, number][]);
    return Object.fromEntries([...this.statusCounts].filter(([, n]) => n > 0));
  }

  /** Keeps the per-status counts current (once they have been read). */
  private countMove(from: Status | null, to: Status | null): void {
    const c = this.statusCounts;
    if (!c || from === to) return;
    if (from) c.set(from, (c.get(from) ?? 0) - 1);
    if (to) c.set(to, (c.get(to) ?? 0) + 1);
  }

  // ---------------------------------------------------------------- internals

  /** One transaction: due work first (so no call sees an expired lease as live), then `fn`, then the outbox row. */
  private tx<T>(fn: () => T, catchUp = true): T {
    // Due work commits on its own: a call refused below must not roll it back.
    if (catchUp) this.catchUp();
    let written: TaskEvent[] = [];
    let out: T;
    try {
      out = this.store.transaction(() => {
        try {
          const result = fn();
          this.drain();
          if (this.events.length > 0) this.store.appendOutbox(this.clock.now(), this.events);
          written = this.events;
          return result;
        } finally {
          this.events = [];
          this.local = [];
        }
      });
    } catch (e) {
      this.reload(); // rolled back: what the call changed in memory did not happen
      throw e;
    }
    this.tally(written);
    return out;
  }

  /** Reads again, from storage, every piece of state the engine keeps in memory. */
  private reload(): void {
    this.flow = null;
    this.nextDue = this.store.nextDueAt();
    this.nextMail = this.store.nextMailAt();
    this.sweep = JSON.parse(this.store.getMeta(SWEEP_KEY) ?? '{"at":null}') as Sweep;
    this.settingsJson = this.store.getMeta(SETTINGS_KEY) ?? JSON.stringify(DEFAULT_SETTINGS);
    this.settings = settingsFrom(this.settingsJson);
    const address = this.store.getMeta(ADDRESS_KEY);
    this.address = address ? (JSON.parse(address) as ShardAddress) : null;
    const purge = this.store.getMeta(PURGE_KEY);
    this.purgeBy = purge ? Number(purge) : null;
    this.seqReserved = Number(this.store.getMeta(SEQ_KEY) ?? 0);
    this.statusCounts = null;
  }

  /** Counts a committed call's events. */
  private tally(events: TaskEvent[]): void {
    const t = this.totals;
    for (const e of events) {
      if (e.type === "enqueued") t.enqueued++;
      else if (e.type === "leased") t.leased++;
      if (e.type === "expired") t.expired++;
      if (e.type === "retrying" || (e.type === "expired" && (e.changes.status === "scheduled" || e.changes.status === "pending"))) t.retried++;
      if (e.changes.status === "completed") t.completed++;
      else if (e.changes.status === "failed") t.failed++;
      else if (e.changes.status === "cancelled") t.cancelled++;
    }
  }

  private catchUp(): void {
    if (this.isDue()) this.runDue();
  }

  /** One transaction for many items, their rows read in one go; a refused item answers its problem, the rest go on. */
  private batch<I extends { id: string }, T>(items: I[], one: (item: I) => T): ItemResult<T>[] {
    return this.tx(() => {
      this.store.prefetch(items.map((i) => i.id));
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

  private enqueueOne(address: TaskAddress, input: NewTask): Enqueued | Elsewhere {
    const now = this.clock.now();
    const { settings } = this;
    let id: string;
    if (input.id !== undefined) {
      // Claimed at the key's home shard for this id: made once, however often the call is repeated.
      const made = this.store.get(input.id);
      if (made) return { task: made, created: false };
      id = input.id;
    } else {
      id = taskId(this.ulid.next(now), address.shard, address.queue);
      if (input.idempotencyKey !== undefined) {
        const named = this.claimKey(input.idempotencyKey, id, now);
        if (named !== id) {
          const first = this.store.get(named);
          if (first) return { task: first, created: false };
          return { created: false, elsewhere: named };
        }
      }
    }
    const defaults = settings.defaults;
    const runAt = input.runAt ?? now + (input.delayMs ?? 0);
    const row: TaskRow = {
      id,
      name: input.name,
      payload: input.payload,
      priority: input.priority ?? 5,
      status: "scheduled",
      attempts: 0,
      maxAttempts: input.maxAttempts ?? defaults.maxAttempts,
      backoff: JSON.stringify(input.backoff ?? defaults.backoff),
      timeoutMs: input.timeoutMs ?? defaults.timeoutMs,
      runAt,
      readyAt: null,
      seq: 0,
      dueAt: runAt,
      dependsOn: input.dependsOn && input.dependsOn.length > 0 ? JSON.stringify(input.dependsOn) : null,
      depsWaiting: null,
      onDependencyFailure: input.onDependencyFailure === "run" ? "run" : null,
      hasDependents: null,
      parentId: input.parentId ?? null,
      waitForChildren: input.waitForChildren ? 1 : null,
      sealed: null,
      children: null,
      idempotencyKey: input.idempotencyKey ?? null,
      groupKey: input.groupKey ?? null,
      workerId: null,
      leaseToken: null,
      cancelRequested: 0,
      progress: null,
      result: null,
      error: null,
      tags: input.tags && input.tags.length > 0 ? JSON.stringify(input.tags) : null,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
    };
    const satisfied = new Set(input.satisfied);
    const waiting = [...new Set(input.dependsOn ?? [])].filter((d) => !satisfied.has(d));
    if (waiting.length > 0 || input.waitForChildren) {
      Object.assign(row, { status: "blocked", depsWaiting: waiting.length > 0 ? JSON.stringify(waiting) : null, dueAt: null });
    } else Object.assign(row, this.readyBy(runAt, now));
    this.store.insert(row);
    this.track(row.groupKey, null, row.status);
    this.countMove(null, row.status);
    const { leaseToken: _hidden, ...changes } = row;
    this.emit("enqueued", row.id, changes);
    const broken = new Set(input.broken);
    for (const dep of waiting) {
      if (broken.has(dep)) this.local.push({ kind: "resolved", dep, dependent: row.id, ok: false, status: "failed or cancelled" });
      else this.send(dep, { kind: "register", dep, dependent: row.id });
    }
    if (row.parentId) this.send(row.parentId, { kind: "child_added", parent: row.parentId, child: row.id });
    return { task: row, created: true };
  }

  /**
   * The id `key` names: the task it named within the window, else `id` (the key
   * is claimed for it, and swept once the window has passed).
   */
  private claimKey(key: string, id: string, now: number): string {
    const window = this.settings.idempotencyWindowMs;
    const held = this.store.getKey(key);
    if (held && held.createdAt + window > now) {
      const at = parseTaskId(held.taskId);
      // A claim of this shard whose task is gone (deleted): the key is free.
      const mine = at && this.address && at.queue === this.address.queue && at.shard === this.address.shard;
      if (!mine || this.store.get(held.taskId)) return held.taskId;
    }
    this.store.putKey(key, id, now);
    if (this.sweep.at === null || now + window < this.sweep.at) this.setSweep({ at: now + window, after: this.sweep.after });
    return id;
  }

  /** A deleted task's key is free again: at once here, or by a message to the key's home shard. */
  private freeKey(row: TaskRow): void {
    const key = row.idempotencyKey;
    if (key === null || !this.address) return;
    const home = shardForKey(key, this.settings.shards);
    if (home === this.address.shard) this.store.deleteKey(key, row.id);
    else this.sendToShard({ queue: this.address.queue, shard: home }, { kind: "unclaim", key, task: row.id });
  }

  /** The tenant this shard belongs to, once a call has said so. */
  get tenant(): string | undefined {
    return this.address?.tenant;
  }

  private know(address: ShardAddress): void {
    const a = this.address;
    if (a?.queue === address.queue && a.shard === address.shard && (a.tenant === address.tenant || address.tenant === undefined)) return;
    this.address = { queue: address.queue, shard: address.shard, tenant: address.tenant ?? a?.tenant };
    this.store.setMeta(ADDRESS_KEY, JSON.stringify(this.address));
  }

  /** Sends `mail` to the shard of task `to`: applied in this transaction when that is this shard, else queued for delivery. */
  private send(to: string, mail: Mail): void {
    const at = parseTaskId(to);
    if (at) this.sendToShard(at, mail); // ids are validated at the edge; an id no shard can hold has no one to tell
  }

  private sendToShard(at: TaskAddress, mail: Mail): void {
    if (this.address && at.queue === this.address.queue && at.shard === this.address.shard) {
      this.local.push(mail);
      return;
    }
    const now = this.clock.now();
    this.store.appendMail(shardKey(at), JSON.stringify(mail), now);
    this.nextMail = min(this.nextMail, now);
  }

  /** Applies messages for this shard until none is left (a cancellation can cascade). */
  private drain(): void {
    for (let mail = this.local.shift(); mail; mail = this.local.shift()) this.apply(mail);
  }

  private apply(mail: Mail): void {
    switch (mail.kind) {
      case "register":
        return this.register(mail.dep, mail.dependent);
      case "resolved":
        return this.resolved(mail);
      case "child_added":
      case "child_finished":
        return this.childNews(mail);
      case "unclaim":
        return this.store.deleteKey(mail.key, mail.task);
      case "seal": {
        const row = this.store.get(mail.parent);
        if (!row || row.sealed) return;
        if (row.status === "blocked") return this.unblockIfReady(row, { sealed: 1 }, "sealed");
        this.transition(row, "sealed", { sealed: 1 });
      }
    }
  }

  /** At the dependency's shard: answer at once if it has finished, else remember who waits. */
  private register(depId: string, dependent: string): void {
    const dep = this.store.get(depId);
    const answer = (ok: boolean, status: string) => this.send(dependent, { kind: "resolved", dep: depId, dependent, ok, status });
    if (!dep) return answer(false, "missing");
    if (dep.status === "completed") return answer(true, dep.status);
    if (dep.status === "failed" || dep.status === "cancelled") return answer(false, dep.status);
    this.store.addDependent(dep.id, dependent);
    if (!dep.hasDependents) this.store.update(dep.id, { hasDependents: 1 });
  }

  /** At the dependent's shard: one dependency has finished. */
  private resolved(mail: Extract<Mail, { kind: "resolved" }>): void {
    const row = this.store.get(mail.dependent);
    if (!row || row.status !== "blocked") return; // cancelled meanwhile, or a duplicate
    const waiting = JSON.parse(row.depsWaiting ?? "[]") as string[];
    const next = resolveDependency(waiting, mail.dep, mail.ok, row.onDependencyFailure ?? "cancel");
    if (next.action === "none") return;
    const depsWaiting = next.waiting.length > 0 ? JSON.stringify(next.waiting) : null;
    if (next.action === "cancel") {
      const error = JSON.stringify({ message: `Dependency ${mail.dep} ${mail.status === "missing" ? "no longer exists" : `ended ${mail.status}`}.` });
      this.finish(row, "cancelled", "cancelled", { depsWaiting, error });
    } else {
      this.unblockIfReady(row, { depsWaiting }, "dependency_resolved");
    }
  }

  /** At the parent's shard: a child was added or has finished. Each child counts once, whatever the order of the news. */
  private childNews(mail: Extract<Mail, { kind: "child_added" | "child_finished" }>): void {
    const parent = this.store.get(mail.parent);
    if (!parent) return;
    const known = this.store.getChild(mail.parent, mail.child);
    const counts = childCounts(parent);
    if (mail.kind === "child_added") {
      if (known) return;
      this.store.putChild(mail.parent, mail.child, "active", null);
      counts.total++;
    } else {
      if (known && known.status !== "active") return;
      this.store.putChild(mail.parent, mail.child, mail.status, mail.result);
      if (!known) counts.total++;
      if (mail.status === "completed" || mail.status === "failed" || mail.status === "cancelled") counts[mail.status]++;
    }
    const patch = { children: JSON.stringify(counts) };
    if (parent.status === "blocked") this.unblockIfReady(parent, patch, mail.kind);
    else this.transition(parent, mail.kind, patch);
  }

  /**
   * Applies `patch` to a blocked task and lets it run if nothing holds it any more:
   * no open dependency and, for a parent that waits, sealed with every child finished.
   */
  private unblockIfReady(row: TaskRow, patch: Partial<TaskRow>, type: "sealed" | "dependency_resolved" | "child_added" | "child_finished"): void {
    const after = { ...row, ...patch };
    const counts = childCounts(after);
    const childrenDone = !after.waitForChildren || (after.sealed === 1 && counts.completed + counts.failed + counts.cancelled === counts.total);
    if (after.depsWaiting !== null || !childrenDone) {
      this.transition(row, type, patch);
      return;
    }
    const now = this.clock.now();
    this.transition(row, "unblocked", { ...patch, ...this.readyBy(row.runAt, now) });
  }

  /**
   * The children's results, for the lease of a parent that waited for them: the
   * first CHILD_RESULTS_MAX in id order, within LEASE_BYTES (`complete` says whether that is all).
   */
  private childResults(parent: string): { results: Record<string, string | null>; complete: boolean; size: number } {
    const results: Record<string, string | null> = {};
    let size = 0;
    const page = this.store.listChildren(parent, undefined, CHILD_RESULTS_MAX + 1);
    for (const [i, c] of page.entries()) {
      const result = c.status === "completed" ? c.result : null;
      if (i === CHILD_RESULTS_MAX || size + (result?.length ?? 4) > LEASE_BYTES) return { results, complete: false, size };
      results[c.child] = result; // task ids (validated), never a user string
      size += result?.length ?? 4;
    }
    return { results, complete: true, size };
  }

  /**
   * The tasks to lease now: at most `max`, within this shard's part of the queue's
   * concurrency cap and start limit. With groups, one task per group in turn
   * (from where the last lease stopped), each group within its own limits;
   * without, simply the next in priority order.
   */
  private pick(max: number, now: number, take: (row: TaskRow) => boolean): void {
    const s = this.settings;
    const flow = this.loadFlow();
    const shards = s.shards;
    const index = this.address?.shard ?? 0;
    let allowed = max;
    if (s.concurrency != null) allowed = Math.min(allowed, shareOf(s.concurrency, shards, index) - flow.running);
    if (s.startLimit) allowed = Math.min(allowed, flow.starts.room(startShare(s.startLimit, shards, index), now));
    if (allowed <= 0) return;
    const keys = [...flow.groups].filter(([, e]) => e.pending > 0).map(([key]) => key).sort();
    if (!keys.some((k) => k !== "")) {
      // In chunks, so a lease that stops early on bytes has not read every row it might have taken.
      for (let picked = 0; picked < allowed; ) {
        const want = Math.min(allowed - picked, 100);
        const rows = this.store.ready(want);
        for (const row of rows) {
          if (!take(row)) return;
          picked++;
        }
        if (rows.length < want) return;
      }
      return;
    }

    const from = keys.findIndex((k) => k > flow.cursor);
    const order = from <= 0 ? keys : [...keys.slice(from), ...keys.slice(0, from)];
    let picked = 0;
    const taken = new Map<string, number>(); // per group, for its start window (recorded when the lease commits)
    // One turn: the next task of every group that has one and room under its limits, read together.
    // Each is taken (leased) at once, so the next turn's read sees the group's following task.
    while (picked < allowed) {
      const turn: string[] = [];
      for (const key of order) {
        if (turn.length >= allowed - picked) break;
        const group = flow.groups.get(key);
        if (!group || group.pending <= 0) continue;
        const limits = limitsOf(s, key);
        if (limits?.concurrency != null && group.running >= limits.concurrency) continue;
        if (limits?.startLimit && this.groupWindow(key).room(limits.startLimit, now) <= (taken.get(key) ?? 0)) continue;
        turn.push(key);
      }
      if (turn.length === 0) break;
      const heads = new Map(this.store.readyHeads(turn).map((r) => [r.groupKey ?? "", r]));
      if (heads.size === 0) break;
      for (const key of turn) {
        const row = heads.get(key);
        if (!row) continue;
        if (!take(row)) return;
        picked++;
        taken.set(key, (taken.get(key) ?? 0) + 1);
        flow.cursor = key;
      }
    }
  }

  /** The shard's flow state, read from storage once after a start (or a rolled-back call). */
  private loadFlow(): FlowState {
    if (this.flow) return this.flow;
    const groups = new Map<string, { pending: number; running: number }>();
    let running = 0;
    for (const c of this.store.flowCounts()) {
      const entry = groups.get(c.group) ?? { pending: 0, running: 0 };
      entry[c.status] += c.n;
      groups.set(c.group, entry);
      if (c.status === "running") running += c.n;
    }
    // Groups as [key, entries] pairs, never as object keys: a group key is any user string.
    type Entries = [number, number][];
    type Saved = { queue: Entries; groups: [string, Entries][] | Record<string, Entries> };
    const saved = JSON.parse(this.store.getMeta(STARTS_KEY) ?? '{"queue":[],"groups":[]}') as Saved;
    this.flow = {
      running,
      groups,
      starts: new StartWindow(saved.queue),
      groupStarts: new Map((Array.isArray(saved.groups) ? saved.groups : Object.entries(saved.groups)).map(([k, v]) => [k, new StartWindow(v)])),
      cursor: "",
    };
    return this.flow;
  }

  private groupWindow(key: string): StartWindow {
    const flow = this.loadFlow();
    return flow.groupStarts.get(key) ?? flow.groupStarts.set(key, new StartWindow()).get(key)!;
  }

  /** Remembers start times where a start limit needs them, and stores them with the call. */
  private recordStarts(started: TaskRow[], now: number): void {
    const s = this.settings;
    const flow = this.loadFlow();
    let changed = false;
    if (s.startLimit && started.length > 0) {
      flow.starts.forget(s.startLimit, now);
      flow.starts.record(s.startLimit, now, started.length);
      changed = true;
    }
    for (const task of started) {
      const limit = limitsOf(s, task.groupKey ?? "")?.startLimit;
      if (!limit) continue;
      const window = this.groupWindow(task.groupKey!);
      window.forget(limit, now);
      window.record(limit, now);
      changed = true;
    }
    if (!changed) return;
    const groups: [string, [number, number][]][] = [];
    for (const [key, window] of flow.groupStarts) {
      const limit = limitsOf(s, key)?.startLimit;
      if (limit) window.forget(limit, now);
      if (limit && window.entries.length > 0) groups.push([key, window.entries]);
      else flow.groupStarts.delete(key);
    }
    this.store.setMeta(STARTS_KEY, JSON.stringify({ queue: s.startLimit ? flow.starts.entries : [], groups }));
  }

  /** Keeps the flow counts current as a task moves between statuses. */
  private track(group: string | null, from: Status | null, to: Status | null): void {
    const flow = this.flow;
    if (!flow || from === to) return;
    const key = group ?? "";
    const entry = flow.groups.get(key) ?? { pending: 0, running: 0 };
    if (from === "pending") entry.pending--;
    if (to === "pending") entry.pending++;
    if (from === "running") {
      entry.running--;
      flow.running--;
    }
    if (to === "running") {
      entry.running++;
      flow.running++;
    }
    if (entry.pending === 0 && entry.running === 0) flow.groups.delete(key);
    else flow.groups.set(key, entry);
  }

  private heartbeatOne(id: string, leaseToken: string, progress?: string): HeartbeatResult {
    const row = this.leased(id, leaseToken);
    const expiresAt = this.clock.now() + row.timeoutMs;
    // The new expiry is visible (the task's `expiresAt`), so even a bare heartbeat is an event.
    if (progress !== undefined && progress !== row.progress) this.transition(row, "progress", { dueAt: expiresAt, progress });
    else this.transition(row, "heartbeat", { dueAt: expiresAt });
    this.noteDue(expiresAt);
    return { expiresAt, cancelRequested: row.cancelRequested === 1 };
  }

  private completeOne(id: string, leaseToken: string, result?: string): TaskRow {
    const row = this.mustGet(id);
    // A lost response may be retried: the same token after success answers with what is stored.
    if (row.status === "completed" && row.leaseToken === leaseToken) return row;
    this.leased(id, leaseToken, row);
    return this.finish(row, "completed", "completed", { result: result ?? null });
  }

  private failOne(id: string, leaseToken: string, error: string, retryable: boolean): TaskRow {
    const row = this.leased(id, leaseToken);
    return this.afterRun(row, "failed", error, retryable);
  }

  private releaseOne(id: string, leaseToken: string, delayMs: number): TaskRow {
    const row = this.leased(id, leaseToken);
    // Cancellation was asked for while it ran: handing it back ends it, it never runs again.
    if (row.cancelRequested) return this.finish(row, "cancelled", "cancelled", {});
    const now = this.clock.now();
    const runAt = now + delayMs;
    return this.transition(row, "released", {
      ...this.readyBy(runAt, now),
      attempts: row.attempts - 1,
      workerId: null,
    });
  }

  private processDue(now: number): DueResult {
    const out: DueResult = { promoted: 0, expired: 0, purged: 0, cancelled: 0 };
    for (const row of this.store.due(now, DUE_BATCH)) {
      if (row.status === "scheduled") {
        // It became ready at its runAt, not when the shard got round to it.
        this.transition(row, "promoted", this.ready(row.dueAt ?? now));
        out.promoted++;
      } else if (row.status === "running") {
        const error = JSON.stringify({ message: `Lease expired: no heartbeat within ${row.timeoutMs} ms.` });
        this.afterRun(row, "expired", error, true);
        out.expired++;
      } else {
        // A finished task holds no due time (state written by earlier versions may); retention is swept.
        this.store.update(row.id, { dueAt: null });
        if (this.sweep.at === null) this.setSweep({ at: now });
      }
    }
    this.nextDue = this.store.nextDueAt();
    if (this.sweep.at !== null && this.sweep.at <= now) out.purged = this.sweepRetention(now);
    return out;
  }

  /**
   * Drops finished tasks past retention. Finished tasks have no index entry (it
   * would cost a row write per task); instead the sweep walks the ids, which are
   * in creation order, and stops at the first task too young to have expired.
   */
  private sweepRetention(now: number): number {
    const retention = this.settings.retentionDays * DAY;
    let after = this.sweep.after;
    // Idempotency keys past their window go first; more than a pass can take: come back at once.
    const window = this.settings.idempotencyWindowMs;
    const keysLeft = this.store.dropKeys(now - window, SWEEP_BATCH) === SWEEP_BATCH;
    this.store.sweepDeadMail(now - retention);
    const oldestKey = this.store.oldestKeyAt();
    let next: number | null = keysLeft ? now : oldestKey === null ? null : oldestKey + window;
    let purged = 0;
    for (let scanned = 0; scanned < SWEEP_BATCH; ) {
      const rows = this.store.list({ after, limit: DUE_BATCH });
      if (rows.length === 0) {
        after = undefined; // reached the end: the next sweep starts from the oldest task
        break;
      }
      for (const row of rows) {
        if (row.createdAt + retention > now) {
          // Nothing from here on can have expired yet.
          this.setSweep({ at: min(next, row.createdAt + retention) });
          return purged;
        }
        if (TERMINAL.has(row.status)) {
          const expiry = (row.finishedAt ?? row.createdAt) + retention;
          if (expiry <= now) {
            this.drop(row, false); // its key's window ended before its retention did
            purged++;
          } else next = min(next, expiry);
        }
      }
      scanned += rows.length;
      after = rows[rows.length - 1].id;
    }
    // Out of budget (resume at once from `after`), or at the end of the table.
    this.setSweep(after !== undefined ? { at: now, after } : { at: next });
    return purged;
  }

  /** Deletes a finished task with what hangs off it: its children's records and (if asked) its idempotency key. */
  private drop(row: TaskRow, freeKey = true): void {
    this.store.delete(row.id);
    this.countMove(row.status, null);
    if (row.children !== null) this.store.deleteChildren(row.id);
    if (freeKey) this.freeKey(row);
  }

  private setSweep(sweep: Sweep): void {
    this.sweep = sweep;
    this.store.setMeta(SWEEP_KEY, JSON.stringify(sweep));
  }

  private isDue(): boolean {
    const next = this.nextDueAt();
    return next !== null && next <= this.clock.now();
  }

  /** What a run that did not complete turns into: a retry, a dead letter, or a cancellation. */
  private afterRun(row: TaskRow, type: EventType, error: string, retryable: boolean): TaskRow {
    if (row.cancelRequested) return this.finish(row, type === "expired" ? "expired" : "cancelled", "cancelled", { error });
    if (retryable && row.attempts < row.maxAttempts) {
      const now = this.clock.now();
      const runAt = now + backoffDelay(row.attempts, JSON.parse(row.backoff) as Backoff, () => this.entropy.random());
      return this.transition(row, type === "expired" ? "expired" : "retrying", {
        ...this.readyBy(runAt, now),
        error,
      });
    }
    return this.finish(row, type === "expired" ? "expired" : "failed", "failed", { error });
  }

  private finish(row: TaskRow, type: EventType, status: Status, patch: Partial<TaskRow>): TaskRow {
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

  private ready(at: number): Partial<TaskRow> {
    if (++this.seq > this.seqReserved) {
      this.seqReserved = this.seq + SEQ_BLOCK;
      this.store.setMeta(SEQ_KEY, String(this.seqReserved));
    }
    return { status: "pending", readyAt: at, seq: this.seq, dueAt: null };
  }

  /** Ready now if `runAt` has come, else scheduled for it. */
  private readyBy(runAt: number, now: number): Partial<TaskRow> {
    return runAt > now ? this.schedule(runAt) : this.ready(now);
  }

  private schedule(runAt: number): Partial<TaskRow> {
    return { status: "scheduled", runAt, readyAt: null, dueAt: runAt };
  }

  private mustGet(id: string): TaskRow {
    const row = this.store.get(id);
    if (!row) throw new QueueError("not_found", `Task ${id} does not exist.`);
    return row;
  }

  /**
   * The running task `id` if `leaseToken` holds its lease now. A lease ends at its
   * expiry even if the shard has not processed it yet (more than one pass of due work).
   */
  private leased(id: string, leaseToken: string, row = this.mustGet(id)): TaskRow {
    check(
      row.status === "running" && row.leaseToken === leaseToken && (row.dueAt === null || row.dueAt > this.clock.now()),
      "stale_lease",
      `Task ${id} is not leased with this token: its lease expired, or it was released, finished or leased again. Lease a task again to work on it.`,
    );
    return row;
  }

  /** Writes the changed fields of `row` and records them as one event. */
  private transition(row: TaskRow, type: EventType, patch: Partial<TaskRow>): TaskRow {
    const after = { ...row, ...patch };
    const changes: Partial<TaskRow> = {};
    for (const key of Object.keys(patch) as (keyof TaskRow)[]) {
      if (after[key] !== row[key]) (changes as Record<string, unknown>)[key] = after[key];
    }
    if (Object.keys(changes).length === 0) return after; // nothing changed (a second heartbeat in the same millisecond)
    this.store.update(row.id, changes);
    if (changes.status !== undefined) {
      this.track(row.groupKey, row.status, changes.status);
      this.countMove(row.status, changes.status);
    }
    const { leaseToken: _hidden, ...visible } = changes;
    this.emit(type, row.id, visible);
    return after;
  }

  private noteDue(at: number): void {
    if (this.nextDue === null || at < this.nextDue) this.nextDue = at;
  }

  private emit(type: EventType, id: string, changes: TaskEvent["changes"]): void {
    this.events.push({ type, id, at: this.clock.now(), changes });
    if (changes.dueAt != null) this.noteDue(changes.dueAt);
  }
}

function childCounts(row: TaskRow): ChildCounts {
  return row.children ? (JSON.parse(row.children) as ChildCounts) : { total: 0, completed: 0, failed: 0, cancelled: 0 };
}

function min(a: number | null, b: number): number {
  return a === null ? b : Math.min(a, b);
}

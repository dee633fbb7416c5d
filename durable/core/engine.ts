import type { QueueSettings, Status, TaskRow } from "../../schema/shard";
import { EngineCalls } from "./engine-calls";
import { DUE_BATCH } from "./types";
import type { ListOptions } from "./store";
import type {
  Claim,
  Elsewhere,
  Enqueued,
  GroupDepth,
  HeartbeatResult,
  ItemResult,
  Lease,
  Mail,
  NewTask,
  OutgoingMail,
  PurgeResult,
  RetryFailedResult,
  ShardAddress,
} from "./types";

export * from "./types";

/**
 * The queue rules of one shard, over a ShardStore, with time and randomness
 * injected; the QueueShard Durable Object only transports. Each public method
 * is one storage transaction (due work commits in its own, first) and appends
 * at most one outbox row, holding every event of that call (how a call runs:
 * `engine-calls`).
 *
 * The concerns live in their own files: `state` (what the shard knows, and the
 * one write path), `lifecycle` (a task's steps), `mail` (between shards),
 * `flow` (flow control), `due` (the alarm's work) and `rules` (pure decisions).
 */
export class ShardEngine extends EngineCalls {
  /** When the next message to another shard is due (the DO's alarm covers it too). */
  nextMailAt(): number | null {
    return this.shard.nextMail;
  }

  nextDueAt(): number | null {
    return this.due.nextDueAt();
  }

  alarmAt(): number | null {
    return this.due.alarmAt();
  }

  /** Grows whenever a task becomes ready (pending), so a caller can tell when to wake waiting consumers. */
  get readySeq(): number {
    return this.shard.seq;
  }

  /** This shard's queue and number, once a call has said so. */
  get address(): ShardAddress | null {
    return this.shard.address;
  }

  /** The tenant this shard belongs to, once a call has said so. */
  get tenant(): string | undefined {
    return this.shard.address?.tenant;
  }

  /** The newest settings this shard has seen: whether the queue is paused; a consumer socket's leases use them. */
  get settings(): QueueSettings {
    return this.shard.settings;
  }

  /**
   * Remembers the queue's settings; the alarm uses them when no caller is there
   * to pass them. Callers may hold a cached copy up to a second old, so settings
   * older than the ones held (a lower `version`) are ignored.
   */
  configure(settings: QueueSettings): void {
    this.shard.configure(settings);
  }

  // enqueue: inputs = validated tasks, the shard's address, queue settings.
  // output: one answer per input, in order: the task made, or the task its idempotency key names (here, or `elsewhere`).
  // errors: none; inputs are validated at the edge.
  enqueue(address: ShardAddress, inputs: NewTask[], settings: QueueSettings): (Enqueued | Elsewhere)[] {
    return this.enqueueAndLease(address, inputs, settings, []).made;
  }

  // enqueueAndLease: enqueue, then, in the same transaction, lease what is ready to each taker in turn (up to its `max`),
  // as `lease` would right after: a task handed at once to a waiting consumer is written once, as running.
  // output: the enqueue's answers (each task as it stands after the call: running if a taker got it), and each taker's leases.
  enqueueAndLease(
    address: ShardAddress,
    inputs: NewTask[],
    settings: QueueSettings,
    takers: { workerId: string; max: number }[],
  ): { made: (Enqueued | Elsewhere)[]; leases: Lease[][] } {
    this.configure(settings);
    return this.tx(() => {
      this.shard.know(address);
      const made = inputs.map((input) => this.life.enqueueOne(address, input));
      // A dependency in this shard may resolve at once (completed, failed): answer with the state after that.
      this.mail.drain();
      const leases = takers.map(({ workerId, max }) => (this.shard.settings.paused ? [] : this.life.lease(workerId, max)));
      const handed = new Map(leases.flat().map((l) => [l.task.id, l.task]));
      const answers = made.map((m) => {
        if (!("task" in m)) return m;
        // A task handed at once (also when a later item of the batch named it again by its key).
        const leased = handed.get(m.task.id);
        if (leased) return { ...m, task: { ...leased, leaseToken: null } }; // the token is the consumer's alone
        return m.created && m.task.status === "blocked" ? { ...m, task: this.shard.store.get(m.task.id) ?? m.task } : m;
      });
      return { made: answers, leases };
    });
  }

  // claim: inputs = this shard's address, idempotency keys whose home is this shard, each with the shard its task goes to.
  // output: per key, the id of the task it names: a new id for that shard (fresh), or the one named within the window.
  // errors: none. The caller then creates the task with that id in its shard (`NewTask.id`).
  claim(address: ShardAddress, items: { key: string; shard: number }[], settings: QueueSettings): Claim[] {
    this.configure(settings);
    return this.tx(() => {
      this.shard.know(address);
      const now = this.shard.clock.now();
      return items.map(({ key, shard }) => {
        const id = this.shard.newId(address.queue, shard, now);
        const named = this.shard.claimKey(key, id, now);
        return { id: named, fresh: named === id };
      });
    });
  }

  // lookupKeys: input = idempotency keys. output: the id each names here within the window, or null.
  // Read-only: a queue that grew asks a key's old home before it claims at the new one.
  lookupKeys(keys: string[]): (string | null)[] {
    this.catchUp();
    const now = this.shard.clock.now();
    return keys.map((key) => this.shard.named(key, now));
  }

  // receive: inputs = this shard's address, messages from other shards.
  // output: none; each message is applied once however often it arrives.
  receive(address: ShardAddress, mails: Mail[]): void {
    this.tx(() => {
      this.shard.know(address);
      this.shard.local.push(...mails);
    });
  }

  // peek: input = task ids of this shard. output: each one's status, or null when it does not exist.
  peek(ids: string[]): (Status | null)[] {
    this.catchUp();
    this.shard.store.prefetch(ids);
    return ids.map((id) => this.shard.store.get(id)?.status ?? null);
  }

  // seal: input = a parent's id. output: the parent; no more children will come, so it may run once they finish.
  // errors: not_found.
  seal(id: string): TaskRow {
    return this.tx(() => {
      this.shard.mustGet(id);
      this.shard.local.push({ kind: "seal", parent: id });
      this.mail.drain();
      return this.shard.store.get(id)!;
    });
  }

  // children: input = a parent's id, a cursor. output: its children's ids in id order, with how each finished (or `active`).
  // errors: not_found.
  children(parent: string, after: string | undefined, limit: number) {
    this.catchUp();
    this.shard.mustGet(parent);
    return this.shard.store.listChildren(parent, after, limit).map(({ child, status }) => ({ id: child, status }));
  }

  /** Messages due for delivery to other shards. */
  mailDue(limit?: number): OutgoingMail[] {
    return this.mail.due(limit);
  }

  /** The receiver acknowledged these: they are done. */
  mailDelivered(seqs: number[]): void {
    this.mail.delivered(seqs);
  }

  /** Delivery failed: each is tried again after a growing delay, until MAIL_MAX_ATTEMPTS, then it is dead. */
  mailFailed(mails: OutgoingMail[]): void {
    this.mail.failed(mails);
  }

  /** Messages that failed every attempt and are kept aside (for the queue's retention). */
  deadMail(): number {
    return this.shard.store.countDeadMail();
  }

  // lease: inputs = worker id, how many, queue settings.
  // output: up to `max` leases, highest priority first, FIFO within a priority, within flow control and LEASE_BYTES; none when paused.
  // errors: none.
  lease(workerId: string, max: number, settings: QueueSettings): Lease[] {
    this.configure(settings);
    if (this.shard.settings.paused) return [];
    return this.tx(() => this.life.lease(workerId, max));
  }

  // groups: no input. output: each group with ready or running tasks here, with how many of each.
  groups(): GroupDepth[] {
    this.catchUp();
    return this.shard.flow.groups();
  }

  // heartbeat: inputs = task id, its current lease token, optional progress (JSON text).
  // output: the new lease expiry and whether cancellation was requested.
  // errors: not_found; stale_lease when the token does not hold the lease now.
  heartbeat(id: string, leaseToken: string, progress?: string): HeartbeatResult {
    return this.tx(() => this.life.heartbeatOne(id, leaseToken, progress));
  }

  // complete: inputs = task id, lease token, optional result (JSON text).
  // output: the completed task; completing again with the same token returns it unchanged.
  // errors: not_found; stale_lease.
  complete(id: string, leaseToken: string, result?: string): TaskRow {
    return this.tx(() => this.life.completeOne(id, leaseToken, result));
  }

  // fail: inputs = task id, lease token, error (JSON text), whether a retry may follow.
  // output: the task, now scheduled for a retry, failed (dead letter) or cancelled.
  // errors: not_found; stale_lease.
  fail(id: string, leaseToken: string, error: string, retryable = true): TaskRow {
    return this.tx(() => this.life.failOne(id, leaseToken, error, retryable));
  }

  // release: inputs = task id, lease token, optional delay.
  // output: the task, ready again (or scheduled) with its attempt given back; cancelled if cancel was requested.
  // errors: not_found; stale_lease.
  release(id: string, leaseToken: string, delayMs = 0): TaskRow {
    return this.tx(() => this.life.releaseOne(id, leaseToken, delayMs));
  }

  completeMany(items: { id: string; leaseToken: string; result?: string }[]): ItemResult<TaskRow>[] {
    return this.batch(items, (i) => this.life.completeOne(i.id, i.leaseToken, i.result));
  }

  failMany(items: { id: string; leaseToken: string; error: string; retryable?: boolean }[]): ItemResult<TaskRow>[] {
    return this.batch(items, (i) => this.life.failOne(i.id, i.leaseToken, i.error, i.retryable ?? true));
  }

  releaseMany(items: { id: string; leaseToken: string; delayMs?: number }[]): ItemResult<TaskRow>[] {
    return this.batch(items, (i) => this.life.releaseOne(i.id, i.leaseToken, i.delayMs ?? 0));
  }

  heartbeatMany(items: { id: string; leaseToken: string; progress?: string }[]): ItemResult<HeartbeatResult>[] {
    return this.batch(items, (i) => this.life.heartbeatOne(i.id, i.leaseToken, i.progress));
  }

  // cancel: input = task id.
  // output: the task: cancelled if it was not running; running with cancelRequested if it was.
  // errors: not_found; invalid_state for a completed or failed task.
  cancel(id: string): TaskRow {
    return this.tx(() => this.life.cancel(id));
  }

  // retry: input = task id of a failed or cancelled task.
  // output: the task, pending again with its attempts reset.
  // errors: not_found; invalid_state for any other status.
  retry(id: string): TaskRow {
    return this.tx(() => this.life.retry(id));
  }

  // retryFailed: inputs = the tasks to retry are those failed at or before `failedBy` (ms), so a
  // task that fails again after a retry is not taken again by the same sweep; how many at most.
  // output: how many dead letters this pass made pending again, attempts reset, and whether none
  // of those is left; the caller asks again (same failedBy) for the rest.
  // errors: none.
  retryFailed(failedBy: number, limit = DUE_BATCH): RetryFailedResult {
    return this.tx(() => {
      const rows = this.shard.store.list({ status: "failed", finishedBy: failedBy, limit: limit + 1 });
      for (const row of rows.slice(0, limit)) this.life.retry(row.id);
      return { retried: Math.min(rows.length, limit), done: rows.length <= limit };
    });
  }

  // remove: input = task id of a terminal task.
  // output: the task as it was; it is gone from the shard (history keeps it), its idempotency key freed.
  // errors: not_found; invalid_state unless completed, failed or cancelled.
  remove(id: string): TaskRow {
    return this.tx(() => this.life.remove(id));
  }

  // purge: no input.
  // output: how many pending or scheduled tasks this call cancelled (one pass of DUE_BATCH), and
  // whether that was all; the alarm cancels the rest, pass by pass. Tasks created after the call stay.
  // errors: none.
  purge(): PurgeResult {
    return this.tx(() => this.due.startPurge());
  }

  get(id: string): TaskRow | null {
    this.catchUp();
    return this.shard.store.get(id);
  }

  list(options: ListOptions): TaskRow[] {
    this.catchUp();
    return this.shard.store.list(options);
  }

  counts(): Partial<Record<Status, number>> {
    this.catchUp();
    return this.shard.counts();
  }

  /** When the task pending longest became ready (null: none pending). */
  oldestReadyAt(): number | null {
    this.catchUp();
    return this.shard.store.oldestReadyAt();
  }
}

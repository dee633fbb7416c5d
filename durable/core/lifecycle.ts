import { TERMINAL, type Backoff, type EventType, type TaskRow } from "../../schema/shard";
import { backoffDelay } from "./backoff";
import { check } from "./errors";
import { idTime, type TaskAddress } from "./ids";
import { deletedMark } from "./state";
import { afterRun, endedBy, newRow, openDependencies } from "./rules";
import type { ShardState } from "./state";
import { CHILD_RESULTS_MAX, LEASE_BYTES, type Elsewhere, type Enqueued, type HeartbeatResult, type Lease, type NewTask } from "./types";

/**
 * A task's life in one shard, each step inside the caller's transaction:
 * made (ready, scheduled or blocked), leased, heartbeated, completed, failed,
 * released, cancelled, retried by hand, deleted.
 */
export class Lifecycle {
  constructor(private readonly shard: ShardState) {}

  // enqueueOne: a validated task. output: the task made, the task its key names here, or where that task lives.
  enqueueOne(address: TaskAddress, input: NewTask): Enqueued | Elsewhere {
    const { shard } = this;
    const now = shard.clock.now();
    let id: string;
    if (input.id !== undefined) {
      // Claimed at the key's home shard for this id: made once, however often the call is repeated.
      const made = shard.store.get(input.id);
      if (made) return { task: made, created: false };
      check(
        shard.store.getKey(deletedMark(input.id)) === null,
        "invalid_state",
        `Task ${input.id}, which this idempotency key named, was deleted; the key is being freed. Retry in a moment.`,
      );
      // A key held here from before keys had a home shard (its task was placed by its group).
      const legacy = input.idempotencyKey === undefined ? null : shard.named(input.idempotencyKey, now);
      const first = legacy === null ? null : shard.store.get(legacy);
      if (first) return { task: first, created: false };
      id = input.id;
    } else {
      id = shard.newId(address.queue, address.shard, now);
      if (input.idempotencyKey !== undefined) {
        const named = shard.claimKey(input.idempotencyKey, id, now);
        if (named !== id) {
          const first = shard.store.get(named);
          return first ? { task: first, created: false } : { created: false, elsewhere: named };
        }
      }
    }
    const row = newRow(id, input, shard.settings, now);
    // A claimed id was made when its key was claimed: creation order stays id order (the retention sweep relies on it).
    if (input.id !== undefined) row.createdAt = Math.min(now, idTime(id));
    const waiting = openDependencies(input);
    if (waiting.length > 0 || input.waitForChildren) {
      Object.assign(row, { status: "blocked", depsWaiting: waiting.length > 0 ? JSON.stringify(waiting) : null, dueAt: null });
    } else Object.assign(row, shard.readyBy(row.runAt, now));
    shard.insert(row);
    const broken = new Set(input.broken);
    for (const dep of waiting) {
      if (broken.has(dep)) shard.local.push({ kind: "resolved", dep, dependent: row.id, ok: false, status: "failed or cancelled" });
      else shard.send(dep, { kind: "register", dep, dependent: row.id });
    }
    if (row.parentId) shard.send(row.parentId, { kind: "child_added", parent: row.parentId, child: row.id });
    return { task: row, created: true };
  }

  // lease: worker id, how many. output: leases in priority order within flow control, stopping at LEASE_BYTES.
  lease(workerId: string, max: number): Lease[] {
    const { shard } = this;
    const now = shard.clock.now();
    const leases: Lease[] = [];
    let bytes = 0;
    shard.flow.pick(max, now, (row) => {
      if (leases.length > 0 && bytes + row.payload.length > LEASE_BYTES) return false;
      bytes += row.payload.length;
      const leaseToken = shard.entropy.token();
      const task = shard.transition(row, "leased", {
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
    shard.flow.recordStarts(
      leases.map((l) => l.task),
      now,
    );
    return leases;
  }

  heartbeatOne(id: string, leaseToken: string, progress?: string): HeartbeatResult {
    const row = this.shard.leased(id, leaseToken);
    const expiresAt = this.shard.clock.now() + row.timeoutMs;
    // The new expiry is visible (the task's `expiresAt`), so even a bare heartbeat is an event.
    if (progress !== undefined && progress !== row.progress) this.shard.transition(row, "progress", { dueAt: expiresAt, progress });
    else this.shard.transition(row, "heartbeat", { dueAt: expiresAt });
    return { expiresAt, cancelRequested: row.cancelRequested === 1 };
  }

  completeOne(id: string, leaseToken: string, result?: string): TaskRow {
    const row = this.shard.mustGet(id);
    // A lost response may be retried: the same token after success answers with what is stored.
    if (row.status === "completed" && row.leaseToken === leaseToken) return row;
    this.shard.leased(id, leaseToken, row);
    return this.shard.finish(row, "completed", "completed", { result: result ?? null });
  }

  failOne(id: string, leaseToken: string, error: string, retryable: boolean): TaskRow {
    const row = this.shard.mustGet(id);
    // A lost response may be retried: the same token after it ended its run answers with what is stored.
    if (endedBy(row, leaseToken)) return row;
    return this.afterRun(this.shard.leased(id, leaseToken, row), "failed", error, retryable);
  }

  releaseOne(id: string, leaseToken: string, delayMs: number): TaskRow {
    const found = this.shard.mustGet(id);
    if (endedBy(found, leaseToken)) return found; // sent again, as failOne
    const row = this.shard.leased(id, leaseToken, found);
    // Cancellation was asked for while it ran: handing it back ends it, it never runs again.
    if (row.cancelRequested) return this.shard.finish(row, "cancelled", "cancelled", {});
    const now = this.shard.clock.now();
    return this.shard.transition(row, "released", {
      ...this.shard.readyBy(now + delayMs, now),
      attempts: row.attempts - 1,
      workerId: null,
    });
  }

  /** What a run that did not complete (failed, or its lease expired) turns into: a retry, a dead letter, or a cancellation. */
  afterRun(row: TaskRow, type: "failed" | "expired", error: string, retryable: boolean): TaskRow {
    const { shard } = this;
    const expired = type === "expired";
    const outcome = afterRun(row, retryable);
    const event: EventType = expired ? "expired" : outcome === "retry" ? "retrying" : outcome;
    // An expired lease's token ended nothing: it is forgotten, so a fail or release sent with it is stale (endedBy).
    const ended = expired ? { error, leaseToken: null } : { error };
    if (outcome !== "retry") return shard.finish(row, event, outcome, ended);
    const now = shard.clock.now();
    const runAt = now + backoffDelay(row.attempts, JSON.parse(row.backoff) as Backoff, () => shard.entropy.random());
    return shard.transition(row, event, { ...shard.readyBy(runAt, now), ...ended });
  }

  cancel(id: string): TaskRow {
    const row = this.shard.mustGet(id);
    if (row.status === "cancelled") return row;
    check(!TERMINAL.has(row.status), "invalid_state", `Task ${id} is already ${row.status} and cannot be cancelled.`);
    if (row.status === "running") return row.cancelRequested ? row : this.shard.transition(row, "cancel_requested", { cancelRequested: 1 });
    return this.shard.finish(row, "cancelled", "cancelled", {});
  }

  retry(id: string): TaskRow {
    const row = this.shard.mustGet(id);
    check(
      row.status === "failed" || row.status === "cancelled",
      "invalid_state",
      `Task ${id} is ${row.status}; only failed or cancelled tasks can be retried.`,
    );
    return this.shard.transition(row, "retried", {
      ...this.shard.ready(this.shard.clock.now()),
      attempts: 0,
      leaseToken: null, // the run its token ended is over; a fail sent again with it is stale
      workerId: null,
      cancelRequested: 0,
      result: null,
      finishedAt: null,
    });
  }

  remove(id: string): TaskRow {
    const row = this.shard.mustGet(id);
    check(TERMINAL.has(row.status), "invalid_state", `Task ${id} is ${row.status}; cancel it before deleting it.`);
    this.shard.drop(row);
    this.shard.emit("deleted", id, {});
    return row;
  }

  /**
   * The children's results, for the lease of a parent that waited for them: the
   * first CHILD_RESULTS_MAX in id order, within LEASE_BYTES (`complete` says whether that is all).
   */
  private childResults(parent: string): { results: Record<string, string | null>; complete: boolean; size: number } {
    const results: Record<string, string | null> = {};
    let size = 0;
    const page = this.shard.store.listChildren(parent, undefined, CHILD_RESULTS_MAX + 1);
    for (const [i, c] of page.entries()) {
      const result = c.status === "completed" ? c.result : null;
      if (i === CHILD_RESULTS_MAX || size + (result?.length ?? 4) > LEASE_BYTES) return { results, complete: false, size };
      results[c.child] = result; // task ids (validated), never a user string
      size += result?.length ?? 4;
    }
    return { results, complete: true, size };
  }
}

import type { Backoff, TaskRow } from "../../schema/shard";
import type { Problem } from "./errors";
import type { TaskAddress } from "./ids";

/** The shapes and limits of a shard's engine: what goes in and comes out of it. */

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

export interface RetryFailedResult {
  retried: number;
  /** false while failed tasks are left: ask again */
  done: boolean;
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
/** After this many failed deliveries (about 25 minutes) a message is dead: kept aside, no longer sent. */
export const MAIL_MAX_ATTEMPTS = 30;

export interface GroupDepth {
  group: string;
  pending: number;
  running: number;
}

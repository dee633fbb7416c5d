import { DurableObject } from "cloudflare:workers";
import type { KeyRecord } from "../schema/access";
import type { SettingsPatchInput } from "../schema/api";
import { REGISTRY_MIGRATIONS } from "../schema/migrations/registry";
import { DEFAULT_SETTINGS, settingsFrom, TERMINAL, type QueueSettings, type TaskRow } from "../schema/shard";
import type { NewTask } from "./core/engine";
import { check } from "./core/errors";
import { parseTaskId } from "./core/ids";
import { dueFire, nextFires } from "./core/schedule";
import type { Limits } from "./core/rate-limit";
import { migrate } from "./migrate";
import { outcome, outcomeAsync, unwrap, type Outcome } from "./outcome";
import { shardOf } from "./queue-shard";
import { enqueueWave } from "../worker/placement";

export interface WorkerRecord {
  id: string;
  name: string;
  queues: string[];
  concurrency: number;
  registeredAt: number;
  lastSeenAt: number;
  currentTasks: string[];
  completed: number;
  failed: number;
  busyMs: number;
}

interface WorkerRow extends Record<string, SqlStorageValue> {
  id: string;
  name: string;
  queues: string;
  concurrency: number;
  registered_at: number;
  last_seen_at: number;
  current_tasks: string;
  completed: number;
  failed: number;
  busy_ms: number;
}

const workerRecord = (r: WorkerRow): WorkerRecord => ({
  id: r.id,
  name: r.name,
  queues: JSON.parse(r.queues) as string[],
  concurrency: r.concurrency,
  registeredAt: r.registered_at,
  lastSeenAt: r.last_seen_at,
  currentTasks: JSON.parse(r.current_tasks) as string[],
  completed: r.completed,
  failed: r.failed,
  busyMs: r.busy_ms,
});

export interface ScheduleInput {
  queue: string;
  id: string;
  cron: string;
  timezone: string;
  /** the task each fire enqueues (payload as JSON text) */
  task: NewTask;
  overlap: "skip" | "allow";
}

export interface ScheduleRecord extends ScheduleInput {
  paused: boolean;
  nextAt: number | null;
  lastFireAt: number | null;
  lastTaskId: string | null;
  fired: number;
  /** fires not run: the previous run still going (overlap "skip"), or missed during downtime */
  skipped: number;
  createdAt: number;
}

interface ScheduleRow extends Record<string, SqlStorageValue> {
  queue: string;
  id: string;
  cron: string;
  timezone: string;
  task: string;
  overlap: string;
  paused: number;
  next_at: number | null;
  last_fire_at: number | null;
  last_task_id: string | null;
  fired: number;
  skipped: number;
  created_at: number;
}

const scheduleRecord = (r: ScheduleRow): ScheduleRecord => ({
  queue: r.queue,
  id: r.id,
  cron: r.cron,
  timezone: r.timezone,
  task: JSON.parse(r.task) as NewTask,
  overlap: r.overlap as ScheduleRecord["overlap"],
  paused: r.paused === 1,
  nextAt: r.next_at,
  lastFireAt: r.last_fire_at,
  lastTaskId: r.last_task_id,
  fired: r.fired,
  skipped: r.skipped,
  createdAt: r.created_at,
});

/** How many due schedules one alarm handles; it fires again at once while more are due. */
const SCHEDULE_BATCH = 50;

export interface QueueRecord {
  name: string;
  settings: QueueSettings;
  createdAt: number;
}

/** Applies a settings patch; the shard count may only grow, since task ids name their shard. */
export function applyPatch(current: QueueSettings, patch: SettingsPatchInput & { paused?: boolean }): QueueSettings {
  check(
    patch.shards === undefined || patch.shards >= current.shards,
    "invalid_state",
    `The queue has ${current.shards} shards; the count may only grow, so ask for ${current.shards} or more.`,
  );
  const { groupLimits, ...rest } = patch;
  const groups = current.groupLimits;
  // A Map, not an object: group keys are user strings ("__proto__" must be a group like any other).
  const overrides = new Map(Object.entries(groups.overrides));
  for (const [key, limits] of Object.entries(groupLimits?.overrides ?? {})) {
    if (limits === null) overrides.delete(key);
    else overrides.set(key, limits);
  }
  const next: QueueSettings = {
    ...current,
    ...rest,
    version: current.version + 1,
    defaults: { ...current.defaults, ...patch.defaults },
    groupLimits: { default: groupLimits?.default === undefined ? groups.default : groupLimits.default, overrides: Object.fromEntries(overrides) },
  };
  // A queue-wide limit is split over the shards (docs/ARCHITECTURE.md, Flow control): each needs a part of at least 1.
  const { shards } = next;
  check(
    next.concurrency == null || next.concurrency >= shards,
    "invalid_state",
    `A concurrency cap of ${next.concurrency} cannot be split over ${shards} shards; use a cap of at least ${shards}.`,
  );
  check(
    next.startLimit == null || next.startLimit.count >= shards,
    "invalid_state",
    `A start limit of ${next.startLimit?.count} cannot be split over ${shards} shards; allow at least ${shards} starts per interval.`,
  );
  // A key must not outlive its task: past retention the task is gone from the shard, and a replay would make a second one.
  const touched = patch.idempotencyWindowMs !== undefined || patch.retentionDays !== undefined;
  check(
    !touched || next.idempotencyWindowMs <= next.retentionDays * 86_400_000,
    "invalid_state",
    `An idempotency window of ${next.idempotencyWindowMs} ms is longer than the retention of ${next.retentionDays} days; shorten the window or keep tasks longer.`,
  );
  return next;
}

/** One per tenant: the tenant's queues and their settings (queues are created on first use), and its API keys. */
export class QueueRegistry extends DurableObject<Env> {
  /** Time source of the schedules; tests move it forward. */
  clock = { now: () => Date.now() };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, REGISTRY_MIGRATIONS));
  }

  /** The queue's record, created with default settings if it does not exist yet. */
  ensure(name: string): QueueRecord {
    return this.find(name) ?? this.write(name, DEFAULT_SETTINGS, Date.now());
  }

  find(name: string): QueueRecord | null {
    const row = this.ctx.storage.sql
      .exec<{ name: string; settings: string; created_at: number }>("SELECT * FROM queues WHERE name = ?", name)
      .toArray()[0];
    return row ? { name: row.name, settings: settingsFrom(row.settings), createdAt: row.created_at } : null;
  }

  list(after: string | undefined, limit: number): QueueRecord[] {
    return this.ctx.storage.sql
      .exec<{ name: string; settings: string; created_at: number }>(
        "SELECT * FROM queues WHERE name > ? ORDER BY name LIMIT ?",
        after ?? "",
        limit,
      )
      .toArray()
      .map((r) => ({ name: r.name, settings: settingsFrom(r.settings), createdAt: r.created_at }));
  }

  update(name: string, patch: SettingsPatchInput & { paused?: boolean }): Outcome<QueueRecord> {
    return outcome(() => {
      const current = this.ensure(name);
      return this.write(name, applyPatch(current.settings, patch), current.createdAt);
    });
  }

  addKey(record: KeyRecord): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO keys (id, role, name, limits, created_at) VALUES (?, ?, ?, ?, ?)",
      record.id,
      record.role,
      record.name,
      record.limits ? JSON.stringify(record.limits) : null,
      record.createdAt,
    );
  }

  /** The tenant's keys in id order after `after`; records only, never a key or its hash. */
  listKeys(tenant: string, after: string | undefined, limit: number): KeyRecord[] {
    return this.ctx.storage.sql
      .exec<{ id: string; role: string; name: string; limits: string | null; created_at: number }>(
        "SELECT * FROM keys WHERE id > ? ORDER BY id LIMIT ?",
        after ?? "",
        limit,
      )
      .toArray()
      .map((r) => ({
        id: r.id,
        tenant,
        role: r.role as KeyRecord["role"],
        name: r.name,
        limits: r.limits ? (JSON.parse(r.limits) as KeyRecord["limits"]) : null,
        createdAt: r.created_at,
      }));
  }

  /** The tenant's default rate limits, or null for the deployment's. */
  limits(): Limits | null {
    const row = this.ctx.storage.sql.exec<{ limits: string | null }>("SELECT limits FROM tenant").toArray()[0];
    return row?.limits ? (JSON.parse(row.limits) as Limits) : null;
  }

  /** Sets the tenant's default limits; returns the ids of its keys, which hold a copy. */
  setLimits(limits: Limits | null): string[] {
    this.ctx.storage.sql.exec(
      "INSERT INTO tenant (one, limits) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET limits = excluded.limits",
      limits ? JSON.stringify(limits) : null,
    );
    return this.ctx.storage.sql
      .exec<{ id: string }>("SELECT id FROM keys")
      .toArray()
      .map((r) => r.id);
  }

  removeKey(id: string): boolean {
    return this.ctx.storage.sql.exec("DELETE FROM keys WHERE id = ?", id).rowsWritten > 0;
  }

  registerWorker(id: string, name: string, queues: string[], concurrency: number, now: number): WorkerRecord {
    this.ctx.storage.sql.exec(
      "INSERT INTO workers (id, name, queues, concurrency, registered_at, last_seen_at, current_tasks) VALUES (?, ?, ?, ?, ?, ?, '[]')",
      id,
      name,
      JSON.stringify(queues),
      concurrency,
      now,
      now,
    );
    return this.worker(id)!;
  }

  /** Records a heartbeat: the tasks in hand now, and counts since the previous heartbeat. */
  workerHeartbeat(
    id: string,
    report: { currentTasks: string[]; completed: number; failed: number; busyMs: number },
    now: number,
  ): WorkerRecord | null {
    const written = this.ctx.storage.sql.exec(
      "UPDATE workers SET last_seen_at = ?, current_tasks = ?, completed = completed + ?, failed = failed + ?, busy_ms = busy_ms + ? WHERE id = ?",
      now,
      JSON.stringify(report.currentTasks),
      report.completed,
      report.failed,
      report.busyMs,
      id,
    ).rowsWritten;
    return written > 0 ? this.worker(id) : null;
  }

  worker(id: string): WorkerRecord | null {
    const row = this.ctx.storage.sql.exec<WorkerRow>("SELECT * FROM workers WHERE id = ?", id).toArray()[0];
    return row ? workerRecord(row) : null;
  }

  listWorkers(after: string | undefined, limit: number): WorkerRecord[] {
    return this.ctx.storage.sql
      .exec<WorkerRow>("SELECT * FROM workers WHERE id > ? ORDER BY id LIMIT ?", after ?? "", limit)
      .toArray()
      .map(workerRecord);
  }

  // ---------------------------------------------------------------- schedules

  /** Creates or replaces a schedule (its counters and pause survive a replace). */
  putSchedule(tenant: string, input: ScheduleInput): Outcome<{ schedule: ScheduleRecord; created: boolean }> {
    return outcome(() => {
      this.know(tenant);
      this.ensure(input.queue);
      const now = this.clock.now();
      const next = nextFires(input.cron, input.timezone, now, 1)[0] ?? null; // validates cron and time zone
      const old = this.schedule(input.queue, input.id);
      this.ctx.storage.sql.exec(
        `INSERT INTO schedules (queue, id, cron, timezone, task, overlap, paused, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
         ON CONFLICT (queue, id) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, task = excluded.task,
           overlap = excluded.overlap, next_at = CASE WHEN schedules.paused = 1 THEN NULL ELSE excluded.next_at END`,
        input.queue,
        input.id,
        input.cron,
        input.timezone,
        JSON.stringify(input.task),
        input.overlap,
        next,
        now,
      );
      this.syncAlarm();
      return { schedule: this.schedule(input.queue, input.id)!, created: old === null };
    });
  }

  schedule(queue: string, id: string): ScheduleRecord | null {
    const row = this.ctx.storage.sql.exec<ScheduleRow>("SELECT * FROM schedules WHERE queue = ? AND id = ?", queue, id).toArray()[0];
    return row ? scheduleRecord(row) : null;
  }

  schedules(queue: string): ScheduleRecord[] {
    return this.ctx.storage.sql.exec<ScheduleRow>("SELECT * FROM schedules WHERE queue = ? ORDER BY id", queue).toArray().map(scheduleRecord);
  }

  deleteSchedule(queue: string, id: string): boolean {
    const gone = this.ctx.storage.sql.exec("DELETE FROM schedules WHERE queue = ? AND id = ?", queue, id).rowsWritten > 0;
    this.syncAlarm();
    return gone;
  }

  /** Pauses (no fires, none caught up later) or resumes (from the next fire after now). */
  pauseSchedule(queue: string, id: string, paused: boolean): ScheduleRecord | null {
    const s = this.schedule(queue, id);
    if (!s) return null;
    const next = paused ? null : (nextFires(s.cron, s.timezone, this.clock.now(), 1)[0] ?? null);
    this.ctx.storage.sql.exec("UPDATE schedules SET paused = ?, next_at = ? WHERE queue = ? AND id = ?", paused ? 1 : 0, next, queue, id);
    this.syncAlarm();
    return this.schedule(queue, id);
  }

  /** Enqueues the schedule's task now, outside its cron. */
  runSchedule(tenant: string, queue: string, id: string): Promise<Outcome<TaskRow | null>> {
    return outcomeAsync(async () => {
      this.know(tenant);
      const s = this.schedule(queue, id);
      if (!s) return null;
      const task = await this.enqueue(tenant, s, `schedule:${s.id}:run:${this.clock.now()}`);
      this.ctx.storage.sql.exec("UPDATE schedules SET last_task_id = ?, fired = fired + 1 WHERE queue = ? AND id = ?", task.id, queue, id);
      return task;
    });
  }

  /** Fires the schedules that are due, each at most once per alarm however late it runs. */
  async alarm(): Promise<void> {
    const tenant = this.ctx.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'tenant'").toArray()[0]?.value;
    const now = this.clock.now();
    const due = this.ctx.storage.sql
      .exec<ScheduleRow>("SELECT * FROM schedules WHERE next_at IS NOT NULL AND next_at <= ? ORDER BY next_at LIMIT ?", now, SCHEDULE_BATCH)
      .toArray()
      .map(scheduleRecord);
    let failed = false;
    for (const s of due) {
      try {
        if (tenant !== undefined) await this.fire(tenant, s, now);
      } catch (e) {
        // The shard could not be reached: this fire is tried again (same fire time, same key) in 5 s.
        failed = true;
        console.error(JSON.stringify({ level: "error", msg: "schedule fire failed", queue: s.queue, schedule: s.id, error: String(e) }));
      }
    }
    this.syncAlarm(failed ? now + 5000 : undefined);
  }

  /**
   * One fire: the task is enqueued with the idempotency key `schedule:<id>:<fire time>`,
   * so an alarm retried after a crash meets the task it already made instead of a second.
   */
  private async fire(tenant: string, s: ScheduleRecord, now: number): Promise<void> {
    const { fireAt, missed, nextAt } = dueFire(s.cron, s.timezone, s.nextAt!, now);
    let skip = false;
    if (s.overlap === "skip" && s.lastTaskId) {
      const at = parseTaskId(s.lastTaskId);
      const status = at ? unwrap(await shardOf(this.env, tenant, at.queue, at.shard).peek([s.lastTaskId]))[0] : null;
      skip = status !== null && !TERMINAL.has(status);
    }
    const task = skip ? null : await this.enqueue(tenant, s, `schedule:${s.id}:${fireAt}`);
    // Only if the schedule was not replaced, paused or deleted meanwhile.
    this.ctx.storage.sql.exec(
      `UPDATE schedules SET next_at = ?, last_fire_at = ?, last_task_id = coalesce(?, last_task_id), fired = fired + ?, skipped = skipped + ?
       WHERE queue = ? AND id = ? AND next_at = ?`,
      nextAt,
      fireAt,
      task?.id ?? null,
      task ? 1 : 0,
      (skip ? 1 : 0) + Math.max(0, missed),
      s.queue,
      s.id,
      s.nextAt,
    );
  }

  private async enqueue(tenant: string, s: ScheduleRecord, key: string): Promise<TaskRow> {
    const { settings } = this.ensure(s.queue);
    const [made] = await enqueueWave(this.env, tenant, s.queue, settings, [{ ...s.task, idempotencyKey: key }]);
    return made.task;
  }

  private know(tenant: string): void {
    this.ctx.storage.sql.exec("INSERT INTO meta (key, value) VALUES ('tenant', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", tenant);
  }

  /** The alarm at the earliest fire time (not before `notBefore`, after a failed fire). */
  private syncAlarm(notBefore?: number): void {
    const next = this.ctx.storage.sql.exec<{ next: number | null }>("SELECT min(next_at) AS next FROM schedules WHERE next_at IS NOT NULL").one().next;
    if (next === null) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(Math.max(next, notBefore ?? next));
  }

  private write(name: string, settings: QueueSettings, createdAt: number): QueueRecord {
    this.ctx.storage.sql.exec(
      "INSERT INTO queues (name, settings, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET settings = excluded.settings",
      name,
      JSON.stringify(settings),
      createdAt,
    );
    return { name, settings, createdAt };
  }
}

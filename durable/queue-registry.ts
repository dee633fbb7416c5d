import { DurableObject } from "cloudflare:workers";
import { and, eq, gt, isNotNull, lte, min, sql } from "drizzle-orm";
import { drizzle, type DrizzleSqliteDODatabase } from "drizzle-orm/durable-sqlite";
import type { KeyRecord } from "../schema/access";
import type { SettingsPatchInput } from "../schema/api";
import { REGISTRY_MIGRATIONS } from "../schema/migrations/registry";
import { keys, queues, meta, schedules, tenant as tenantTable, workers, type ScheduleRow, type WorkerRow } from "../schema/registry";
import { DEFAULT_SETTINGS, settingsFrom, TERMINAL, type QueueSettings, type TaskRow } from "../schema/shard";
import type { NewTask } from "./core/engine";
import { parseTaskId } from "./core/ids";
import { dueFire, nextFires } from "./core/schedule";
import type { Limits } from "./core/rate-limit";
import { migrate } from "./migrate";
import { outcome, outcomeAsync, unwrap, type Outcome } from "./outcome";
import { shardOf } from "./queue-shard";
import { enqueueWave } from "../worker/placement";
import { applyPatch } from "./core/settings";

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

const workerRecord = (r: WorkerRow): WorkerRecord => ({
  ...r,
  queues: JSON.parse(r.queues) as string[],
  currentTasks: JSON.parse(r.currentTasks) as string[],
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

const scheduleRecord = (r: ScheduleRow): ScheduleRecord => ({ ...r, task: JSON.parse(r.task) as NewTask, paused: r.paused === 1 });

/** How many due schedules one alarm handles; it fires again at once while more are due. */
const SCHEDULE_BATCH = 50;

export interface QueueRecord {
  name: string;
  settings: QueueSettings;
  createdAt: number;
}

/** One per tenant: the tenant's queues and their settings (queues are created on first use), and its API keys. */
export class QueueRegistry extends DurableObject<Env> {
  /** Time source of the schedules; tests move it forward. */
  clock = { now: () => Date.now() };

  /** drizzle's query builder over the object's SQLite: the registry's reads and writes are few and cold */
  private readonly db: DrizzleSqliteDODatabase;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = drizzle(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, REGISTRY_MIGRATIONS));
  }

  /** The queue's record, created with default settings if it does not exist yet. */
  ensure(name: string): QueueRecord {
    return this.find(name) ?? this.write(name, DEFAULT_SETTINGS, Date.now());
  }

  find(name: string): QueueRecord | null {
    const row = this.db.select().from(queues).where(eq(queues.name, name)).get();
    return row ? { ...row, settings: settingsFrom(row.settings) } : null;
  }

  list(after: string | undefined, limit: number): QueueRecord[] {
    return this.db
      .select()
      .from(queues)
      .where(gt(queues.name, after ?? ""))
      .orderBy(queues.name)
      .limit(limit)
      .all()
      .map((r) => ({ ...r, settings: settingsFrom(r.settings) }));
  }

  update(name: string, patch: SettingsPatchInput & { paused?: boolean }): Outcome<QueueRecord> {
    return outcome(() => {
      const current = this.ensure(name);
      return this.write(name, applyPatch(current.settings, patch, this.clock.now()), current.createdAt);
    });
  }

  addKey(record: KeyRecord): void {
    const { tenant: _tenant, ...row } = record;
    this.db
      .insert(keys)
      .values({ ...row, limits: record.limits ? JSON.stringify(record.limits) : null })
      .run();
  }

  /** The tenant's keys in id order after `after`; records only, never a key or its hash. */
  listKeys(tenant: string, after: string | undefined, limit: number): KeyRecord[] {
    return this.db
      .select()
      .from(keys)
      .where(gt(keys.id, after ?? ""))
      .orderBy(keys.id)
      .limit(limit)
      .all()
      .map((r) => ({ ...r, tenant, limits: r.limits ? (JSON.parse(r.limits) as KeyRecord["limits"]) : null }));
  }

  /** The tenant's default rate limits, or null for the deployment's. */
  limits(): Limits | null {
    const row = this.db.select().from(tenantTable).get();
    return row?.limits ? (JSON.parse(row.limits) as Limits) : null;
  }

  /** Sets the tenant's default limits; returns the ids of its keys, which hold a copy. */
  setLimits(limits: Limits | null): string[] {
    const text = limits ? JSON.stringify(limits) : null;
    this.db
      .insert(tenantTable)
      .values({ one: 1, limits: text })
      .onConflictDoUpdate({ target: tenantTable.one, set: { limits: text } })
      .run();
    return this.db
      .select({ id: keys.id })
      .from(keys)
      .all()
      .map((r) => r.id);
  }

  removeKey(id: string): boolean {
    return this.db.delete(keys).where(eq(keys.id, id)).returning({ id: keys.id }).all().length > 0;
  }

  registerWorker(id: string, name: string, queues: string[], concurrency: number, now: number): WorkerRecord {
    const row = this.db
      .insert(workers)
      .values({ id, name, queues: JSON.stringify(queues), concurrency, registeredAt: now, lastSeenAt: now, currentTasks: "[]" })
      .returning()
      .get();
    return workerRecord(row);
  }

  /** Records a heartbeat: the tasks in hand now, and counts since the previous heartbeat. */
  workerHeartbeat(
    id: string,
    report: { currentTasks: string[]; completed: number; failed: number; busyMs: number },
    now: number,
  ): WorkerRecord | null {
    const row = this.db
      .update(workers)
      .set({
        lastSeenAt: now,
        currentTasks: JSON.stringify(report.currentTasks),
        completed: sql`${workers.completed} + ${report.completed}`,
        failed: sql`${workers.failed} + ${report.failed}`,
        busyMs: sql`${workers.busyMs} + ${report.busyMs}`,
      })
      .where(eq(workers.id, id))
      .returning()
      .get();
    return row ? workerRecord(row) : null;
  }

  worker(id: string): WorkerRecord | null {
    const row = this.db.select().from(workers).where(eq(workers.id, id)).get();
    return row ? workerRecord(row) : null;
  }

  listWorkers(after: string | undefined, limit: number): WorkerRecord[] {
    return this.db
      .select()
      .from(workers)
      .where(gt(workers.id, after ?? ""))
      .orderBy(workers.id)
      .limit(limit)
      .all()
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
      const task = JSON.stringify(input.task);
      this.db
        .insert(schedules)
        .values({ ...input, task, paused: 0, nextAt: next, createdAt: now })
        .onConflictDoUpdate({
          target: [schedules.queue, schedules.id],
          // A replace keeps the schedule's counters, and its pause.
          set: {
            cron: input.cron,
            timezone: input.timezone,
            task,
            overlap: input.overlap,
            nextAt: sql`CASE WHEN ${schedules.paused} = 1 THEN NULL ELSE ${next} END`,
          },
        })
        .run();
      this.syncAlarm();
      return { schedule: this.schedule(input.queue, input.id)!, created: old === null };
    });
  }

  schedule(queue: string, id: string): ScheduleRecord | null {
    const row = this.db
      .select()
      .from(schedules)
      .where(and(eq(schedules.queue, queue), eq(schedules.id, id)))
      .get();
    return row ? scheduleRecord(row) : null;
  }

  schedules(queue: string): ScheduleRecord[] {
    return this.db.select().from(schedules).where(eq(schedules.queue, queue)).orderBy(schedules.id).all().map(scheduleRecord);
  }

  deleteSchedule(queue: string, id: string): boolean {
    const gone =
      this.db
        .delete(schedules)
        .where(and(eq(schedules.queue, queue), eq(schedules.id, id)))
        .returning({ id: schedules.id })
        .all().length > 0;
    this.syncAlarm();
    return gone;
  }

  /** Pauses (no fires, none caught up later) or resumes (from the next fire after now). */
  pauseSchedule(queue: string, id: string, paused: boolean): ScheduleRecord | null {
    const s = this.schedule(queue, id);
    if (!s) return null;
    const next = paused ? null : (nextFires(s.cron, s.timezone, this.clock.now(), 1)[0] ?? null);
    this.db
      .update(schedules)
      .set({ paused: paused ? 1 : 0, nextAt: next })
      .where(and(eq(schedules.queue, queue), eq(schedules.id, id)))
      .run();
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
      this.db
        .update(schedules)
        .set({ lastTaskId: task.id, fired: sql`${schedules.fired} + 1` })
        .where(and(eq(schedules.queue, queue), eq(schedules.id, id)))
        .run();
      return task;
    });
  }

  /** Fires the schedules that are due, each at most once per alarm however late it runs. */
  async alarm(): Promise<void> {
    const tenant = this.db.select().from(meta).where(eq(meta.key, "tenant")).get()?.value;
    const now = this.clock.now();
    const due = this.db
      .select()
      .from(schedules)
      .where(and(isNotNull(schedules.nextAt), lte(schedules.nextAt, now)))
      .orderBy(schedules.nextAt)
      .limit(SCHEDULE_BATCH)
      .all()
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
    this.db
      .update(schedules)
      .set({
        nextAt,
        lastFireAt: fireAt,
        lastTaskId: task ? task.id : sql`${schedules.lastTaskId}`,
        fired: sql`${schedules.fired} + ${task ? 1 : 0}`,
        skipped: sql`${schedules.skipped} + ${(skip ? 1 : 0) + Math.max(0, missed)}`,
      })
      .where(and(eq(schedules.queue, s.queue), eq(schedules.id, s.id), eq(schedules.nextAt, s.nextAt!)))
      .run();
  }

  private async enqueue(tenant: string, s: ScheduleRecord, key: string): Promise<TaskRow> {
    const { settings } = this.ensure(s.queue);
    const [made] = await enqueueWave(this.env, tenant, s.queue, settings, [{ ...s.task, idempotencyKey: key }]);
    return made.task;
  }

  private know(tenant: string): void {
    this.db
      .insert(meta)
      .values({ key: "tenant", value: tenant })
      .onConflictDoUpdate({ target: meta.key, set: { value: tenant } })
      .run();
  }

  /** The alarm at the earliest fire time (not before `notBefore`, after a failed fire). */
  private syncAlarm(notBefore?: number): void {
    const next =
      this.db
        .select({ next: min(schedules.nextAt) })
        .from(schedules)
        .where(isNotNull(schedules.nextAt))
        .get()?.next ?? null;
    if (next === null) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(Math.max(next, notBefore ?? next));
  }

  private write(name: string, settings: QueueSettings, createdAt: number): QueueRecord {
    const text = JSON.stringify(settings);
    this.db
      .insert(queues)
      .values({ name, settings: text, createdAt })
      .onConflictDoUpdate({ target: queues.name, set: { settings: text } })
      .run();
    return { name, settings, createdAt };
  }
}

import { DurableObject } from "cloudflare:workers";
import type { KeyRecord } from "../schema/access";
import type { SettingsPatchInput } from "../schema/api";
import { REGISTRY_MIGRATIONS } from "../schema/migrations/registry";
import { DEFAULT_SETTINGS, type QueueSettings } from "../schema/shard";
import { check } from "./core/errors";
import type { Limits } from "./core/rate-limit";
import { migrate } from "./migrate";
import { outcome, type Outcome } from "./outcome";

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
  const groups = current.groupLimits ?? DEFAULT_SETTINGS.groupLimits!;
  const overrides = { ...groups.overrides };
  for (const [key, limits] of Object.entries(groupLimits?.overrides ?? {})) {
    if (limits === null) delete overrides[key];
    else overrides[key] = limits;
  }
  const next: QueueSettings = {
    ...DEFAULT_SETTINGS,
    ...current,
    ...rest,
    version: current.version + 1,
    defaults: { ...current.defaults, ...patch.defaults },
    groupLimits: { default: groupLimits?.default === undefined ? groups.default : groupLimits.default, overrides },
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
  return next;
}

/** One per tenant: the tenant's queues and their settings (queues are created on first use), and its API keys. */
export class QueueRegistry extends DurableObject<Env> {
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
    return row ? { name: row.name, settings: JSON.parse(row.settings) as QueueSettings, createdAt: row.created_at } : null;
  }

  list(after: string | undefined, limit: number): QueueRecord[] {
    return this.ctx.storage.sql
      .exec<{ name: string; settings: string; created_at: number }>(
        "SELECT * FROM queues WHERE name > ? ORDER BY name LIMIT ?",
        after ?? "",
        limit,
      )
      .toArray()
      .map((r) => ({ name: r.name, settings: JSON.parse(r.settings) as QueueSettings, createdAt: r.created_at }));
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

/**
 * `edgeq/client`: a client of edgeq's HTTP API, typed by the same zod
 * schemas the server validates with (type-only imports: nothing server-side
 * is bundled into a client).
 *
 * @example
 * ```ts
 * import type { Task, Lease } from "edgeq/client";
 * const res = await fetch(`${url}/api/v1/queues/email/leases`, { method: "POST", ... });
 * const { leases } = (await res.json()) as { leases: Lease[] };
 * ```
 */
import { request, send, type ClientOptions } from "./http";
import { liveMessages, type LiveOptions } from "./live";
import type {
  AnalyticsCacheStats,
  AnalyticsDistributions,
  AnalyticsPerformance,
  AnalyticsRange,
  AnalyticsTrends,
  ReportDefinition,
  ReportRequest,
  ApiKey,
  ApiKeyCreate,
  CreatedApiKey,
  EnqueueTask,
  GroupDepth,
  QueueInfo,
  QueueSettingsPatch,
  QueueStatistics,
  Schedule,
  ScheduleCreate,
  SearchFilters,
  Status,
  LiveMessage,
  LiveTask,
  Task,
  TimelineEvent,
  WorkerInfo,
} from "./types";

export type * from "./types";
export { EdgeqError, UnrecoverableError } from "./errors";
export type { ClientOptions } from "./http";
export type { LiveOptions, WebSocketConstructor, WebSocketLike } from "./live";

export type Page<T> = { items: T[]; nextCursor: string | null };
export type PageOptions = { limit?: number; cursor?: string };

const taskPath = (id: string, rest = "") => `/tasks/${encodeURIComponent(id)}${rest}`;

/** A query string: lists repeat their parameter, dates are ISO-8601. */
const query = (options: Record<string, unknown>) => {
  const q = new URLSearchParams();
  const text = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
  for (const [k, v] of Object.entries(options)) {
    if (Array.isArray(v)) for (const item of v) q.append(k, text(item));
    else if (v !== undefined) q.set(k, text(v));
  }
  return q.size > 0 ? `?${q}` : "";
};

/** A report's bytes as they arrive. */
async function* reportChunks(client: EdgeqClient, report: ReportRequest, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const res = await send(client.options, "POST", "/api/v1/reports", report, signal);
  const reader = res.body!.getReader();
  let done = false;
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) yield r.value;
    done = true;
  } finally {
    if (!done) await reader.cancel().catch(() => undefined); // the caller stopped early: the server stops too
    reader.releaseLock();
  }
}

/**
 * A connection to an edgeq API.
 *
 * @example
 * ```ts
 * const edgeq = new EdgeqClient({ url: "http://127.0.0.1:8787", token: process.env.EDGEQ_TOKEN! });
 * const email = edgeq.queue("email");
 * const task = await email.add("send-welcome", { to: "ada@example.com" }, { priority: 8 });
 * ```
 */
export class EdgeqClient {
  constructor(readonly options: ClientOptions) {}

  queue(name: string): Queue {
    return new Queue(this, name);
  }

  /** One call of the API under /api/v1 (errors are thrown as EdgeqError). */
  call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return request<T>(this.options, method, `/api/v1${path}`, body, signal);
  }

  get(id: string): Promise<Task> {
    return this.call("GET", taskPath(id));
  }

  cancel(id: string): Promise<Task> {
    return this.call("POST", taskPath(id, "/cancel"));
  }

  retry(id: string): Promise<Task> {
    return this.call("POST", taskPath(id, "/retry"));
  }

  /** Says no more children will come, so a parent with `waitForChildren` may run once they finish. */
  seal(id: string): Promise<Task> {
    return this.call("POST", taskPath(id, "/seal"));
  }

  /**
   * Searches task history, page by page (history lags the live queues by about a second).
   *
   * @example
   * ```ts
   * for await (const page of edgeq.search({ q: '"ada@example.com"', status: ["failed", "cancelled"] })) {
   *   for (const task of page.items) console.log(task.id, task.status);
   * }
   * ```
   */
  async *search(filters: SearchFilters = {}): AsyncGenerator<Page<Task>> {
    let cursor = filters.cursor;
    do {
      const page: Page<Task> = await this.call("GET", `/tasks${query({ ...filters, cursor })}`);
      yield page;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /**
   * Analytics from history (docs/API.md, "Analytics"), answered from the server's cache when it can.
   *
   * @example
   * ```ts
   * const { items } = await edgeq.analytics.trends({ bucket: "minute", from: new Date(Date.now() - 3_600_000) });
   * ```
   */
  readonly analytics = {
    trends: (range: AnalyticsRange & { bucket?: "minute" | "hour" | "day" } = {}): Promise<AnalyticsTrends> =>
      this.call("GET", `/analytics/trends${query(range)}`),
    distributions: (range: AnalyticsRange = {}): Promise<AnalyticsDistributions> =>
      this.call("GET", `/analytics/distributions${query(range)}`),
    performance: (options: { queue?: string } = {}): Promise<AnalyticsPerformance> =>
      this.call("GET", `/analytics/performance${query(options)}`),
    cache: (): Promise<AnalyticsCacheStats> => this.call("GET", "/analytics/cache"),
  };

  /**
   * Reports from history (docs/API.md, "Reports"): `export` streams the file as the server writes it.
   *
   * @example
   * ```ts
   * const out = createWriteStream("failed.csv");
   * for await (const chunk of edgeq.reports.export({ fields: ["id", "error"], filters: { status: "failed" } })) out.write(chunk);
   * ```
   */
  readonly reports = {
    export: (report: ReportRequest, signal?: AbortSignal): AsyncGenerator<Uint8Array> => reportChunks(this, report, signal),
    definitions: {
      list: async (): Promise<ReportDefinition[]> => (await this.call<{ items: ReportDefinition[] }>("GET", "/reports/definitions")).items,
      create: (name: string, report: ReportRequest): Promise<ReportDefinition> =>
        this.call("POST", "/reports/definitions", { name, report }),
      delete: (id: string): Promise<void> => this.call("DELETE", `/reports/definitions/${encodeURIComponent(id)}`),
    },
  };

  /** A page of a task's timeline (from history), oldest first. */
  events(id: string, options: PageOptions = {}): Promise<Page<TimelineEvent>> {
    return this.call("GET", taskPath(id, `/events${query(options)}`));
  }

  /** Every event of a task's timeline, oldest first, fetched a page at a time. */
  async *timeline(id: string): AsyncGenerator<TimelineEvent> {
    let cursor: string | undefined;
    do {
      const page = await this.events(id, { limit: 200, cursor });
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /**
   * Live messages over a WebSocket: a snapshot, then queue counts and task
   * events as they happen; reconnects on its own (each connection starts with
   * a snapshot). Needs a WebSocket: the runtime's, or on Node 20 the `ws`
   * package (found on its own when installed, or passed as `WebSocket`).
   *
   * @example
   * ```ts
   * for await (const m of edgeq.live({ queue: "email" })) if (m.type === "delta") console.log(m.counts);
   * ```
   */
  live(options: LiveOptions = {}): AsyncGenerator<LiveMessage> {
    return liveMessages(this, options);
  }

  /** One task, live: `events()` yields its changes as they happen and ends when it finishes. */
  task(id: string): { events(options?: Omit<LiveOptions, "task" | "queue">): AsyncGenerator<LiveTask> } {
    const live = (options: LiveOptions) => this.live(options);
    const get = (taskId: string) => this.get(taskId);
    const done = (t: LiveTask) => t.status === "completed" || t.status === "failed" || t.status === "cancelled";
    return {
      async *events(options = {}) {
        for await (const m of live({ ...options, task: id })) {
          let task: LiveTask;
          if (m.type === "task" && m.task.id === id) task = m.task;
          else if (m.type === "snapshot") {
            // After each (re)connect: the task as it is now, so nothing that happened meanwhile is missed.
            const t = await get(id);
            task = {
              id: t.id,
              queue: t.queue,
              status: t.status,
              attempts: t.attempts,
              progress: t.progress ?? undefined,
              result: t.result ?? undefined,
              error: t.error ?? undefined,
            };
          } else continue;
          yield task;
          if (done(task)) return;
        }
      },
    };
  }

  /** A parent's children, in creation order. */
  children(id: string, options: PageOptions = {}): Promise<Page<Task>> {
    return this.call("GET", taskPath(id, `/children${query(options)}`));
  }

  queues(options: PageOptions = {}): Promise<Page<QueueInfo>> {
    return this.call("GET", `/queues${query(options)}`);
  }

  /** Registered workers with their status (active / idle / lost) and counters. */
  workers(options: PageOptions = {}): Promise<Page<WorkerInfo>> {
    return this.call("GET", `/workers${query(options)}`);
  }

  /** API keys: the secret is in the answer of `create` only. */
  readonly keys = {
    create: (body: ApiKeyCreate): Promise<CreatedApiKey> => this.call("POST", "/keys", body),
    list: (options: PageOptions & { tenant?: string } = {}): Promise<Page<ApiKey>> => this.call("GET", `/keys${query(options)}`),
    revoke: (id: string): Promise<void> => this.call("DELETE", `/keys/${encodeURIComponent(id)}`),
  };
}

/** A named queue: producer calls, and what the queue holds. */
export class Queue {
  constructor(
    readonly client: EdgeqClient,
    readonly name: string,
  ) {}

  private path(rest = ""): string {
    return `/queues/${encodeURIComponent(this.name)}${rest}`;
  }

  /** Enqueues one task. */
  add(name: string, payload?: unknown, options: Omit<EnqueueTask, "name" | "payload"> = {}): Promise<Task> {
    return this.client.call("POST", this.path("/tasks"), { name, payload, ...options });
  }

  /** Enqueues many, in calls of up to `chunkSize` (≤ 1000), reporting progress after each. */
  async addBulk(
    tasks: EnqueueTask[],
    options: { chunkSize?: number; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<Task[]> {
    const size = Math.min(1000, options.chunkSize ?? 1000);
    const out: Task[] = [];
    for (let i = 0; i < tasks.length; i += size) {
      const { tasks: made } = await this.client.call<{ tasks: Task[] }>("POST", this.path("/tasks/batch"), {
        tasks: tasks.slice(i, i + size),
      });
      out.push(...made);
      options.onProgress?.(out.length, tasks.length);
    }
    return out;
  }

  /** Tasks the queue holds now (live, from its shards), optionally of one status (e.g. `failed` for dead letters), in creation order. */
  list(options: PageOptions & { status?: Status } = {}): Promise<Page<Task>> {
    return this.client.call("GET", this.path(`/tasks${query(options)}`));
  }

  /** @deprecated the live listing is `list`; to search history use `EdgeqClient.search({ queue })`. */
  search(options: PageOptions & { status?: Status } = {}): Promise<Page<Task>> {
    return this.list(options);
  }

  stats(): Promise<QueueStatistics> {
    return this.client.call("GET", this.path());
  }

  /** Changes settings: shards, defaults, retention, and flow control (`concurrency`, `startLimit`, `groupLimits`). */
  update(patch: QueueSettingsPatch): Promise<QueueInfo> {
    return this.client.call("PATCH", this.path(), patch);
  }

  /** Groups (tasks sharing a groupKey) with ready or running tasks. */
  async groups(): Promise<GroupDepth[]> {
    return (await this.client.call<{ items: GroupDepth[] }>("GET", this.path("/groups"))).items;
  }

  /** Cron schedules that enqueue a task on this queue. */
  readonly schedules = {
    /** Creates, or replaces the one with the same id. */
    put: (schedule: ScheduleCreate): Promise<Schedule> => this.client.call("POST", this.path("/schedules"), schedule),
    list: async (): Promise<Schedule[]> => (await this.client.call<{ items: Schedule[] }>("GET", this.path("/schedules"))).items,
    get: (id: string): Promise<Schedule> => this.client.call("GET", this.schedulePath(id)),
    remove: (id: string): Promise<void> => this.client.call("DELETE", this.schedulePath(id)),
    pause: (id: string): Promise<Schedule> => this.client.call("POST", this.schedulePath(id, "/pause")),
    resume: (id: string): Promise<Schedule> => this.client.call("POST", this.schedulePath(id, "/resume")),
    /** Enqueues the schedule's task now. */
    run: (id: string): Promise<Task> => this.client.call("POST", this.schedulePath(id, "/run")),
  };

  private schedulePath(id: string, rest = ""): string {
    return this.path(`/schedules/${encodeURIComponent(id)}${rest}`);
  }

  pause(): Promise<QueueInfo> {
    return this.client.call("POST", this.path("/pause"));
  }

  resume(): Promise<QueueInfo> {
    return this.client.call("POST", this.path("/resume"));
  }

  /** Cancels every pending and scheduled task; `done: false` while the shards cancel the rest in the background. */
  purge(): Promise<{ cancelled: number; done: boolean }> {
    return this.client.call("POST", this.path("/purge"));
  }

  /**
   * Makes every dead letter (failed task) of the queue pending again, attempts reset, pass by
   * pass; resolves with how many. Tasks that fail again while it runs are not retried again.
   */
  async retryDeadLetters(): Promise<number> {
    let retried = 0;
    let failedBefore: string | undefined;
    for (;;) {
      const pass = await this.client.call<{ retried: number; done: boolean; failedBefore: string }>(
        "POST",
        this.path("/dead-letters/retry"),
        failedBefore ? { failedBefore } : undefined,
      );
      retried += pass.retried;
      failedBefore = pass.failedBefore;
      if (pass.done || pass.retried === 0) return retried;
    }
  }
}

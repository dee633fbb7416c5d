/**
 * The shapes of edgeq's HTTP API, inferred from the zod schemas the server
 * validates with. The package build replaces this file's declarations with the
 * expanded types, so SDK users need neither zod nor the server's sources.
 */
import type { z } from "@hono/zod-openapi";
import type {
  KeySchema,
  KeyCreated,
  EnqueueBody,
  KeyCreateBody,
  LeaseSchema,
  ProblemSchema,
  QueueSchema,
  QueueStats,
  ScheduleBody,
  ScheduleSchema,
  GroupList,
  HeartbeatResults,
  ItemResults,
  SettingsPatch,
  SettingsSchema,
  TaskSchema,
  TimelineItem,
  LiveTaskSchema,
  WorkerSchema,
  Trends,
  Distributions,
  CacheStats,
  Performance,
  ReportBody,
  Definition,
} from "../schema/api";
import type { Status as ShardStatus } from "../schema/shard";

export type Status = ShardStatus;
export type Task = z.infer<typeof TaskSchema>;
export type Lease = z.infer<typeof LeaseSchema>;
export type EnqueueTask = z.input<typeof EnqueueBody>;
export type Problem = z.infer<typeof ProblemSchema>;
export type QueueInfo = z.infer<typeof QueueSchema>;
export type QueueStatistics = z.infer<typeof QueueStats>;
export type QueueSettings = z.infer<typeof SettingsSchema>;
export type QueueSettingsPatch = z.input<typeof SettingsPatch>;
export type WorkerInfo = z.infer<typeof WorkerSchema>;
export type ApiKey = z.infer<typeof KeySchema>;
export type CreatedApiKey = z.infer<typeof KeyCreated>;
export type ApiKeyCreate = z.input<typeof KeyCreateBody>;
export type Schedule = z.infer<typeof ScheduleSchema>;
export type ScheduleCreate = z.input<typeof ScheduleBody>;
export type GroupDepth = z.infer<typeof GroupList>["items"][number];
export type BatchResults = z.infer<typeof ItemResults>;
export type HeartbeatBatchResults = z.infer<typeof HeartbeatResults>;
export type TimelineEvent = z.infer<typeof TimelineItem>;

/** Filters of a history search (`GET /tasks`); lists match any of their values, `tag` every one. */
export type AnalyticsTrends = z.infer<typeof Trends>;
export type AnalyticsDistributions = z.infer<typeof Distributions>;
export type AnalyticsCacheStats = z.infer<typeof CacheStats>;
export type AnalyticsPerformance = z.infer<typeof Performance>;
/** A report as `POST /reports` takes it (docs/API.md, "Reports"). */
export type ReportRequest = z.input<typeof ReportBody>;
export type ReportDefinition = z.infer<typeof Definition>;
/** A time range for analytics (defaults: the last 24 hours). */
export type AnalyticsRange = { from?: Date | string; to?: Date | string; queue?: string };

export type SearchFilters = {
  /** full text over name and payload values: words, "a phrase", prefix*, AND / OR / NOT */
  q?: string;
  status?: Status | Status[];
  priority?: number | number[];
  band?: "high" | "medium" | "low" | ("high" | "medium" | "low")[];
  queue?: string | string[];
  workerId?: string;
  tag?: string | string[];
  createdFrom?: Date | string;
  createdTo?: Date | string;
  startedFrom?: Date | string;
  startedTo?: Date | string;
  finishedFrom?: Date | string;
  finishedTo?: Date | string;
  sort?: "created" | "-created" | "finished" | "-finished" | "priority" | "-priority";
  /** page size, 1–200 */
  limit?: number;
  /** start after this page (a `nextCursor`) */
  cursor?: string;
};

/** A task as live messages tell of it. */
export type LiveTask = z.infer<typeof LiveTaskSchema>;

/** A message of `GET /api/v1/live` (docs/API.md, "Live"); `seq` grows by one per message on a connection. */
export type LiveMessage =
  | {
      type: "snapshot";
      seq: number;
      at: string;
      queues: { name: string; counts: Partial<Record<Status, number>> }[];
      rates: { enqueued: number; completed: number; failed: number; seconds: number };
      workers: { active: number };
    }
  | {
      type: "delta";
      seq: number;
      at: string;
      queue: string;
      counts: Partial<Record<Status, number>>;
      changes: Partial<Record<Status, number>>;
    }
  | { type: "task"; seq: number; at: string; task: LiveTask }
  | { type: "subscribed" | "unsubscribed"; seq: number; queues: string[] | null; tasks: string[] }
  | { type: "error" | "behind"; seq: number; detail: string };

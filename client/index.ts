/**
 * `edgeq/client`: the types of edgeq's HTTP API, taken from the same zod
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
import type { z } from "@hono/zod-openapi";
import type {
  EnqueueBody,
  LeaseSchema,
  ProblemSchema,
  QueueSchema,
  QueueStats,
  SettingsPatch,
  SettingsSchema,
  TaskSchema,
} from "../schema/api";

export type Task = z.infer<typeof TaskSchema>;
export type Lease = z.infer<typeof LeaseSchema>;
export type EnqueueTask = z.input<typeof EnqueueBody>;
export type Problem = z.infer<typeof ProblemSchema>;
export type Queue = z.infer<typeof QueueSchema>;
export type QueueStatistics = z.infer<typeof QueueStats>;
export type QueueSettings = z.infer<typeof SettingsSchema>;
export type QueueSettingsPatch = z.input<typeof SettingsPatch>;
export type { Status } from "../schema/shard";

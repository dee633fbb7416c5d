import { z } from "@hono/zod-openapi";
import { STATUSES, type Status } from "./shard";

/** The wire contract of live metrics (docs/API.md, "Live"); see schema/api.ts. */

/** A task as live messages tell of it. */
export const LiveTaskSchema = z
  .object({
    id: z.string(),
    queue: z.string(),
    status: z.enum(STATUSES as [Status, ...Status[]]),
    attempts: z.number().int().optional(),
    progress: z.unknown().optional(),
    result: z.unknown().optional(),
    error: z.unknown().optional(),
  })
  .openapi("LiveTask");
export type LiveTask = z.infer<typeof LiveTaskSchema>;

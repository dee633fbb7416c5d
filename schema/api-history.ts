import { z } from "@hono/zod-openapi";
import { QueueName } from "./api-tasks";
import { BAND, STATUSES, type Band, type Status } from "./shard";

/** The wire contract of history: search, timelines and the tenant's history settings; see schema/api.ts. */

export const SEARCH_LIMIT = 200;
export const SORTS = ["created", "-created", "finished", "-finished", "priority", "-priority"] as const;
export type Sort = (typeof SORTS)[number];

/** Values of one list filter at most (D1 binds at most 100 parameters per statement). */
export const LIST_MAX = 20;

/** A query parameter given once, repeated, or comma-separated: a list of the distinct values, each checked. */
const listOf = <T extends z.ZodTypeAny>(item: T, description: string) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v, ctx) => {
      const values = (Array.isArray(v) ? v : [v])
        .flatMap((s) => s.split(","))
        .map((s) => s.trim())
        .filter((s) => s !== "");
      const out: z.infer<T>[] = [];
      for (const value of values) {
        const parsed = item.safeParse(value);
        if (parsed.success) out.push(parsed.data);
        else ctx.addIssue({ code: "custom", message: `${JSON.stringify(value)}: ${parsed.error.issues[0].message}` });
      }
      const distinct = [...new Set(out)];
      if (distinct.length > LIST_MAX) ctx.addIssue({ code: "custom", message: `at most ${LIST_MAX} values` });
      return distinct;
    })
    .openapi({ description: `${description}; comma-separated or repeated`, type: "string" });

/** An ISO-8601 time in a query, as ms since the epoch. */
export const time = z.iso
  .datetime({ offset: true })
  .transform((s) => Date.parse(s))
  .openapi({ description: "ISO-8601 time", example: "2026-11-29T12:00:00Z", type: "string" });

export const SearchQuery = z
  .object({
    q: z.string().min(1).max(500).optional().openapi({
      description: 'full text over the name and the payload\'s values (FTS5: words, "a phrase", prefix*, AND/OR/NOT)',
      example: '"ada@example.com"',
    }),
    status: listOf(z.enum(STATUSES as [Status, ...Status[]]), "one or more statuses").optional(),
    priority: listOf(z.coerce.number().int().min(1).max(10), "one or more priorities (1–10)").optional(),
    band: listOf(z.enum(Object.keys(BAND) as [Band, ...Band[]]), "one or more bands: high (8–10), medium (4–7), low (1–3)").optional(),
    queue: listOf(QueueName, "one or more queues").optional(),
    workerId: z.string().min(1).max(200).optional().openapi({ description: "the consumer that last ran the task" }),
    tag: listOf(z.string().min(1).max(100), "tasks carrying every one of these tags").optional(),
    createdFrom: time.optional(),
    createdTo: time.optional(),
    startedFrom: time.optional(),
    startedTo: time.optional(),
    finishedFrom: time.optional(),
    finishedTo: time.optional(),
    sort: z
      .enum(SORTS)
      .default("-created")
      .openapi({ description: "`created` (id order), `finished` (finished tasks only), `priority`; `-` for descending" }),
    limit: z.coerce.number().int().min(1).max(SEARCH_LIMIT).default(50),
    cursor: z.string().max(400).optional().openapi({ description: "`nextCursor` of the previous page (same filters and sort)" }),
  })
  .openapi("SearchQuery");
export type SearchFilters = z.infer<typeof SearchQuery>;

export const TimelineItem = z
  .object({
    type: z.string().openapi({
      description:
        "enqueued, promoted (a delayed task became ready), unblocked, dependency_resolved, child_added, child_finished, sealed, started, heartbeat, completed, retrying (a run failed; it will run again), failed, expired (a lease ran out), released, cancel_requested, cancelled, retried (by hand), purged",
    }),
    at: z.string().openapi({ description: "ISO-8601 time" }),
    status: z.string().optional().openapi({ description: "the status it left the task in" }),
    attempt: z.number().int().optional().openapi({ description: "which run this start is" }),
    workerId: z.string().optional(),
    progress: z.unknown().optional(),
    error: z.unknown().optional(),
    runAt: z.string().optional().openapi({ description: "when it will run next (retrying, released, scheduled)" }),
    expiresAt: z.string().optional().openapi({ description: "when the lease ends (started, heartbeat)" }),
    waitingOn: z.array(z.string()).optional(),
    cancelRequested: z.boolean().optional(),
  })
  .openapi("TimelineEvent");

export const Timeline = z.object({ items: z.array(TimelineItem), nextCursor: z.string().nullable() }).openapi("Timeline");

export const TimelineQuery = z.object({
  limit: z.coerce.number().int().min(1).max(SEARCH_LIMIT).default(100),
  cursor: z.string().max(100).optional(),
});

export const HistorySettings = z
  .object({
    tenant: z.string(),
    retentionDays: z.number().int().openapi({ description: "how long history keeps a finished task (default 30)" }),
  })
  .openapi("HistorySettings");

export const HistorySettingsBody = z
  .object({
    retentionDays: z
      .number()
      .int()
      .min(7)
      .max(3650)
      .nullable()
      .openapi({ description: "at least 7 (a queue's own retention, by default); null: back to the default (30)" }),
  })
  .strict()
  .openapi("HistorySettingsChange");

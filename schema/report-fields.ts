/**
 * What a report may hold and group by: the API's contract (schema/api-reports.ts)
 * and the dashboard's Reports page both take these lists from here, so they are
 * one list (this module imports nothing, so the page's bundle stays free of zod).
 */

/** Fields a report may hold, in the order they are documented (docs/API.md, "Reports"). */
export const REPORT_FIELDS = [
  "id",
  "queue",
  "name",
  "status",
  "priority",
  "band",
  "attempts",
  "maxAttempts",
  "workerId",
  "tags",
  "createdAt",
  "startedAt",
  "finishedAt",
  "waitMs",
  "runMs",
  "parentId",
  "groupKey",
  "idempotencyKey",
  "payload",
  "progress",
  "result",
  "error",
] as const;
export type ReportField = (typeof REPORT_FIELDS)[number];
/** What a report may group by. */
export const GROUP_BY = ["queue", "status", "name", "priority", "band", "workerId"] as const;

import { z } from "@hono/zod-openapi";
import { SearchQuery, SORTS } from "./api-history";
import { GROUP_BY, REPORT_FIELDS } from "./report-fields";

export { GROUP_BY, REPORT_FIELDS, type ReportField } from "./report-fields";

/** The wire contract of /reports; see schema/api.ts. The field and grouping lists live in schema/report-fields.ts. */

export const FORMATS = ["csv", "json", "jsonl"] as const;
/** Rows a report holds at most. */
export const REPORT_ROWS_MAX = 1_000_000;

/** Search filters as JSON: numbers and arrays are taken as the query string would give them. */
const asQuery = (v: unknown) =>
  v !== null && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, Array.isArray(x) ? x.map(String) : typeof x === "number" ? String(x) : x]))
    : v;
export const ReportFilters = z.preprocess(asQuery, SearchQuery.omit({ sort: true, limit: true, cursor: true }).strict()).openapi({
  description:
    "the search filters of `GET /tasks` (q, status, priority, band, queue, workerId, tag, created/started/finished ranges), as JSON",
});

export const ReportBody = z
  .object({
    fields: z
      .array(z.string())
      .min(1)
      .max(REPORT_FIELDS.length)
      .superRefine((fields, ctx) => {
        fields.forEach((f, i) => {
          if (!(REPORT_FIELDS as readonly string[]).includes(f))
            ctx.addIssue({
              code: "custom",
              path: [i],
              message: `unknown field ${JSON.stringify(f)}; the fields are ${REPORT_FIELDS.join(", ")}`,
            });
        });
        if (new Set(fields).size !== fields.length) ctx.addIssue({ code: "custom", message: "a field is named twice" });
      })
      .optional()
      .openapi({ description: `the columns, in order: ${REPORT_FIELDS.join(", ")}; required unless \`groupBy\` is given` }),
    filters: ReportFilters.optional(),
    groupBy: z
      .enum(GROUP_BY)
      .optional()
      .openapi({ description: "one row per group: its key, count, and wait and run time percentiles (`fields` is then ignored)" }),
    sort: z.enum(SORTS).default("created"),
    format: z.enum(FORMATS).default("csv"),
    limit: z.number().int().min(1).max(REPORT_ROWS_MAX).default(REPORT_ROWS_MAX).openapi({ description: "rows at most" }),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (!r.fields && !r.groupBy)
      ctx.addIssue({ code: "custom", path: ["fields"], message: "name the columns (fields), or group the report (groupBy)" });
  })
  .openapi("Report");
export type ReportRequest = z.infer<typeof ReportBody>;

export const DefinitionBody = z
  .object({ name: z.string().min(1).max(100), report: ReportBody })
  .strict()
  .openapi("ReportDefinitionCreate");

export const Definition = z
  .object({
    id: z.string(),
    name: z.string(),
    report: z.unknown().openapi({ description: "the report's body, as `POST /reports` takes it" }),
    createdAt: z.string(),
  })
  .openapi("ReportDefinition");
export const DefinitionList = z.object({ items: z.array(Definition) }).openapi("ReportDefinitionList");

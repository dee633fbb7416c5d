import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { and, asc, count, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { QueueError } from "../../durable/core/errors";
import { reportDefinitions } from "../../schema/analytics";
import { Definition, DefinitionBody, DefinitionList, FORMATS, REPORT_FIELDS, ReportBody } from "../../schema/api-reports";
import type { AppEnv } from "../env";
import { randomHex } from "../keys";
import { permit } from "../middleware/auth";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { CONTENT_TYPE, report } from "../reports";
import { iso } from "../view";

/** The report builder (worker/reports.ts) and saved report definitions (D1 `report_definitions`). */
export const reports = new OpenAPIHono<AppEnv>();

/** Saved definitions per tenant at most. */
const DEFINITIONS_MAX = 100;

reports.openapi(
  createRoute({
    method: "post",
    path: "/reports",
    tags: ["reports"],
    summary: "Export tasks from history as CSV, JSON or JSON lines (streamed)",
    description: `Chosen \`fields\` (${REPORT_FIELDS.join(", ")}) of the tasks the search \`filters\` match, in \`sort\` order; or with \`groupBy\`, one row per group with its count and wait and run time percentiles (within 5 % + 1 ms). Streamed as D1 is read: memory stays flat and the first rows arrive before the last page is read. CSV is RFC 4180; text cells starting with =, +, -, @ are prefixed with \`'\` against formula injection. A report that cannot finish ends in a broken stream, never a short file.`,
    middleware: [permit("read")] as const,
    request: { body: jsonBody(ReportBody) },
    responses: {
      200: {
        description: "the report",
        content: Object.fromEntries(FORMATS.map((f) => [CONTENT_TYPE[f].split(";")[0], { schema: z.string() }])),
      },
      ...errors(400, 415),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const stream = await report(c.env.DB, c.var.tenant, body);
    const name = `report-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}.${body.format}`;
    return new Response(stream, {
      status: 200,
      headers: {
        "content-type": CONTENT_TYPE[body.format],
        "content-disposition": `attachment; filename="${name}"`,
        "cache-control": "no-store",
      },
    }) as never;
  },
);

const definitionView = (row: typeof reportDefinitions.$inferSelect) => ({
  id: row.id,
  name: row.name,
  report: JSON.parse(row.report) as unknown,
  createdAt: iso(row.createdAt)!,
});

reports.openapi(
  createRoute({
    method: "get",
    path: "/reports/definitions",
    tags: ["reports"],
    summary: "Saved report definitions",
    middleware: [permit("read")] as const,
    responses: { 200: jsonResponse(DefinitionList, "the tenant's saved reports, oldest first"), ...errors() },
  }),
  async (c) => {
    const rows = await drizzle(c.env.DB)
      .select()
      .from(reportDefinitions)
      .where(eq(reportDefinitions.tenant, c.var.tenant))
      .orderBy(asc(reportDefinitions.createdAt), asc(reportDefinitions.id));
    return c.json({ items: rows.map(definitionView) }, 200);
  },
);

reports.openapi(
  createRoute({
    method: "post",
    path: "/reports/definitions",
    tags: ["reports"],
    summary: "Save a report definition",
    description: `\`report\` is checked as \`POST /reports\` checks it. At most ${DEFINITIONS_MAX} per tenant.`,
    middleware: [permit("manage")] as const,
    request: { body: jsonBody(DefinitionBody) },
    responses: { 201: jsonResponse(Definition, "saved"), ...errors(400, 409, 415) },
  }),
  async (c) => {
    const { name } = c.req.valid("json");
    // Kept as sent (checked above): it is posted to /reports again as it is.
    const { report: body } = (await c.req.json()) as { report: unknown };
    const db = drizzle(c.env.DB);
    const [{ n }] = await db.select({ n: count() }).from(reportDefinitions).where(eq(reportDefinitions.tenant, c.var.tenant));
    if (n >= DEFINITIONS_MAX)
      throw new QueueError("invalid_state", `A tenant keeps at most ${DEFINITIONS_MAX} report definitions: delete one first.`);
    const row = { tenant: c.var.tenant, id: `rd_${randomHex(8)}`, name, report: JSON.stringify(body), createdAt: Date.now() };
    await db.insert(reportDefinitions).values(row);
    return c.json(definitionView(row), 201);
  },
);

reports.openapi(
  createRoute({
    method: "delete",
    path: "/reports/definitions/{id}",
    tags: ["reports"],
    summary: "Delete a saved report definition",
    middleware: [permit("manage")] as const,
    request: { params: z.object({ id: z.string().regex(/^rd_[0-9a-f]{16}$/, "A report definition id is `rd_` and 16 hex digits.") }) },
    responses: { 204: { description: "deleted" }, ...errors(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const gone = await drizzle(c.env.DB)
      .delete(reportDefinitions)
      .where(and(eq(reportDefinitions.tenant, c.var.tenant), eq(reportDefinitions.id, id)))
      .returning({ id: reportDefinitions.id });
    if (gone.length === 0) throw new QueueError("not_found", `Report definition ${id} does not exist.`);
    return c.body(null, 204);
  },
);

import { addToBin, binOf, spread } from "../durable/core/bins";
import type { SearchFilters } from "../schema/api-history";
import type { ReportField, ReportRequest } from "../schema/api-reports";
import { bandOf } from "../schema/shard";
import { historySelect, type HistoryRecord } from "./history-view";
import { searchPlan, searchRows } from "./search";
import { iso, json } from "./view";

/**
 * The report builder: history rows matching the search filters, read from D1
 * a page at a time (keyset, as search pages) and written out as they are read,
 * so memory stays flat however many rows there are and the first bytes leave
 * before the last page is read. The response stream pulls the next page only
 * when the client has taken the last one.
 *
 * CSV follows RFC 4180 (CRLF, quotes doubled, a cell with a comma, quote or
 * line break quoted); a text cell that a spreadsheet would run as a formula
 * (starting with =, +, -, @, tab or CR) gets a leading `'`.
 */

/** Rows per D1 page: the first page, the most, and the least (pages grow while small, shrink when large). */
const PAGE_FIRST = 500;
const PAGE_MAX = 5_000;
const PAGE_MIN = 50;
/** Bytes of output per page aimed at: under it the next page doubles, over four times it halves. */
const PAGE_BYTES = 1 << 20;
/** D1 statements one report may run (a Worker invocation may make 1,000 queries on the paid plan; a batch counts each). */
const QUERIES_MAX = 900;
/** Groups a grouped report keeps apart; the rest are counted under "(other)". */
const GROUPS_MAX = 10_000;

const VALUE: Record<ReportField, (r: HistoryRecord) => unknown> = {
  id: (r) => r.id,
  queue: (r) => r.queue,
  name: (r) => r.name,
  status: (r) => r.status,
  priority: (r) => r.priority,
  band: (r) => bandOf(r.priority),
  attempts: (r) => r.attempts,
  maxAttempts: (r) => r.maxAttempts,
  workerId: (r) => r.workerId,
  tags: (r) => json(r.tags) ?? [],
  createdAt: (r) => iso(r.createdAt),
  startedAt: (r) => iso(r.startedAt),
  finishedAt: (r) => iso(r.finishedAt),
  waitMs: (r) => r.waitMs,
  runMs: (r) => r.runMs,
  parentId: (r) => r.parentId,
  groupKey: (r) => r.groupKey,
  idempotencyKey: (r) => r.idempotencyKey,
  payload: (r) => json(r.payload),
  progress: (r) => json(r.progress),
  result: (r) => json(r.result),
  error: (r) => json(r.error),
};

/** Fields whose values are JSON: a CSV cell holds their JSON text, so the string "123" and the number 123 stay apart. */
const JSON_FIELDS = new Set<ReportField>(["tags", "payload", "progress", "result", "error"]);

// csvCell: any value. output: one RFC 4180 cell; objects as JSON; formula-looking text neutralised.
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  let text = typeof value === "object" ? JSON.stringify(value) : String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const csvLine = (cells: unknown[]) => `${cells.map(csvCell).join(",")}\r\n`;

/** How one format writes a report: what comes first, each row, between rows, last. */
interface Writer {
  head(columns: string[]): string;
  row(record: Record<string, unknown>, columns: string[], first: boolean): string;
  tail(): string;
}
const WRITERS: Record<ReportRequest["format"], Writer> = {
  csv: { head: (columns) => csvLine(columns), row: (r, columns) => csvLine(columns.map((c) => r[c])), tail: () => "" },
  json: { head: () => "[", row: (r, _c, first) => `${first ? "" : ","}\n${JSON.stringify(r)}`, tail: () => "\n]\n" },
  jsonl: { head: () => "", row: (r) => `${JSON.stringify(r)}\n`, tail: () => "" },
};

export const CONTENT_TYPE: Record<ReportRequest["format"], string> = {
  csv: "text/csv; charset=utf-8",
  json: "application/json",
  jsonl: "application/x-ndjson",
};

/** Per group: how many, and their wait and run times binned. */
interface Group {
  count: number;
  wait: Map<number, number>;
  run: Map<number, number>;
}

function groupRows(groups: Map<string, Group>, by: string) {
  return [...groups]
    .sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]))
    .map(([key, g]) => ({ [by]: key, count: g.count, waitMs: spread(g.wait), runMs: spread(g.run) }));
}

const flatGroup = (r: Record<string, unknown>, by: string) => {
  const w = r.waitMs as Record<string, number | null>;
  const u = r.runMs as Record<string, number | null>;
  return { [by]: r[by], count: r.count, waitP50: w.p50, waitP95: w.p95, waitP99: w.p99, runP50: u.p50, runP95: u.p95, runP99: u.p99 };
};

// report: D1, tenant, a validated report. output: the report as a stream, its first page already read
// (so a bad query is an error before any byte is sent). errors: validation_failed (bad `q`).
export async function report(db: D1Database, tenant: string, r: ReportRequest): Promise<ReadableStream<Uint8Array>> {
  const encoder = new TextEncoder();
  const writer = WRITERS[r.format];
  const filters = { ...(r.filters ?? {}), sort: r.sort } as SearchFilters;
  // Only the columns the report shows (and the sort keys paging needs): a wide payload is not read for `id,status`.
  const wanted = r.groupBy
    ? [r.groupBy === "band" ? "priority" : r.groupBy, "waitMs", "runMs"]
    : r.fields!.map((f) => (f === "band" ? "priority" : f));
  const select = historySelect(["id", "priority", "finishedAt", ...wanted]);
  // A status filter in creation order reads one index range per status and priority, each up to a page.
  const ranges = searchPlan(tenant, { ...filters, limit: 1 }, select).statements.length;
  let size = PAGE_FIRST;
  const read = (cursor: string | undefined) =>
    searchRows(db, tenant, { ...filters, limit: Math.min(r.limit - written, size), cursor }, select);
  let written = 0;
  let queries = ranges;
  let page: Awaited<ReturnType<typeof searchRows>> | null = await read(undefined);
  const groups = new Map<string, Group>();
  const columns: string[] = r.groupBy
    ? r.format === "csv"
      ? Object.keys(flatGroup({ waitMs: {}, runMs: {} }, r.groupBy))
      : []
    : r.fields!;
  let first = true;
  const cell = (f: ReportField, row: HistoryRecord) => {
    const v = VALUE[f](row);
    return r.format === "csv" && JSON_FIELDS.has(f) && v !== null ? JSON.stringify(v) : v;
  };

  const rowsOf = (rows: HistoryRecord[]): string => {
    let out = "";
    for (const row of rows) {
      if (r.groupBy) {
        let key = String(VALUE[r.groupBy](row) ?? "");
        if (!groups.has(key) && groups.size >= GROUPS_MAX) key = "(other)";
        const g = groups.get(key) ?? groups.set(key, { count: 0, wait: new Map(), run: new Map() }).get(key)!;
        g.count++;
        if (row.waitMs !== null && row.runMs !== null) {
          addToBin(g.wait, binOf(row.waitMs));
          addToBin(g.run, binOf(row.runMs));
        }
      } else {
        out += writer.row(Object.fromEntries(r.fields!.map((f) => [f, cell(f as ReportField, row)])), columns, first);
        first = false;
      }
    }
    written += rows.length;
    return out;
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      const head = writer.head(columns);
      if (head) controller.enqueue(encoder.encode(head));
    },
    async pull(controller) {
      if (page === null) return;
      const text = rowsOf(page.rows);
      if (text) controller.enqueue(encoder.encode(text));
      const cursor = page.nextCursor;
      if (cursor === null || written >= r.limit) {
        page = null;
        let tail = "";
        for (const g of r.groupBy ? groupRows(groups, r.groupBy) : []) {
          tail += writer.row(r.format === "csv" ? flatGroup(g, r.groupBy!) : g, columns, first);
          first = false;
        }
        controller.enqueue(encoder.encode(tail + writer.tail()));
        controller.close();
        return;
      }
      // A report that cannot finish within its D1 queries ends in an error, never as a short file that looks whole.
      queries += ranges;
      if (queries > QUERIES_MAX) throw new Error(`The report needs more than ${QUERIES_MAX} D1 queries: narrow the filters.`);
      // Pages grow while what they read is small (each range reads up to a page), and shrink when it is large.
      const bytes = Math.max(text.length, page.rows.length * 64) * ranges;
      if (bytes < PAGE_BYTES) size = Math.min(PAGE_MAX, size * 2);
      else if (bytes > 4 * PAGE_BYTES) size = Math.max(PAGE_MIN, Math.floor(size / 2));
      page = await read(cursor);
    },
  });
}

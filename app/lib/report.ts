/**
 * The Reports page's builder and the URL, both ways, and what the page makes
 * of the API's answers (pure, tested without a browser): a report is shared by
 * its address, `/reports?fields=id,status&status=failed&groupBy=queue`. The
 * filters are the Tasks page's (same names in the URL), so a search there
 * opens here as the same rows.
 */
import { GROUP_BY, REPORT_FIELDS } from "../../schema/report-fields";
import {
  apiFilters,
  DEFAULTS as FILTERS,
  fromSearch as filtersOf,
  SORTS,
  STATUSES,
  toSearch as filterSearch,
  type Filters,
} from "./filters";

/** The fields `POST /reports` takes, in its documented order, and what it may group by: the API's own lists. */
export const FIELDS = REPORT_FIELDS;
export type Field = (typeof FIELDS)[number];
export { GROUP_BY };
export type GroupBy = (typeof GROUP_BY)[number];
export const FORMATS = ["csv", "json"] as const;
export type Format = (typeof FORMATS)[number];

/** The columns a new report starts with: what a spreadsheet of tasks usually needs, without the large JSON ones. */
export const DEFAULT_FIELDS: Field[] = [
  "id",
  "queue",
  "name",
  "status",
  "priority",
  "attempts",
  "workerId",
  "createdAt",
  "finishedAt",
  "waitMs",
  "runMs",
];
/** Rows (or groups) the preview shows. */
export const PREVIEW_ROWS = 20;

/** The builder: the Tasks page's filters (no cursor), the columns, an optional grouping, the file's format. */
export interface Report extends Omit<Filters, "cursor"> {
  fields: Field[];
  groupBy: GroupBy | "";
  format: Format;
}

export const DEFAULT_REPORT: Report = { ...withoutCursor(FILTERS), fields: DEFAULT_FIELDS, groupBy: "", format: "csv" };

function withoutCursor(f: Filters): Omit<Filters, "cursor"> {
  const { cursor: _, ...rest } = f;
  return { ...rest, status: [...rest.status] };
}

const isOf =
  <T extends string>(list: readonly T[]) =>
  (v: unknown): v is T =>
    typeof v === "string" && (list as readonly string[]).includes(v);
const isField = isOf(FIELDS);
const isGroup = isOf(GROUP_BY);
const isFormat = isOf(FORMATS);

/** Known fields, each once, in the documented order (the columns' order). */
export const ordered = (fields: readonly string[]): Field[] => FIELDS.filter((f) => fields.includes(f));

export function fromSearch(params: URLSearchParams): Report {
  const listed = params.getAll("fields").flatMap((s) => s.split(","));
  const fields = ordered(listed);
  const groupBy = params.get("groupBy");
  const format = params.get("format");
  return {
    ...withoutCursor(filtersOf(params)),
    fields: fields.length > 0 ? fields : [...DEFAULT_FIELDS],
    groupBy: isGroup(groupBy) ? groupBy : "",
    format: isFormat(format) ? format : "csv",
  };
}

/** The canonical query string of a report: the fields always (a shared link keeps its columns), then the filters as the Tasks page writes them, then grouping and format when not the defaults. */
export function toSearch(r: Report): string {
  const p = new URLSearchParams();
  p.set("fields", ordered(r.fields).join(","));
  for (const [k, v] of new URLSearchParams(filterSearch({ ...r, cursor: "" }).slice(1))) p.append(k, v);
  if (r.groupBy) p.set("groupBy", r.groupBy);
  if (r.format !== "csv") p.set("format", r.format);
  return `?${p}`;
}

/** Why the API would refuse the builder as it is, or null. */
export function problemOf(r: Report): string | null {
  if (!r.groupBy && r.fields.length === 0) return "Pick at least one field.";
  return null;
}

/** The body of `POST /reports` for a report; `format` and `limit` for a preview. */
export function toRequest(r: Report, options: { format?: Format; limit?: number } = {}) {
  // A grouped report ignores `fields`, but the API still wants at least one.
  const fields = ordered(r.fields);
  return {
    fields: fields.length > 0 ? fields : (["id"] as Field[]),
    filters: apiFilters({ ...r, cursor: "" }),
    ...(r.groupBy ? { groupBy: r.groupBy } : {}),
    sort: r.sort,
    format: options.format ?? r.format,
    ...(options.limit ? { limit: options.limit } : {}),
  };
}

/** An ISO time as a datetime-local value in the browser's time zone (seconds only when there are some). */
export function localInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const two = (n: number) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  const seconds = d.getSeconds() || d.getMilliseconds() ? `:${two(d.getSeconds())}` : "";
  return `${day}T${two(d.getHours())}:${two(d.getMinutes())}${seconds}`;
}

const listText = (v: unknown) => (Array.isArray(v) ? v.map(String).join(",") : v === undefined || v === null ? "" : String(v));

/**
 * A saved definition's body (as `POST /reports` took it) as the builder, and
 * what of it the builder cannot show (it is left out when the report is used
 * from here): filters other than the Tasks page's, a limit, a JSON-lines format.
 */
export function fromRequest(body: unknown): { report: Report; dropped: string[] } {
  const b = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const filters = (b.filters && typeof b.filters === "object" ? b.filters : {}) as Record<string, unknown>;
  const dropped: string[] = [];
  const fields = ordered(Array.isArray(b.fields) ? b.fields.filter(isField) : []);
  const report: Report = {
    ...DEFAULT_REPORT,
    fields: fields.length > 0 ? fields : [...DEFAULT_FIELDS],
    groupBy: isGroup(b.groupBy) ? b.groupBy : "",
    format: isFormat(b.format) ? b.format : "csv",
    sort: isOf(SORTS)(b.sort) ? b.sort : "created",
    status: [],
  };
  if (b.format !== undefined && !isFormat(b.format)) dropped.push(`format ${String(b.format)}`);
  if (b.limit !== undefined) dropped.push(`limit ${String(b.limit)}`);
  for (const [k, v] of Object.entries(filters)) {
    if (k === "q" || k === "workerId") report[k] = String(v ?? "");
    else if (k === "queue" || k === "tag" || k === "band" || k === "priority") report[k] = listText(v);
    else if (k === "status") report.status = listText(v).split(",").filter(isOf(STATUSES));
    else if (k === "createdFrom" || k === "createdTo") report[k] = localInput(String(v));
    else dropped.push(`filter ${k}`);
  }
  return { report, dropped };
}

/** What the page shows of a report's JSON answer: its columns and rows of text, as the file has them. */
export interface Table {
  columns: string[];
  rows: string[][];
}

const cellText = (v: unknown) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
const PERCENTILES = ["p50", "p95", "p99"] as const;

/** Rows of a report's JSON (`format: "json"`) as a table; a group's percentiles flattened as the CSV has them (`waitP50` … `runP99`). */
export function tableOf(rows: Record<string, unknown>[], r: Pick<Report, "fields" | "groupBy">): Table {
  if (!r.groupBy) {
    const columns = ordered(r.fields);
    return { columns, rows: rows.map((row) => columns.map((c) => cellText(row[c]))) };
  }
  const times = ["wait", "run"] as const;
  const columns = [r.groupBy, "count", ...times.flatMap((t) => PERCENTILES.map((p) => `${t}P${p.slice(1)}`))];
  return {
    columns,
    rows: rows.map((row) => [
      cellText(row[r.groupBy]),
      cellText(row.count),
      ...times.flatMap((t) => PERCENTILES.map((p) => cellText((row[`${t}Ms`] as Record<string, unknown> | undefined)?.[p]))),
    ]),
  };
}

/**
 * Counts a report's rows while its bytes arrive (no decoding: a newline and a
 * quote are single bytes in UTF-8). CSV: one line per row after the header,
 * a line break inside a quoted cell not counted. JSON: the API writes `[`,
 * then each row after a newline, then `\n]\n`.
 */
export function rowCounter(format: Format) {
  let lines = 0;
  let quoted = false;
  return {
    add(chunk: Uint8Array): void {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b === 0x22 && format === "csv") quoted = !quoted;
        else if (b === 0x0a && !quoted) lines++;
      }
    },
    /** rows so far; `done` once the whole file is read */
    rows(done = false): number {
      return Math.max(0, format === "csv" ? lines - 1 : done ? lines - 2 : lines);
    },
  };
}

/** The downloaded file's name: `edgeq-report-2026-11-30.csv` (the local date). */
export function fileName(format: Format, now: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `edgeq-report-${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}.${format}`;
}

export const MEDIA_TYPE: Record<Format, string> = { csv: "text/csv;charset=utf-8", json: "application/json" };

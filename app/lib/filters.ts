/**
 * The Tasks page's filters and the URL, both ways (pure, tested without a
 * browser): a view is shared by its address, `/tasks?q=…&status=…`.
 */

export const SORTS = ["-created", "created", "-finished", "finished", "-priority", "priority"] as const;
export const STATUSES = ["pending", "scheduled", "blocked", "running", "completed", "failed", "cancelled"] as const;

export interface Filters {
  q: string;
  status: string[];
  queue: string;
  workerId: string;
  tag: string;
  band: string;
  /** one or more priorities, "8" or "8,9,10" */
  priority: string;
  createdFrom: string;
  createdTo: string;
  sort: (typeof SORTS)[number];
  cursor: string;
}

export const DEFAULTS: Filters = {
  q: "",
  status: [],
  queue: "",
  workerId: "",
  tag: "",
  band: "",
  priority: "",
  createdFrom: "",
  createdTo: "",
  sort: "-created",
  cursor: "",
};

const TEXT = ["q", "queue", "workerId", "tag", "band", "priority", "createdFrom", "createdTo", "cursor"] as const;

export function fromSearch(params: URLSearchParams): Filters {
  const f: Filters = { ...DEFAULTS, status: [] };
  for (const k of TEXT) f[k] = params.get(k) ?? "";
  f.status = params
    .getAll("status")
    .flatMap((s) => s.split(","))
    .filter((s) => (STATUSES as readonly string[]).includes(s));
  const sort = params.get("sort");
  f.sort = (SORTS as readonly string[]).includes(sort ?? "") ? (sort as Filters["sort"]) : DEFAULTS.sort;
  return f;
}

/** The canonical query string of a view: defaults and empty fields left out, statuses in one list. */
export function toSearch(f: Filters): string {
  const p = new URLSearchParams();
  for (const k of TEXT) if (f[k].trim() !== "") p.set(k, f[k].trim());
  if (f.status.length > 0) p.set("status", f.status.join(","));
  if (f.sort !== DEFAULTS.sort) p.set("sort", f.sort);
  const s = p.toString();
  return s === "" ? "" : `?${s}`;
}

/** The API's filters for a view, as `GET /tasks` and `POST /reports` take them: trimmed, empty ones left out, dates as ISO-8601. */
export function apiFilters(f: Filters): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of ["q", "queue", "workerId", "tag", "band", "priority"] as const)
    if (f[k].trim() !== "") out[k] = f[k].trim().replace(/\s*,\s*/g, ",");
  if (f.status.length > 0) out.status = [...f.status];
  for (const k of ["createdFrom", "createdTo"] as const) {
    const t = f[k] ? Date.parse(f[k]) : NaN; // a datetime-local value is the browser's local time
    if (!Number.isNaN(t)) out[k] = new Date(t).toISOString();
  }
  return out;
}

/** The API's query for a view (`GET /api/v1/tasks`): dates as ISO-8601, a page of 50. */
export function apiQuery(f: Filters): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(apiFilters(f))) p.set(k, Array.isArray(v) ? v.join(",") : v);
  if (f.sort !== DEFAULTS.sort) p.set("sort", f.sort);
  if (f.cursor.trim() !== "") p.set("cursor", f.cursor.trim());
  p.set("limit", "50");
  return `?${p}`;
}

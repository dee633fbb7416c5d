import type { AnalyticsTrends } from "../../client/types";
import type { Bucket } from "./format";
import { STATUSES } from "./filters";

/**
 * The Analytics page's view and the data its charts draw (pure, tested
 * without a browser). The URL holds the view, so it can be shared and the
 * back button goes to the previous one:
 * `/analytics?tab=trends&range=24h&bucket=hour&queue=email`.
 */

export const TABS = ["trends", "distributions", "performance"] as const;
export type Tab = (typeof TABS)[number];

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

export const RANGES = { "1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY } as const;
export type Range = keyof typeof RANGES;
export const RANGE_LABELS: Record<Range, string> = {
  "1h": "Last hour",
  "24h": "Last 24 hours",
  "7d": "Last 7 days",
  "30d": "Last 30 days",
};

export const BUCKET_SIZES: Record<Bucket, number> = { minute: MINUTE, hour: HOUR, day: DAY };
/** Buckets one trend may span (the API's limit). */
export const BUCKETS_MAX = 1_500;

/**
 * The buckets a range may be drawn in: the API answers at most 1,500, and
 * rounds both ends out to whole buckets (one more), so minutes go up to a day.
 */
export function bucketsFor(range: Range): Bucket[] {
  return (["minute", "hour", "day"] as const).filter(
    (b) => RANGES[range] / BUCKET_SIZES[b] + 1 <= BUCKETS_MAX && RANGES[range] / BUCKET_SIZES[b] >= 1,
  );
}

const DEFAULT_BUCKET: Record<Range, Bucket> = { "1h": "minute", "24h": "hour", "7d": "hour", "30d": "day" };
export const defaultBucket = (range: Range): Bucket => DEFAULT_BUCKET[range];

export interface View {
  tab: Tab;
  range: Range;
  bucket: Bucket;
  /** one queue, or "" for all */
  queue: string;
}

export const DEFAULT_VIEW: View = { tab: "trends", range: "24h", bucket: "hour", queue: "" };

const oneOf = <T extends string>(list: readonly T[], v: string | null, fallback: T): T =>
  (list as readonly string[]).includes(v ?? "") ? (v as T) : fallback;

/** The view a URL asks for; what it does not know falls back to the defaults, a bucket the range cannot take to the range's. */
export function fromSearch(params: URLSearchParams): View {
  const tab = oneOf(TABS, params.get("tab"), DEFAULT_VIEW.tab);
  const range = oneOf(Object.keys(RANGES) as Range[], params.get("range"), DEFAULT_VIEW.range);
  const bucket = oneOf(bucketsFor(range), params.get("bucket"), defaultBucket(range));
  return { tab, range, bucket, queue: (params.get("queue") ?? "").trim() };
}

/** The canonical query string of a view: every control, the queue only when one is chosen. */
export function toSearch(v: View): string {
  const p = new URLSearchParams({ tab: v.tab, range: v.range, bucket: v.bucket });
  if (v.queue.trim() !== "") p.set("queue", v.queue.trim());
  return `?${p}`;
}

/** A view with a new range: its bucket becomes the range's default. */
export const withRange = (v: View, range: Range): View => ({ ...v, range, bucket: defaultBucket(range) });

const apiQuery = (fields: Record<string, string>, queue: string) => {
  const p = new URLSearchParams(fields);
  if (queue !== "") p.set("queue", queue);
  return `?${p}`;
};

/** The API paths of a view, its range ending `now`. */
export const trendsPath = (v: View, now: number) =>
  `/analytics/trends${apiQuery({ from: new Date(now - RANGES[v.range]).toISOString(), bucket: v.bucket }, v.queue)}`;
export const distributionsPath = (v: View, now: number) =>
  `/analytics/distributions${apiQuery({ from: new Date(now - RANGES[v.range]).toISOString() }, v.queue)}`;
export const performancePath = (v: View) => `/analytics/performance${apiQuery({}, v.queue)}`;

type TrendItem = AnalyticsTrends["items"][number];

export interface Point {
  /** ms */
  x: number;
  /** null: nothing to draw here (a gap in the line) */
  y: number | null;
}

export interface Series {
  key: string;
  label: string;
  /** a CSS colour */
  color: string;
  /** an SVG stroke-dasharray, so lines differ by more than colour */
  dash?: string;
  values: Point[];
}

const at = (item: TrendItem) => Date.parse(item.at);

/** Enqueued, completed and failed per bucket. */
export function countSeries(items: TrendItem[]): Series[] {
  const series = (key: "enqueued" | "completed" | "failed", label: string, color: string, dash?: string): Series => ({
    key,
    label,
    color,
    dash,
    values: items.map((i) => ({ x: at(i), y: i[key] })),
  });
  return [
    series("enqueued", "Enqueued", "var(--accent)"),
    series("completed", "Completed", "var(--good)"),
    series("failed", "Failed", "var(--bad)", "6 3"),
  ];
}

export const PERCENTILES = [
  ["p50", "p50", undefined],
  ["p95", "p95", "6 3"],
  ["p99", "p99", "2 3"],
] as const;

/** p50, p95 and p99 of wait or run time per bucket; a bucket where nothing finished is a gap. */
export function latencySeries(items: TrendItem[], field: "waitMs" | "runMs", color: string): Series[] {
  return PERCENTILES.map(([key, label, dash]) => ({ key, label, color, dash, values: items.map((i) => ({ x: at(i), y: i[field][key] })) }));
}

export interface Totals {
  enqueued: number;
  completed: number;
  failed: number;
  /** completed / (completed + failed); null when neither */
  completionRate: number | null;
}

export function totals(items: TrendItem[]): Totals {
  const t = { enqueued: 0, completed: 0, failed: 0 };
  for (const i of items) {
    t.enqueued += i.enqueued;
    t.completed += i.completed;
    t.failed += i.failed;
  }
  const finished = t.completed + t.failed;
  return { ...t, completionRate: finished === 0 ? null : t.completed / finished };
}

/** Whether a bucket has anything to show (the table leaves out the empty ones). */
export const active = (i: TrendItem) => i.enqueued + i.completed + i.failed > 0;

/**
 * An SVG path through the points, in pixels: a run of points is one line, a
 * gap (null) starts the next. `dots` are the points with no neighbour to draw a
 * line to, which a path alone would not show.
 */
export function linePath(points: Point[], xOf: (p: Point) => number, yOf: (p: Point) => number): { d: string; dots: Point[] } {
  let d = "";
  const dots: Point[] = [];
  points.forEach((p, i) => {
    if (p.y === null) return;
    const first = i === 0 || points[i - 1].y === null;
    const last = i === points.length - 1 || points[i + 1].y === null;
    if (first && last) dots.push(p);
    d += `${first ? "M" : "L"}${round(xOf(p))},${round(yOf(p))}`;
  });
  return { d, dots };
}

const round = (v: number) => Math.round(v * 10) / 10;

/** The largest value of the series, at least 1 (so an empty chart still has an axis). */
export function maxOf(series: Series[]): number {
  let max = 1;
  for (const s of series) for (const p of s.values) if (p.y !== null && p.y > max) max = p.y;
  return max;
}

/** Time ticks that fall on whole buckets (a minute chart has no tick at 14:05:30), at most `count`. */
export function bucketTicks(ticks: Date[] | number[], bucket: Bucket): number[] {
  const whole = (t: number) => (bucket === "hour" ? new Date(t).getMinutes() === 0 && t % MINUTE === 0 : t % BUCKET_SIZES[bucket] === 0);
  return ticks.map(Number).filter(whole);
}

/** How many ticks fit in a width, one per `gap` px, at least two. */
export const tickCount = (width: number, gap = 90) => Math.max(2, Math.floor(width / gap));

export interface Bar {
  key: string;
  count: number;
}

const OTHER = "(other)";
const ORDERS: Partial<Record<string, readonly string[]>> = { status: STATUSES, band: ["high", "medium", "low"] };

/**
 * A field's counts as bars: statuses and bands in their own order, priorities
 * from highest, the rest largest first. Past `limit` bars the smallest are
 * summed under "(other)", with what the API already summed there.
 */
export function bars(counts: Record<string, number>, field: string, limit = 12): Bar[] {
  const order = ORDERS[field];
  const rank = (key: string) => (order!.includes(key) ? order!.indexOf(key) : order!.length);
  const all = Object.entries(counts)
    .filter(([key, count]) => key !== OTHER && count > 0)
    .map(([key, count]) => ({ key, count }));
  if (order) all.sort((a, b) => rank(a.key) - rank(b.key) || a.key.localeCompare(b.key));
  else if (field === "priority") all.sort((a, b) => Number(b.key) - Number(a.key));
  else all.sort((a, b) => b.count - a.count || a.key.localeCompare(b.key));
  const fold = order || field === "priority" ? all.length : all.length > limit ? limit - 1 : all.length;
  const shown = all.slice(0, fold);
  const rest = all.slice(fold).reduce((n, b) => n + b.count, counts[OTHER] ?? 0);
  return rest > 0 ? [...shown, { key: OTHER, count: rest }] : shown;
}

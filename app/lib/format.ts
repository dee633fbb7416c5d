/**
 * How the dashboard writes durations, rates, counts and times (pure, tested
 * without a browser). A missing value is a dash, never "0" or "NaN".
 */

export type Bucket = "minute" | "hour" | "day";

export const NONE = "–";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** One decimal below ten, none from ten on: 1.2, 12, 120. */
function short(v: number): string {
  return v < 10 ? v.toFixed(1).replace(/\.0$/, "") : String(Math.round(v));
}

/** The first unit whose rounded value stays below its limit, so 59.97 s is "1 min", not "60 s". */
function scaled(v: number, units: [suffix: string, size: number, limit: number][], text = short): string {
  for (const [suffix, size, limit] of units) {
    const t = text(v / size);
    if (Number(t) < limit) return `${t}${suffix}`;
  }
  const [suffix, size] = units[units.length - 1];
  return `${text(v / size)}${suffix}`;
}

const missing = (v: number | null | undefined): v is null | undefined => v === null || v === undefined || !Number.isFinite(v);

/** 850 ms, 1.2 s, 3 min, 5.5 h, 3 d. */
export function duration(ms: number | null | undefined): string {
  if (missing(ms)) return NONE;
  const v = Math.max(0, ms);
  if (Math.round(v) < 1000) return `${Math.round(v)} ms`;
  return scaled(v, [
    [" s", 1000, 60],
    [" min", MINUTE, 60],
    [" h", HOUR, 48],
    [" d", DAY, Infinity],
  ]);
}

/** A share (0–1) as a percentage: 66.7%, 2%, 100%; under 0.05% but not nothing is "<0.1%". */
export function percent(share: number | null | undefined): string {
  if (missing(share)) return NONE;
  const p = share * 100;
  if (p > 0 && p < 0.05) return "<0.1%";
  return `${p.toFixed(1).replace(/\.0$/, "")}%`;
}

/** A count in a few characters: 950, 1.2k, 34k, 1.5M. */
export function compact(n: number | null | undefined): string {
  if (missing(n)) return NONE;
  const sign = n < 0 ? "-" : "";
  const v = Math.abs(n);
  if (v < 1000) return sign + (Number.isInteger(v) ? String(v) : short(v));
  return (
    sign +
    scaled(v, [
      ["k", 1e3, 1000],
      ["M", 1e6, 1000],
      ["B", 1e9, Infinity],
    ])
  );
}

/** Tasks per second, in the unit that makes it readable: 41.5/s, 12/min, 3/h. */
export function perSecond(v: number | null | undefined): string {
  if (missing(v)) return NONE;
  if (v <= 0) return "0/s";
  if (v >= 1) return `${short(v)}/s`;
  if (v * 60 >= 1) return `${short(v * 60)}/min`;
  return `${short(v * 3600)}/h`;
}

/** Where and how times are written; the browser's own unless given (tests give them). */
export interface Zone {
  locale?: string;
  timeZone?: string;
}

const FORMATS = {
  time: { hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
  date: { month: "short", day: "numeric" },
  dateTime: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
} satisfies Record<string, Intl.DateTimeFormatOptions>;

const formatters = new Map<string, Intl.DateTimeFormat>();
function format(kind: keyof typeof FORMATS, ms: number, z: Zone): string {
  const key = `${kind}|${z.locale ?? ""}|${z.timeZone ?? ""}`;
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.DateTimeFormat(z.locale, { ...FORMATS[kind], timeZone: z.timeZone })));
  return f.format(ms);
}

/** The API's days are UTC days: a day bucket is named by its UTC date wherever the reader is. */
const dayZone = (z: Zone): Zone => ({ locale: z.locale, timeZone: "UTC" });

/** A label on a time axis: the time of day, or the date at midnight and for day buckets. */
export function tickLabel(ms: number, bucket: Bucket, z: Zone = {}): string {
  if (bucket === "day") return format("date", ms, dayZone(z));
  const time = format("time", ms, z);
  return time === "00:00" ? format("date", ms, z) : time;
}

/** A bucket named in full, as a table row says it: "Nov 30, 14:05", or "Nov 30" for a day. */
export function bucketLabel(ms: number, bucket: Bucket, z: Zone = {}): string {
  return bucket === "day" ? format("date", ms, dayZone(z)) : format("dateTime", ms, z);
}

import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Analytics rollups in D1, written by the shards' history flush
 * (durable/rollups.ts) in the same pass as the task rows, and read by
 * /analytics (worker/analytics.ts): per tenant, queue and minute (`res` "m")
 * or hour ("h"), what was enqueued, finished and retried, and how long tasks
 * waited and ran as log-scale histograms. A trend over a month reads hundreds
 * of rollup rows, never the million task rows behind them.
 */

/** Counts per bucket: enqueued by creation time, completed / failed / cancelled by finish time, retries by their time. */
export const rollups = sqliteTable(
  "rollups",
  {
    tenant: text("tenant").notNull(),
    /** "m": a minute bucket; "h": an hour */
    res: text("res").notNull(),
    /** the bucket's start, ms since the epoch (UTC) */
    at: integer("at").notNull(),
    queue: text("queue").notNull(),
    enqueued: integer("enqueued").notNull(),
    completed: integer("completed").notNull(),
    failed: integer("failed").notNull(),
    cancelled: integer("cancelled").notNull(),
    retried: integer("retried").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.res, t.at, t.queue] })],
);

/** Wait (`started_at - run_at`) and run (`finished_at - started_at`) times of the tasks that finished in a bucket, by histogram bin. */
export const rollupHist = sqliteTable(
  "rollup_hist",
  {
    tenant: text("tenant").notNull(),
    res: text("res").notNull(),
    at: integer("at").notNull(),
    queue: text("queue").notNull(),
    /** "wait" or "run" */
    kind: text("kind").notNull(),
    /** the bin (shared/bins in durable/core/bins.ts) */
    bin: integer("bin").notNull(),
    n: integer("n").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.res, t.at, t.queue, t.kind, t.bin] })],
);

/**
 * How far each shard's outbox is counted in the rollups: a flush adds its counts only past
 * `up_to`, in the same D1 batch that moves it, so a flush sent again counts nothing twice.
 * The tenant's sum of `up_to` is its analytics data version (the cache keys carry it).
 */
export const rollupLedger = sqliteTable(
  "rollup_ledger",
  {
    tenant: text("tenant").notNull(),
    /** `queue:shard` */
    source: text("source").notNull(),
    upTo: integer("up_to").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.source] })],
);

/** The histogram bins' lower bounds (filled by a custom migration from durable/core/bins.ts; a test checks they agree). */
export const histBins = sqliteTable("hist_bins", {
  lo: integer("lo").primaryKey(),
  bin: integer("bin").notNull(),
});

/** Saved report definitions (`/reports/definitions`), per tenant. */
export const reportDefinitions = sqliteTable(
  "report_definitions",
  {
    tenant: text("tenant").notNull(),
    id: text("id").notNull(),
    name: text("name").notNull(),
    /** the report's body as JSON (schema/api-reports.ts, ReportBody) */
    report: text("report").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.id] })],
);

export const ANALYTICS_TABLES = { rollups, rollupHist, rollupLedger, histBins, reportDefinitions };

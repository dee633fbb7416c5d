import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Request limits of one credential: at most `perMinute` in any minute window and `perHour` in any hour window. */
export interface Limits {
  perMinute: number;
  perHour: number;
}

/** Roles a credential can have, and what each may do. */
export const ROLES = ["admin", "producer", "consumer", "read-only"] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = {
  /** get tasks and queues, list, stats */
  read: ["admin", "producer", "consumer", "read-only"],
  /** enqueue, cancel, retry */
  produce: ["admin", "producer"],
  /** lease, heartbeat, complete, fail, release */
  consume: ["admin", "consumer"],
  /** queue settings, pause, resume, purge, delete tasks, API keys */
  manage: ["admin"],
  /** Prometheus metrics */
  metrics: ["admin", "read-only"],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

/** An API key as stored (never the key itself). */
export interface KeyRecord {
  id: string;
  tenant: string;
  role: Role;
  name: string;
  /** its own limits; null uses the deployment's defaults */
  limits: Limits | null;
  createdAt: number;
}

/** Who a request acts as, once authenticated. */
export interface Principal {
  tenant: string;
  role: Role;
  /** `key:<id>`, `jwt:<sub>` or `bootstrap` */
  subject: string;
  /** the bootstrap admin token may manage keys of any tenant */
  bootstrap: boolean;
}

/**
 * The tables of an AccessKey object (drizzle: the one source of their rows;
 * migrations are hand-written in `schema/migrations/access`). `one` is always 1:
 * each object holds at most one credential and one set of windows.
 */
export const credential = sqliteTable("credential", {
  one: integer("one").primaryKey(),
  id: text("id").notNull(),
  tenant: text("tenant").notNull(),
  role: text("role").$type<Role>().notNull(),
  name: text("name").notNull(),
  /** SHA-256 of the whole key, hex; the key itself is never stored */
  hash: text("hash").notNull(),
  /** JSON text of Limits */
  limits: text("limits"),
  createdAt: integer("created_at").notNull(),
  revokedAt: integer("revoked_at"),
  /** JSON text of the tenant's default Limits, used when the key has none of its own */
  tenantLimits: text("tenant_limits"),
});
export type CredentialRow = typeof credential.$inferSelect;

/** The current rate-limit windows. */
export const usage = sqliteTable("usage", {
  one: integer("one").primaryKey(),
  minuteStart: integer("minute_start").notNull(),
  minuteCount: integer("minute_count").notNull(),
  hourStart: integer("hour_start").notNull(),
  hourCount: integer("hour_count").notNull(),
});

export const ACCESS_TABLES = { credential, usage };

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

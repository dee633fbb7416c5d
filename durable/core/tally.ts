import type { TaskEvent } from "../../schema/shard";
import type { Totals } from "./types";

/**
 * What one task event counts as, the one definition of the shard's totals
 * (stats, /metrics, live pushes) and of the analytics rollups: enqueued,
 * leased, expired, a retry (a run that failed and will run again, or a lease
 * that ran out with attempts left), and the three ends.
 */
export function countsOf(e: TaskEvent): (keyof Totals)[] {
  const out: (keyof Totals)[] = [];
  if (e.type === "enqueued") out.push("enqueued");
  else if (e.type === "leased") out.push("leased");
  if (e.type === "expired") out.push("expired");
  if (e.type === "retrying" || (e.type === "expired" && (e.changes.status === "scheduled" || e.changes.status === "pending")))
    out.push("retried");
  if (e.changes.status === "completed") out.push("completed");
  else if (e.changes.status === "failed") out.push("failed");
  else if (e.changes.status === "cancelled") out.push("cancelled");
  return out;
}

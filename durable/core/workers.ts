/**
 * Consumer liveness. A worker heartbeats every HEARTBEAT_MS or so; missing
 * LOST_AFTER_BEATS of them in a row makes it `lost`. Its tasks need nothing
 * from here: their leases expire on their own and they are retried.
 */
export const HEARTBEAT_MS = 10_000;
export const LOST_AFTER_BEATS = 3;

export type WorkerStatus = "active" | "idle" | "lost";

export function workerStatus(lastSeenAt: number, currentTasks: number, now: number): WorkerStatus {
  if (now - lastSeenAt > HEARTBEAT_MS * LOST_AFTER_BEATS) return "lost";
  return currentTasks > 0 ? "active" : "idle";
}

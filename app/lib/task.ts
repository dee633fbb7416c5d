/**
 * What the Task page shows and offers, from the task as the API gives it
 * (pure, tested without a browser).
 */
import type { Status, Task, TimelineEvent } from "../../client/types";

export type Action = "cancel" | "retry" | "delete";

const FINISHED: readonly Status[] = ["completed", "failed", "cancelled"];
export const finished = (status: Status): boolean => FINISHED.includes(status);

/** The actions the API accepts for a task in this state (others answer 409). */
export function actionsFor(task: Pick<Task, "status" | "cancelRequested">): Action[] {
  const out: Action[] = [];
  if (
    task.status === "pending" ||
    task.status === "scheduled" ||
    task.status === "blocked" ||
    (task.status === "running" && !task.cancelRequested)
  )
    out.push("cancel");
  if (task.status === "failed" || task.status === "cancelled") out.push("retry");
  if (finished(task.status)) out.push("delete");
  return out;
}

/** What confirming an action will do, said before it is done. */
export function consequence(action: Action, task: Pick<Task, "status" | "name">): string {
  if (action === "cancel")
    return task.status === "running"
      ? `“${task.name}” is running: it is asked to stop at its next heartbeat, and ends cancelled if its worker gives it up.`
      : `“${task.name}” will not run. Tasks that depend on it follow their own rule (cancel or run).`;
  if (action === "retry") return `“${task.name}” becomes pending again with its attempts reset, and runs on the next free worker.`;
  return `“${task.name}” leaves the queue and its history (row, timeline, search text). This cannot be undone.`;
}

/** One timeline event in words: what happened and the detail that matters for it. */
export function describe(e: TimelineEvent): string {
  const parts: string[] = [e.type.replaceAll("_", " ")];
  if (e.attempt !== undefined) parts.push(`attempt ${e.attempt}`);
  if (e.workerId) parts.push(`by ${e.workerId}`);
  const message = (e.error as { message?: unknown } | undefined)?.message;
  if (typeof message === "string") parts.push(`: ${message}`);
  if (e.runAt && e.type !== "enqueued") parts.push(`, next run ${new Date(e.runAt).toLocaleString()}`);
  if (e.waitingOn && e.waitingOn.length > 0) parts.push(`, waiting on ${e.waitingOn.length}`);
  if (e.progress !== undefined && e.progress !== null)
    parts.push(`, progress ${typeof e.progress === "number" ? `${e.progress}%` : JSON.stringify(e.progress)}`);
  return parts.join(" ").replace(" :", ":").replace(" ,", ",");
}

/** JSON as the page shows it: indented, or a word for nothing. */
export const pretty = (v: unknown): string => (v === null || v === undefined ? "—" : JSON.stringify(v, null, 2));

/** A time as a person reads it here, or nothing. */
export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : "");

import type { EventType, TaskEvent, TaskRow } from "../../schema/shard";
import { chunksBySize } from "./chunks";
import { countsOf } from "./tally";
import type { DeadHistory } from "./outbox";
import type { OutboxRow } from "./store";

/**
 * What history makes of a batch of outbox entries (pure): per task, its
 * fields as the batch's events left them (the outbox holds every change, so
 * no task row is read) and its events in the public timeline's words; tasks
 * deleted by hand leave history too. Nothing here touches D1
 * (durable/history.ts does).
 */

/** One entry of a task's timeline as D1 stores it (`at` in ms; the API shows ISO-8601). */
export interface TimelineEvent {
  type: string;
  at: number;
  status?: string;
  attempt?: number;
  workerId?: string;
  progress?: unknown;
  error?: unknown;
  runAt?: number;
  expiresAt?: number | null;
  waitingOn?: string[];
  cancelRequested?: boolean;
}

/** A task's events from one flush: `seq`/`lastSeq` place its first and last event in the shard's outbox. */
export interface EventsRow {
  taskId: string;
  seq: number;
  lastSeq: number;
  events: TimelineEvent[];
  /** `events` as JSON text, made once */
  json: string;
}

/** A task's fields as of the batch's last event: all of them when the batch saw it made, else what changed. */
export type TaskChanges = Partial<Omit<TaskRow, "leaseToken">> & { id: string };

export interface HistoryTask {
  row: TaskChanges;
  /** true: `row` is the whole task (the batch saw it made); false: only the fields that changed */
  full: boolean;
  /** the text FTS indexes, on the flush that saw the task made (written once: name and payload never change) */
  text: { name: string; body: string } | null;
}

/**
 * What a plan adds to the analytics rollups, one mark per count: the outbox position it comes
 * from (so a flush sent again over more entries counts only what is new), the task, when, what.
 */
export type RollupMark = [
  position: number,
  taskId: string,
  at: number,
  kind: "enqueued" | "completed" | "failed" | "cancelled" | "retried",
];

export interface HistoryPlan {
  upTo: number;
  /** the rollups' counts (durable/rollups.ts) */
  marks: RollupMark[];
  tasks: HistoryTask[];
  events: EventsRow[];
  /** tasks deleted by hand: their history goes too */
  deletes: string[];
  /** rows that could not be made */
  dead: DeadHistory[];
}

/** Characters of payload text indexed per task; the rest of a payload is kept, not searchable. */
export const BODY_MAX = 16 * 1024;
/** Characters of events per EventsRow (D1 rows are at most 2 MB; a character is at most 3 bytes). */
export const EVENTS_ROW_MAX = 256 * 1024;
/** An event's place: its outbox entry's seq times this, plus its index there (entries hold far fewer events). */
export const SEQ_SCALE = 65_536;

/** Internal event names that the timeline shows under another name; `deleted` is never shown. */
const PUBLIC_TYPE: Partial<Record<EventType, string>> = { leased: "started", progress: "heartbeat" };

const json = (text: string | null | undefined) => (text === null || text === undefined ? null : (JSON.parse(text) as unknown));

// publicEvent: an outbox event. output: the timeline entry: what a user needs, never a token or engine bookkeeping.
export function publicEvent(e: TaskEvent): TimelineEvent {
  const c = e.changes;
  const out: TimelineEvent = { type: PUBLIC_TYPE[e.type] ?? e.type, at: e.at };
  if (c.status !== undefined) out.status = c.status;
  if (e.type === "leased" && c.attempts !== undefined) out.attempt = c.attempts;
  if (c.workerId !== undefined && c.workerId !== null) out.workerId = c.workerId;
  if (c.progress !== undefined && c.progress !== null) out.progress = json(c.progress);
  if (c.error !== undefined && c.error !== null) out.error = json(c.error);
  if (c.runAt !== undefined && e.type !== "enqueued" && (c.status === "scheduled" || e.type === "released")) out.runAt = c.runAt;
  if (c.dueAt !== undefined && c.status === "running") out.expiresAt = c.dueAt;
  if ((e.type === "heartbeat" || e.type === "progress") && c.dueAt !== undefined) out.expiresAt = c.dueAt;
  if (c.depsWaiting !== undefined && e.type === "dependency_resolved") out.waitingOn = (json(c.depsWaiting) as string[] | null) ?? [];
  if (c.cancelRequested === 1) out.cancelRequested = true;
  return out;
}

// flattenText: a payload (JSON text). output: its string and number values, in document order, space-separated, at most BODY_MAX characters.
export function flattenText(payload: string): string {
  const parts: string[] = [];
  let size = 0;
  const stack: unknown[] = [JSON.parse(payload)];
  while (stack.length > 0 && size < BODY_MAX) {
    const v = stack.pop();
    if (typeof v === "string" || typeof v === "number") {
      const s = String(v);
      parts.push(s);
      size += s.length + 1;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    } else if (v !== null && typeof v === "object") {
      const values = Object.values(v);
      for (let i = values.length - 1; i >= 0; i--) stack.push(values[i]);
    }
  }
  return parts.join(" ").slice(0, BODY_MAX);
}

// planHistory: outbox entries (oldest first, with their positions). output: what history must write for them.
export function planHistory(batch: { rows: Pick<OutboxRow, "seq" | "events">[]; upTo: number }): HistoryPlan {
  const byTask = new Map<string, { seq: number; event: TaskEvent }[]>();
  for (const entry of batch.rows) {
    entry.events.forEach((event, i) => {
      const list = byTask.get(event.id);
      const item = { seq: entry.seq * SEQ_SCALE + i, event };
      if (list) list.push(item);
      else byTask.set(event.id, [item]);
    });
  }
  const plan: HistoryPlan = { upTo: batch.upTo, marks: [], tasks: [], events: [], deletes: [], dead: [] };
  for (const entry of batch.rows) {
    for (const event of entry.events) {
      for (const kind of countsOf(event)) {
        if (kind === "leased" || kind === "expired") continue;
        const at = kind === "enqueued" || kind === "retried" ? event.at : (event.changes.finishedAt ?? event.at);
        plan.marks.push([entry.seq, event.id, at, kind]);
      }
    }
  }
  for (const [id, items] of byTask) {
    if (items.some((i) => i.event.type === "deleted")) {
      plan.deletes.push(id);
      continue;
    }
    try {
      // The fields as the events leave them: from `enqueued` (the whole task) on, or what changed.
      let row: TaskChanges = { id };
      let full = false;
      for (const { event } of items) {
        if (event.type === "enqueued") {
          row = { ...event.changes, id };
          full = true;
        } else Object.assign(row, event.changes);
      }
      const text = full ? { name: row.name!, body: flattenText(row.payload!) } : null;
      plan.tasks.push({ row, full, text });
      plan.events.push(...eventsRows(id, items));
    } catch (e) {
      plan.dead.push({
        taskId: id,
        reason: `could not be prepared: ${(e as Error).message}`,
        body: JSON.stringify(items).slice(0, 256 * 1024),
      });
    }
  }
  return plan;
}

/** A task's events of one flush, in as few rows as EVENTS_ROW_MAX allows (the same batch always splits the same way). */
function eventsRows(taskId: string, items: { seq: number; event: TaskEvent }[]): EventsRow[] {
  const shown = items
    .filter((i) => i.event.type !== "deleted")
    .map(({ seq, event }) => {
      const pub = publicEvent(event);
      return { seq, pub, text: JSON.stringify(pub) };
    });
  return chunksBySize(shown, (e) => e.text.length + 1, EVENTS_ROW_MAX).map((part) => ({
    taskId,
    seq: part[0].seq,
    lastSeq: part[part.length - 1].seq,
    events: part.map((e) => e.pub),
    json: `[${part.map((e) => e.text).join(",")}]`,
  }));
}

import type { Status, TaskEvent } from "../schema/shard";
import { parseTaskId } from "./core/ids";
import type { LiveBatch, PushedTask } from "./metrics-hub";

/**
 * The least time between two pushes of one shard: changes in between are coalesced into one.
 * A change waits up to this long for its push, so it is half the 50 ms latency budget.
 */
export const PUSH_MS = 25;
/** After a push finds nobody listening, the shard stays quiet this long (a new socket's snapshot asks the shards itself). */
const QUIET_MS = 5_000;
/** Tasks per push at most (the newest state of each; more wait for the next push). */
const TASKS_MAX = 1_000;
/** Characters of a progress, result or error carried in a live message (larger ones are left out). */
const VALUE_MAX = 4_096;

/**
 * A shard's side of live metrics: what committed calls changed, pushed to the
 * tenant's MetricsHub at most every PUSH_MS (at once when the shard was
 * quiet), never awaited by a queue operation and never failing one. A push
 * carries the shard's counts and totals now, so a lost push is repaired by the
 * next one.
 */
export class LivePusher {
  /**
   * What waits for the next push, by task and status: changes within one status coalesce (the
   * newest progress wins), but every status a task passed through is pushed, in order, so a
   * subscriber of a task leased and completed within one window still hears it running, then
   * completed (the hub gives a queue's listeners only the newest).
   */
  private tasks = new Map<string, PushedTask>();
  /** each waiting task's newest entry in `tasks` */
  private newest = new Map<string, string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastPush = 0;
  private quietUntil = 0;
  /** grows whenever a socket starts listening: a "nobody listens" answer from before it is old */
  private listeners = 0;
  /** pushes sent, and those that failed (since the object started) */
  pushes = 0;
  failures = 0;

  constructor(
    private readonly send: (batch: LiveBatch) => Promise<number>,
    private readonly state: () => Omit<LiveBatch, "tasks" | "n"> | null,
  ) {}

  /** A socket wants this shard's news (its hub says so on connect and subscribe): no more quiet. */
  listening(): void {
    this.quietUntil = 0;
    this.listeners++;
    this.schedule(); // the counts now, even if nothing changes for a while
  }

  // note: the events of a committed call. output: none; a push is scheduled.
  note(events: TaskEvent[]): void {
    if (Date.now() < this.quietUntil) return; // nobody listens: nothing to keep
    for (const e of events) {
      if (e.type === "deleted") continue;
      const c = e.changes;
      const known = this.tasks.get(this.newest.get(e.id) ?? "");
      const status = (c.status ?? known?.status ?? "running") as Status;
      const task: PushedTask = { ...known, id: e.id, queue: parseTaskId(e.id)?.queue ?? "", status, at: e.at };
      if (c.attempts !== undefined) task.attempts = c.attempts;
      // Small values ride along; a large one is left to GET /tasks/{id} (bounds the pusher's memory and the push).
      if (c.progress !== undefined && c.progress !== null && c.progress.length <= VALUE_MAX) task.progress = JSON.parse(c.progress);
      if (c.result !== undefined && c.result !== null && c.result.length <= VALUE_MAX) task.result = JSON.parse(c.result);
      if (c.error !== undefined && c.error !== null && c.error.length <= VALUE_MAX) task.error = JSON.parse(c.error);
      const key = `${e.id} ${status}`;
      this.tasks.delete(key); // re-inserted last: kept in the order the changes happened
      this.tasks.set(key, task);
      this.newest.set(e.id, key);
      if (this.tasks.size > TASKS_MAX * 10) this.forget(this.tasks.keys().next().value!);
    }
    this.schedule();
  }

  private forget(key: string): void {
    const task = this.tasks.get(key);
    this.tasks.delete(key);
    if (task && this.newest.get(task.id) === key) this.newest.delete(task.id);
  }

  private schedule(): void {
    if (this.timer !== null || Date.now() < this.quietUntil) return;
    const wait = Math.max(0, this.lastPush + PUSH_MS - Date.now());
    this.timer = setTimeout(() => void this.push(), wait);
  }

  private async push(): Promise<void> {
    this.timer = null;
    this.lastPush = Date.now();
    const state = this.state();
    if (state === null) return;
    // Oldest first: a task's later statuses never go out before its earlier ones; the rest wait.
    const tasks = [...this.tasks.values()].slice(0, TASKS_MAX);
    for (const t of tasks) this.forget(`${t.id} ${t.status}`);
    this.pushes++;
    const heard = this.listeners;
    try {
      const listeners = await this.send({ ...state, n: this.pushes, tasks });
      if (listeners === 0 && heard === this.listeners) {
        this.quietUntil = Date.now() + QUIET_MS;
        this.tasks.clear();
        this.newest.clear();
      }
    } catch {
      this.failures++; // live metrics are best effort: the next push carries the counts again
    }
    if (this.tasks.size > 0) this.schedule();
  }
}

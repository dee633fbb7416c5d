/** What a `Worker` (`edgeq/consumer`) is given: its handler, the context each task runs with, and its options. */
import type { WebSocketConstructor } from "./live";
import type { Task } from "./types";

export interface TaskContext {
  /** aborted when the task's cancellation is requested, or the worker is closing without waiting */
  signal: AbortSignal;
  /** reports progress (0–100 or an object) with the next heartbeat */
  progress(value: number | Record<string, unknown>): void;
  /**
   * This attempt's fencing token: it changes on every lease, and only its holder
   * can complete the task. Pass it to side effects that must apply once per attempt.
   */
  leaseToken: string;
  /** for a parent that waited for its children: child id → result (null unless that child completed) */
  childResults?: Record<string, unknown>;
}

export type Handler = (task: Task, context: TaskContext) => Promise<unknown> | unknown;

export interface WorkerOptions {
  /** tasks run at once; default 1 */
  concurrency?: number;
  /** how long one lease call waits for work (long poll), ms; default 20,000 */
  waitMs?: number;
  /** heartbeat at this fraction of the lease length; default 1/3 */
  heartbeatFraction?: number;
  /** completions are sent together every this many ms; default 20 */
  flushMs?: number;
  /**
   * The most tasks leased ahead of the free slots, held until a slot frees, so the next tasks are
   * already here when these finish (one lease call then serves many tasks). Only while tasks are
   * short (the handler's recent average under 50 ms), and never more than the worker runs in about
   * 250 ms at its recent pace, so a held task waits little and other consumers are not starved.
   * Held tasks are heartbeated and handed back, unrun, on close. Default 400; 0 turns it off.
   */
  prefetch?: number;
  /** a name for the worker registry; default `edgeq-worker` */
  name?: string;
  /**
   * How leases arrive. `websocket`: one socket per shard of the queue; the shard pushes
   * leases the moment tasks are ready, and completions, failures and heartbeats go as
   * frames (no request per call). `http`: long polls and batch calls. `auto` (default):
   * a WebSocket where the runtime has one (or the `ws` package is installed) and the
   * server opens it, HTTP otherwise.
   */
  transport?: "auto" | "websocket" | "http";
  /** a WebSocket class, where the runtime has none (Node 20: `import { WebSocket } from "ws"`) */
  WebSocket?: WebSocketConstructor;
}

import { EdgeqError } from "./errors";
import type { EdgeqClient } from "./index";
import type { LiveMessage, LiveTask } from "./types";

/** Several task changes from one push, as the hub sends them (the SDK hands each on as a `task` message). */
type TasksMessage = { type: "tasks"; seq: number; at: string; tasks: (LiveTask & { at: string })[] };

/**
 * The smallest WebSocket this SDK needs: the WHATWG one of browsers, Node ≥ 22,
 * Bun, Deno and Workers, or the `ws` package's on Node 20.
 */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen?: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface LiveOptions {
  /** one queue's counts and task events (default: every queue's counts) */
  queue?: string;
  /** one task's events */
  task?: string;
  /** a WebSocket class, where the runtime has none (Node 20: `import { WebSocket } from "ws"`) */
  WebSocket?: WebSocketConstructor;
  /** reconnect when the socket drops (default true); a new connection starts with a snapshot */
  reconnect?: boolean;
  /** told when the connection is being opened, is open (its snapshot came), or has closed (a reconnect follows unless it ended) */
  onState?: (state: "connecting" | "open" | "closed") => void;
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Messages between two acks: the hub holds back a socket that falls 500 behind its last ack. */
const ACK_EVERY = 50;
/** 250 ms, doubling to 5 s, with full jitter. */
const backoff = (attempt: number) => Math.random() * Math.min(5_000, 250 * 2 ** attempt);
/** Sockets in a row that close before their snapshot, after which the stream gives up (a bad queue name, a refused upgrade). */
const OPENS_MAX = 8;

/** The WebSocket class to use: given, global, or the optional `ws` package. */
export async function webSocketClass(given?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (given) return given;
  const global = (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  try {
    const name = "ws"; // an optional peer dependency: not bundled, not required
    const mod = (await import(name)) as { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
    const found = mod.WebSocket ?? mod.default;
    if (found) return found;
  } catch {
    // not installed
  }
  throw new Error("This runtime has no WebSocket (Node 20): install the `ws` package, or pass `WebSocket` in the options.");
}

/**
 * Live messages of the tenant: a `snapshot` first, then `delta` and `task`
 * messages as they happen (docs/API.md, "Live"); a `tasks` frame is handed
 * on as one `task` message per task, each with the frame's `seq`. Opens the socket with a
 * short-lived live token (`POST /live/tokens`), so any WebSocket works,
 * including a browser's. Reconnects with backoff; each new connection starts
 * with a fresh snapshot. A gap in `seq` asks for a new snapshot at once.
 */
export async function* liveMessages(client: EdgeqClient, options: LiveOptions = {}): AsyncGenerator<LiveMessage> {
  const WS = await webSocketClass(options.WebSocket);
  const { signal } = options;
  for (let attempt = 0; !signal?.aborted;) {
    let ws: WebSocketLike;
    options.onState?.("connecting");
    try {
      const { token } = await client.call<{ token: string }>("POST", "/live/tokens", undefined, signal);
      const url = new URL(`${client.options.url.replace(/\/$/, "")}/api/v1/live`);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      url.searchParams.set("token", token);
      if (options.queue) url.searchParams.set("queue", options.queue);
      if (options.task) url.searchParams.set("task", options.task);
      ws = new WS(url.toString());
    } catch (e) {
      if (signal?.aborted) return;
      // An answer that will not change (no permission, a bad request) is the caller's to see.
      if (options.reconnect === false || (e instanceof EdgeqError && e.status >= 400 && e.status < 500 && e.status !== 429)) throw e;
      await sleep(backoff(++attempt));
      continue;
    }
    const inbox: LiveMessage[] = [];
    let wake: (() => void) | null = null;
    let closed = false;
    let lastSeq = 0;
    let acked = 0;
    let snapshots = 0;
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as LiveMessage | TasksMessage;
      if (message.seq !== lastSeq + 1 && message.type !== "snapshot") ws.send(JSON.stringify({ type: "snapshot" }));
      lastSeq = message.seq;
      if (message.type === "snapshot" && snapshots++ === 0) options.onState?.("open");
      // Several tasks of one push come in one frame; each is handed on as its own `task` message.
      if (message.type === "tasks") for (const { at, ...task } of message.tasks) inbox.push({ type: "task", seq: message.seq, at, task });
      else inbox.push(message);
      wake?.();
    };
    ws.onclose = ws.onerror = () => {
      if (!closed) options.onState?.("closed");
      closed = true;
      wake?.();
    };
    const abort = () => ws.close(1000, "done");
    signal?.addEventListener("abort", abort);
    try {
      for (;;) {
        const next = inbox.shift();
        if (next) {
          yield next;
          // Acked once the consumer has taken it: the hub bounds what a slow consumer leaves unread.
          if ((next.seq - acked >= ACK_EVERY || next.type === "behind") && !closed) {
            acked = next.seq;
            ws.send(JSON.stringify({ type: "ack", seq: acked }));
          }
        } else if (closed || signal?.aborted) break;
        else await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      signal?.removeEventListener("abort", abort);
      if (!closed) abort();
    }
    if (options.reconnect === false || signal?.aborted) return;
    attempt = snapshots > 0 ? 1 : attempt + 1; // a socket that never got its snapshot counts against giving up
    if (snapshots === 0 && attempt >= OPENS_MAX)
      throw new Error(`The live socket closed ${OPENS_MAX} times before its first message; giving up.`);
    await sleep(backoff(attempt));
  }
}

import { EdgeqError } from "./errors";
import { request } from "./http";
import type { EdgeqClient } from "./index";
import type { WebSocketConstructor, WebSocketLike } from "./live";
import type { Lease, Problem } from "./types";

/** The close code of a socket that reached its lifetime on the server: open another at once. */
const CLOSE_RECONNECT = 4000;
/** How long opening a socket may take before it counts as failed. */
const OPEN_MS = 10_000;
/** How long a request may wait for its answer before the socket counts as dead (a half-open connection answers nothing). */
const ANSWER_MS = 30_000;

type Frame =
  | { type: "leases"; leases: Lease[] }
  | { type: "results"; ref: number; results: unknown[] }
  | { type: "error"; ref?: number; problem: Problem };

/** The socket closed before a request's answer came: the caller sends it again another way. */
export class SocketClosed extends Error {}

/**
 * One consumer WebSocket to one shard of a queue (`GET /queues/{queue}/consume`):
 * grants credit, hands on the leases the shard pushes, and sends batch requests
 * answered by ref. `credit` is what it has granted and not yet received. A socket
 * that closes is not reopened here; its owner decides (see `Worker`).
 */
export class ShardSocket {
  credit = 0;
  private ws: WebSocketLike | null = null;
  private nextRef = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown[]) => void; reject: (e: Error) => void }>();
  private closedByUs = false;

  constructor(
    readonly shard: number,
    private readonly handlers: {
      leases: (socket: ShardSocket, leases: Lease[]) => void;
      closed: (socket: ShardSocket, code: number) => void;
      error: (error: Error) => void;
    },
  ) {}

  get open(): boolean {
    return this.ws !== null;
  }

  /** Opens the socket with a short-lived consume token; rejects with the server's problem (or a timeout). */
  async connect(client: EdgeqClient, queue: string, workerId: string, WS: WebSocketConstructor): Promise<void> {
    // One retry only: a deployment that cannot make tokens (no key secret) answers 503 every time,
    // and the worker should fall back to HTTP at once rather than after the full retry policy.
    const { token } = await request<{ token: string }>({ ...client.options, retries: 1 }, "POST", "/api/v1/consume/tokens");
    const url = new URL(`${client.options.url.replace(/\/$/, "")}/api/v1/queues/${encodeURIComponent(queue)}/consume`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("workerId", workerId);
    url.searchParams.set("shard", String(this.shard));
    url.searchParams.set("token", token);
    // Without permessage-deflate: frames are small JSON, and deflating each costs CPU at both ends
    // (at the edge, on the shard's thread). `ws` offers it unless its options say not to; the
    // WebSocket of browsers, Deno, Bun and Node 22 takes (url, protocols) and ignores the rest.
    const ws = new (WS as unknown as new (url: string, protocols: string[], options: object) => WebSocketLike)(url.toString(), [], {
      perMessageDeflate: false,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`The consumer socket to shard ${this.shard} did not open within ${OPEN_MS} ms.`));
      }, OPEN_MS);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = ws.onclose = (event) => {
        clearTimeout(timer);
        const code = (event as { code?: number }).code;
        reject(new Error(`The consumer socket to shard ${this.shard} was refused${code ? ` (close ${code})` : ""}.`));
      };
    });
    if (this.closedByUs) {
      ws.close(1000, "done"); // closed while it opened
      throw new SocketClosed();
    }
    this.ws = ws;
    ws.onmessage = (event) => this.receive(JSON.parse(String(event.data)) as Frame);
    ws.onerror = ws.onclose = (event) => this.lost((event as { code?: number }).code ?? 1006);
  }

  /** Grants `n` more leases. */
  grant(n: number): void {
    if (n <= 0 || !this.ws) return;
    this.credit += n;
    this.ws.send(JSON.stringify({ type: "credit", credit: n }));
  }

  /** Takes back `n` of the credit granted (the shard keeps at least none; leases already on their way still come). */
  take(n: number): void {
    if (n <= 0 || !this.ws) return;
    this.credit = Math.max(0, this.credit - n);
    this.ws.send(JSON.stringify({ type: "credit", credit: -n }));
  }

  /** A batch request (`complete`, `fail`, `heartbeat`, `release`; `stop` without items), with credit granted in the same frame. */
  request<R>(type: string, items?: object[], credit = 0): Promise<R[]> {
    const ws = this.ws;
    if (!ws) return Promise.reject(new SocketClosed());
    const ref = this.nextRef++;
    const answer = new Promise<R[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        // No answer: the connection is dead without having closed. Drop it (the owner opens another).
        ws.close(1000, "no answer");
        this.lost(1006);
      }, ANSWER_MS);
      this.pending.set(ref, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as R[]);
        },
        reject: (e) => {
          clearTimeout(timer);
          // The shard took nothing of a frame it refused, its credit included.
          if (!(e instanceof SocketClosed)) this.credit = Math.max(0, this.credit - credit);
          reject(e);
        },
      });
    });
    if (credit > 0) this.credit += credit;
    ws.send(JSON.stringify({ type, ref, ...(items ? { items } : {}), ...(credit > 0 ? { credit } : {}) }));
    return answer;
  }

  close(): void {
    this.closedByUs = true;
    this.ws?.close(1000, "done");
    this.lost(1000);
  }

  private receive(frame: Frame): void {
    if (frame.type === "leases") {
      this.credit = Math.max(0, this.credit - frame.leases.length);
      this.handlers.leases(this, frame.leases);
      return;
    }
    const waiting = frame.ref === undefined ? undefined : this.pending.get(frame.ref);
    if (frame.ref !== undefined) this.pending.delete(frame.ref);
    if (frame.type === "results") waiting?.resolve(frame.results);
    else if (waiting) waiting.reject(new EdgeqError(frame.problem));
    else this.handlers.error(new EdgeqError(frame.problem)); // a frame the server could not read at all
  }

  private lost(code: number): void {
    if (!this.ws) return;
    this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
    this.ws = null;
    this.credit = 0;
    for (const p of this.pending.values()) p.reject(new SocketClosed());
    this.pending.clear();
    if (!this.closedByUs) this.handlers.closed(this, code === CLOSE_RECONNECT ? CLOSE_RECONNECT : code);
  }
}

import { WorkerEntrypoint } from "cloudflare:workers";
import { createApp } from "./app";
import { sweepHistory } from "./retention";

export { QueueShard } from "../durable/queue-shard";
export { QueueRegistry } from "../durable/queue-registry";
export { AccessKey } from "../durable/access-key";
export { MetricsHub } from "../durable/metrics-hub";

const app = createApp();

/** The most of a request body read only to be thrown away (past it, the connection is given up). */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/**
 * Reads what is left of a request body the answer did not need (a 404, a refused call, a body
 * over the limit) before answering: workerd serving its own socket (the direct stack) closes a
 * connection whose request body is not read by the time the answer is done, and a client still
 * sending it sees ECONNRESET instead of the answer (reading after answering, in waitUntil, is
 * too late for a 10 MiB body). A body declared larger than DRAIN_LIMIT is not read.
 */
async function drain(request: Request): Promise<void> {
  if (!request.body || request.bodyUsed) return;
  if (Number(request.headers.get("content-length") ?? 0) > DRAIN_LIMIT) return;
  try {
    const reader = request.body.getReader();
    for (let read = 0; read <= DRAIN_LIMIT;) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // the client went away: nothing to keep
  }
}

const handler = {
  async fetch(request: Request, env: Env, ctx: ExecutionContext) {
    const response = await app.fetch(request, env, ctx);
    await drain(request);
    return response;
  },
  /** The cron trigger (wrangler.toml): history retention, in batches. */
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepHistory(env.DB, Date.now()));
  },
} satisfies ExportedHandler<Env>;

export default handler;

/**
 * The same API as a named entrypoint, which local stacks serve on a socket of its own
 * (`scripts/serve-api.mjs`): Miniflare puts its entry worker and the static assets' router in
 * front of a Worker's default entrypoint, two hops on every request and on every consumer-socket
 * frame; a named entrypoint is served with neither. At the edge only the default one is used.
 */
export class Api extends WorkerEntrypoint<Env> {
  fetch(request: Request) {
    return handler.fetch(request, this.env, this.ctx);
  }
}

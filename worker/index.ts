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
 * Reads what is left of a request body the answer did not need (a 404, a refused call), after the
 * answer has gone (waitUntil: a refusal is not held up by a slow or large upload): workerd serving
 * its own socket (`npm start`) closes a keep-alive connection whose request body was not read,
 * and a client still sending it sees ECONNRESET instead of the answer.
 */
async function drain(request: Request): Promise<void> {
  if (!request.body || request.bodyUsed) return;
  const reader = request.body.getReader();
  try {
    for (let read = 0; read <= DRAIN_LIMIT; ) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // the client went away: nothing to keep
  }
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext) {
    const response = await app.fetch(request, env, ctx);
    ctx.waitUntil(drain(request));
    return response;
  },
  /** The cron trigger (wrangler.toml): history retention, in batches. */
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepHistory(env.DB, Date.now()));
  },
} satisfies ExportedHandler<Env>;

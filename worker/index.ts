import { createApp } from "./app";
import { sweepHistory } from "./retention";

export { QueueShard } from "../durable/queue-shard";
export { QueueRegistry } from "../durable/queue-registry";
export { AccessKey } from "../durable/access-key";
export { MetricsHub } from "../durable/metrics-hub";

const app = createApp();

export default {
  fetch: app.fetch,
  /** The cron trigger (wrangler.toml): history retention, in batches. */
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepHistory(env.DB, Date.now()));
  },
} satisfies ExportedHandler<Env>;
